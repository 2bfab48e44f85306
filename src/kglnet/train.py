"""Training loop (SPEC sections 3 and 4) with exact resume and validation-based selection.

Outputs in ``out_dir``:
  last.pt       full state after the latest epoch (model, optimiser, RNG states, history), every
                ``checkpoint_every`` epochs (default 1) and after the last; inside an epoch too,
                after the step at which ``checkpoint_minutes`` (default 10) have passed since the
                last write (then with ``partial``: the epoch, the step, the epoch's loss sums)
  best.pt       weights of the epoch with the lowest validation FPR95 (the metric branch, or the
                descriptor branch with ``select_on="descriptor"``): the reported model
  history.json  one record per epoch (losses, distances, validation FPR95, timings, and the FPR95
                of every monitored test file: the "paper protocol" curves of SPEC section 5)
  config.json   the resolved training configuration and input checksums
  train.log     the log
Every file is written atomically, so a run killed at any moment leaves the last complete epoch.
Stopped by SIGTERM or SIGINT (a cluster's time limit, Ctrl-C; :func:`stop_on_signals`, which
``kglnet train`` installs), a run writes ``last.pt`` at the next step boundary and raises
:class:`TrainingStopped`: the same command resumes at the next step, losing no step.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from . import __version__
from .augment import PairAugmentation
from .checkpoint import CheckpointError, cpu_state_dict, load_weights, read_checkpoint, save_checkpoint
from .data import PairFileError, read_pairs
from .errors import TrainingDiverged, TrainingStopped
from .inference import resolve_device, score_pairs
from .losses import kglnet_loss
from .models import count_parameters, create_model
# TrainConfig lives in the torch-free kglnet.settings (the workflow's config checks build it).
from .settings import LR_SCHEDULES, TrainConfig
from .step import TrainStep
from .utils.io import atomic_write_json, sha256_file

log = logging.getLogger("kglnet.train")


def model_fingerprint(model: torch.nn.Module) -> str:
    """sha256 of what the code makes of a model before training: the name of its training
    objective and its freshly initialised state (names, shapes, dtypes and values of every
    parameter and buffer). Call it on the model as created, with the run's seed set.

    A resume also compares this, so a checkpoint written before a change of architecture,
    initialisation or objective (a model class that now names another loss) is not continued as
    if the code had not changed. Edits inside a loss function's body are not seen.
    """
    digest = hashlib.sha256(str(getattr(model, "objective", "kglnet")).encode())
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def create_seeded_model(name: str, seed: int) -> torch.nn.Module:
    """The model a run with ``seed`` starts from: torch's global RNG seeded with ``seed``, then
    ``create_model(name)`` on the CPU. Training and the reuse check of earlier runs
    (``workflow/scripts/device_run.py``) both start from it, so their fingerprints agree."""
    torch.manual_seed(seed)
    return create_model(name)


def lr_factor(cfg: TrainConfig, epoch: int, step: int, steps_per_epoch: int) -> float:
    """Multiplier of the base learning rates for 1-based ``step`` of 1-based ``epoch``.

    A function of the position alone (no state), so a resumed run follows the same schedule.
    "linear": ``1 - t / T`` with t = steps done before this one and T = epochs x steps per epoch
    (HardNet's code); "inverse": ``1 / (1 + lr_decay * t)`` (Torch7's optim.sgd
    learningRateDecay); "step": ``lr_step_gamma ** ((epoch - 1) // lr_step_epochs)``.
    """
    t = (epoch - 1) * steps_per_epoch + (step - 1)
    if cfg.lr_schedule == "linear":
        return 1.0 - t / (cfg.epochs * steps_per_epoch)
    if cfg.lr_schedule == "inverse":
        return 1.0 / (1.0 + cfg.lr_decay * t)
    if cfg.lr_schedule == "step":
        return cfg.lr_step_gamma ** ((epoch - 1) // cfg.lr_step_epochs)
    return 1.0


@dataclass
class StopRequest:
    """A request to stop, checked by :func:`train` after every step; ``signum`` set = stop.
    While ``interruptible`` (an epoch's scoring, which reads and changes no training state), the
    signal handler also raises :class:`ScoringInterrupted`, so the stop need not wait for it."""

    signum: int | None = None
    interruptible: bool = False


class ScoringInterrupted(BaseException):
    """Raised by :func:`stop_on_signals`' handler into an epoch's scoring. A BaseException, as
    KeyboardInterrupt, so that no ``except Exception`` on the way (in torch or here) takes it."""


@contextlib.contextmanager
def stop_on_signals(signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)):
    """Within the block, the first of ``signals`` sets the yielded :class:`StopRequest` instead of
    ending the process, so that :func:`train` can write ``last.pt`` first (a batch scheduler's
    SIGTERM before its kill; Ctrl-C in a terminal, which reaches Snakemake's jobs too); a second signal gets the
    handlers that were there before (the default: end now). Outside the main thread, where Python
    cannot install handlers, the request is never set."""
    request = StopRequest()
    previous: dict[int, Any] = {}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def handle(signum: int, frame) -> None:
        request.signum = signum
        restore()
        if request.interruptible:
            raise ScoringInterrupted(signum)

    if threading.current_thread() is threading.main_thread():
        for sig in signals:
            previous[sig] = signal.signal(sig, handle)
    try:
        yield request
    finally:
        restore()


def _shuffle_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    # Derived from (seed, epoch) alone, so a resumed run visits batches in the same order.
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def _batches(n: int, batch_size: int) -> list[tuple[int, int]]:
    # A last batch of a single pair has no negative to mine, so it folds into the previous one.
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < 2:
        bounds[-2] = (bounds[-2][0], n)
        bounds.pop()
    return bounds


def _make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # KGL-Net splits its parameters (feature network / metric head, two learning rates); a model
    # without parameter_groups() trains everything at lr_features.
    if hasattr(model, "parameter_groups"):
        features, head = model.parameter_groups()
    else:
        features, head = list(model.parameters()), []
    groups = [{"params": features, "lr": cfg.lr_features}]
    if head:
        groups.append({"params": head, "lr": cfg.lr_head})
    fused = {"fused": True} if cfg.fused_optimizer else {}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, weight_decay=cfg.weight_decay, **fused)
    if cfg.optimizer == "nadam":
        # Keras' Nadam, which several cross-spectral baselines were trained with
        return torch.optim.NAdam(groups, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        # The reference's SGD option dropped the metric head; here both groups are optimised.
        return torch.optim.SGD(groups, momentum=cfg.momentum, dampening=cfg.dampening,
                               weight_decay=cfg.weight_decay, **fused)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; allowed: adam, nadam, sgd")


def training_terms(model: torch.nn.Module, vis: torch.Tensor, other: torch.Tensor, cfg: TrainConfig,
                   generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The loss terms of one batch of positive pairs: KGL-Net's objective (with ``cfg.loss``) for
    models whose ``objective`` is "kglnet" (the default), else the model's own objective from
    :data:`kglnet.objectives.OBJECTIVES` (each baseline's paper loss)."""
    objective = getattr(model, "objective", "kglnet")
    if objective == "kglnet":
        return kglnet_loss(model, vis, other, cfg.loss, generator=generator)
    from .objectives import get_objective

    return get_objective(objective)(model, vis, other, generator=generator, **cfg.objective_options)


def validate(model: torch.nn.Module, pairs, batch_size: int, device: torch.device,
             precision: str = "fp32", channels_last: bool = False,
             fixed_batch: bool = False) -> dict[str, float | None]:
    """FPR95 (both definitions, percent) of ``model`` on a balanced PairSet (``channels_last``,
    ``fixed_batch``: as :func:`kglnet.inference.score_pairs`)."""
    # Imported here: kglnet.evaluation brings scikit-learn and matplotlib (1.8 s), which the
    # workflow's config check and every `kglnet` command that imports this module do not need.
    from .evaluation import fpr95_descriptor, fpr95_metric

    scores = score_pairs(model, pairs.left, pairs.right, batch_size=batch_size, device=device, precision=precision,
                         channels_last=channels_last, fixed_batch=fixed_batch)
    distance = scores["distance"]
    out: dict[str, float | None] = {
        "fpr95_descriptor": fpr95_descriptor(distance, pairs.label) if distance is not None else None}
    prob = scores["probability"]
    out["fpr95_metric"] = fpr95_metric(prob, pairs.label) if prob is not None else None
    return out


class _EpochScorer:
    """``scorer(pairs) -> validate(...)`` with the run's fast-path switches.

    With a compile mode the model is compiled for scoring too (its own graph in eval mode; the
    last batch is padded so one shape compiles once): the validation and monitored test files are
    scored after every epoch, which eager bf16 does at a fifth of the compiled rate on an H200
    (results/benchmarks/h200-*.json). Should the compiled scorer fail, the run logs why and
    scores eagerly from then on rather than losing the training done so far.
    """

    def __init__(self, model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> None:
        self.model = model
        self.cfg = cfg
        self.device = device
        self.compiled = None if cfg.compile == "none" else torch.compile(model, mode=cfg.compile, dynamic=False)

    def __call__(self, pairs) -> dict[str, float | None]:
        cfg = self.cfg
        if self.compiled is not None:
            try:
                return validate(self.compiled, pairs, cfg.eval_batch_size, self.device, cfg.precision,
                                channels_last=cfg.channels_last, fixed_batch=True)
            except RuntimeError as exc:  # torch's compile and CUDA-graph errors derive from it
                log.warning("compiled scoring failed, scoring eagerly from now on: %s", exc)
                self.compiled = None
        return validate(self.model, pairs, cfg.eval_batch_size, self.device, cfg.precision,
                        channels_last=cfg.channels_last)


def _setup_logging(out_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(out_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def _selection_score(record: dict[str, Any], select_on: str = "metric") -> float:
    """Validation score used to pick best.pt. ``select_on="metric"``: the metric branch (the one
    the paper reports), falling back to the descriptor branch for models without one;
    ``"descriptor"``: the descriptor branch (e.g. the descriptor-alone ablation)."""
    metric, descriptor = record.get("val_fpr95_metric"), record.get("val_fpr95_descriptor")
    if select_on == "descriptor":
        return descriptor if descriptor is not None else metric
    return metric if metric is not None else descriptor


def _read_monitor(monitor: dict[str, str | os.PathLike] | None) -> dict[str, tuple[Path, Any]]:
    """Load every monitored pair file up front, so a bad one stops the run before training."""
    out: dict[str, tuple[Path, Any]] = {}
    for name, path in (monitor or {}).items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"monitor: test-set names must be non-empty strings, got {name!r}")
        path = Path(path)
        try:
            out[name] = (path, read_pairs(path, require_both_labels=True))
        except PairFileError as exc:
            raise PairFileError(path, f"{exc.problem} (monitored test set {name!r})") from None
    return out


def _read_initial_weights(cfg: TrainConfig) -> dict[str, Any]:
    """The checkpoint named by ``cfg.init_from``, checked: a kglnet checkpoint of ``cfg.model``
    (else :class:`CheckpointError` naming the file). Returns the checkpoint ("state"), its
    checksum and its origin."""
    path = Path(cfg.init_from)
    try:
        state = read_checkpoint(path, expected_model=cfg.model)
    except CheckpointError as exc:
        raise CheckpointError(path, f"init_from: {exc.problem}") from None
    origin = state.get("config") or {}
    return {"file": str(path), "sha256": sha256_file(path), "state": state,
            "epoch": state.get("epoch"), "selection": state.get("selection", "last"),
            "seed": origin.get("seed"), "loss": origin.get("loss")}


def train(train_file: str | os.PathLike, val_file: str | os.PathLike, out_dir: str | os.PathLike,
          cfg: TrainConfig, resume: bool = True, progress: bool = True,
          monitor: dict[str, str | os.PathLike] | None = None, stop: StopRequest | None = None) -> dict[str, Any]:
    """Train ``cfg.model`` on the positive pairs of ``train_file``; select on ``val_file``.

    With ``resume`` and a compatible ``last.pt`` in ``out_dir`` (same settings, training data and
    model code: :func:`model_fingerprint`), training continues after the last completed epoch and
    ends with the same weights as an uninterrupted run (bit for bit on the CPU). Returns the summary written to best.pt.

    ``monitor`` (test-set name -> balanced pair file) is evaluated after every epoch exactly as
    the validation file is, and recorded in that epoch's history entry as
    ``"test": {name: {"fpr95_metric": .., "fpr95_descriptor": ..}}``: the curves from which the
    reference's test-selected "paper protocol" number is read (SPEC section 5). It never selects
    a checkpoint, writes no extra checkpoint and does not change training (evaluation runs in
    eval mode without gradients and draws no random numbers).

    ``stop`` (from :func:`stop_on_signals`) is checked after every step: once set, ``last.pt`` is
    written with the state after that step and :class:`TrainingStopped` is raised. A signal during
    an epoch's scoring interrupts the scoring (it changes nothing) and stops the same way, after
    the epoch's last step: a batch scheduler's kill, seconds after its SIGTERM, does not have to
    wait for a long validation pass, and the resumed run scores that epoch again.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # A run killed (SIGKILL, power loss) while writing one of these leaves its half-written
    # temporary file, which atomic_path cannot remove; no reader trusts it, but it must not stay
    # in the run folder (DVC would version it with the checkpoints).
    for name in ("last.pt", "best.pt", "history.json", "config.json"):
        for stale in out_dir.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)
    handler = _setup_logging(out_dir)
    try:
        return _train(Path(train_file), Path(val_file), out_dir, cfg, resume, progress, monitor, stop)
    finally:
        log.removeHandler(handler)
        handler.close()


def _train(train_file: Path, val_file: Path, out_dir: Path, cfg: TrainConfig, resume: bool, progress: bool,
           monitor: dict[str, str | os.PathLike] | None, stop: StopRequest | None) -> dict[str, Any]:
    if cfg.batch_size < 2:
        raise ValueError(f"batch_size must be at least 2 (hard-negative mining), got {cfg.batch_size}")
    if cfg.epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {cfg.epochs}")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)

    train_set = read_pairs(train_file)
    positives = np.flatnonzero(train_set.label == 1)
    if len(positives) < 2:
        raise ValueError(f"{train_file}: training needs at least 2 positive pairs, found {len(positives)}")
    val_set = read_pairs(val_file, require_both_labels=True)
    inputs = {"train": sha256_file(train_file), "val": sha256_file(val_file)}
    monitored = _read_monitor(monitor)
    initial = _read_initial_weights(cfg) if cfg.init_from else None
    if initial is not None:
        # a resume compares it, so a run is never continued on top of other starting weights
        inputs["init"] = initial["sha256"]

    # Training data lives on the training device as uint8; batches are cast there.
    train_vis = torch.from_numpy(train_set.left[positives]).to(device)
    train_other = torch.from_numpy(train_set.right[positives]).to(device)
    n = len(positives)

    model = create_seeded_model(cfg.model, cfg.seed)
    fingerprint = model_fingerprint(model)  # of the code's initialisation, before init_from's weights
    if initial is not None:
        # popped: the checkpoint (up to 100 MB with a last.pt's optimiser state) is not kept for the run
        load_weights(model, initial.pop("state"), cfg.init_from, context="init_from: ")
    model = model.to(device)
    optimizer = _make_optimizer(model, cfg)
    augment = PairAugmentation(photometric=cfg.augment, geometric=cfg.augment)
    aug_gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    # Draws of the random-negatives ablation; its own stream, saved in last.pt like aug_gen.
    neg_gen = torch.Generator(device=device).manual_seed(cfg.seed + 2)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    train_step = TrainStep(model, optimizer, lambda m, v, o: training_terms(m, v, o, cfg, neg_gen),
                           augment=augment, augment_generator=aug_gen, precision=cfg.precision,
                           channels_last=cfg.channels_last, compile=cfg.compile,
                           one_pass_shared_stack=cfg.one_pass_shared_stack)
    score = _EpochScorer(model, cfg, device)
    history: list[dict[str, Any]] = []
    start_epoch = 1
    best: dict[str, Any] | None = None
    best_state: dict[str, torch.Tensor] | None = None  # weights of the best epoch, also kept in last.pt

    # A last.pt written inside an epoch (checkpoint_minutes) holds the state after step
    # ``partial["step"]`` of epoch ``partial["epoch"]``; its "epoch" is the last complete one.
    partial: dict[str, Any] | None = None
    last_path = out_dir / "last.pt"
    if resume and last_path.exists():
        state = read_checkpoint(last_path, expected_model=cfg.model)
        compatible = (state.get("resume_key") == cfg.resume_key() and state.get("inputs") == inputs
                      and state.get("model_fingerprint") == fingerprint)
        partial = state.get("partial")
        # A mid-epoch state past the last epoch asked for is no epoch's end: it cannot stand as one.
        if compatible and int(state["epoch"]) + (partial is not None) <= cfg.epochs:
            model.load_state_dict(state["model_state"])
            optimizer.load_state_dict(state["optimizer_state"])
            aug_gen.set_state(state["rng"]["augment"])
            if "negatives" in state["rng"]:  # absent from checkpoints made before the ablations
                neg_gen.set_state(state["rng"]["negatives"])
            torch.set_rng_state(state["rng"]["torch"])
            history = state["history"]
            best = state.get("best")
            best_state = state.get("best_model_state")
            start_epoch = int(state["epoch"]) + 1
            if partial is not None:
                log.info("resuming from %s inside epoch %d, after step %d", last_path, start_epoch, partial["step"])
            else:
                log.info("resuming from %s after epoch %d", last_path, state["epoch"])
        else:
            partial = None
            log.warning("%s was made with other settings, data, model code (architecture, initialisation or "
                        "objective) or more epochs; starting from scratch", last_path)

    atomic_write_json(out_dir / "config.json", {
        "train": cfg.to_dict(), "train_file": str(train_file), "val_file": str(val_file),
        "inputs_sha256": inputs, "train_positives": n, "val_pairs": len(val_set),
        "monitor": {name: {"file": str(path), "sha256": sha256_file(path), "pairs": len(pairs)}
                    for name, (path, pairs) in monitored.items()},
        "parameters": count_parameters(model), "model_fingerprint": fingerprint, "device": str(device),
        "torch": torch.__version__, "kglnet": __version__,
        **({"init_from": initial} if initial else {}),
    })
    log.info("model %s (%d parameters) on %s; %d training pairs, %d validation pairs, epochs %d..%d",
             cfg.model, count_parameters(model), device, n, len(val_set), start_epoch, cfg.epochs)

    def meta(epoch: int) -> dict[str, Any]:
        """What every checkpoint of this run records besides its weights."""
        return {"epoch": epoch, "config": cfg.to_dict(), "inputs": inputs, "kglnet": __version__}

    def save_last(completed_epoch: int, mid_epoch: dict[str, Any] | None = None) -> None:
        """last.pt: everything a resumed run needs to continue bit for bit."""
        extra = {} if mid_epoch is None else {"partial": mid_epoch}
        save_checkpoint(
            last_path, model, optimizer_state=optimizer.state_dict(),
            rng={"augment": aug_gen.get_state(), "negatives": neg_gen.get_state(), "torch": torch.get_rng_state()},
            history=history, best=best, best_model_state=best_state, resume_key=cfg.resume_key(),
            model_fingerprint=fingerprint, **meta(completed_epoch), **extra,
        )

    def save_inside_epoch(epoch: int, step: int, train_seconds: float) -> None:
        """last.pt after ``step`` of ``epoch``: a resumed run goes on at step + 1 of that epoch."""
        save_last(epoch - 1, {"epoch": epoch, "step": step, "step_state": train_step.epoch_state(),
                              "train_seconds": train_seconds})

    def stopped_inside_epoch(signum: int, epoch: int, step: int, steps: int, train_seconds: float,
                             when: str = "") -> TrainingStopped:
        """Save last.pt after ``step`` of ``epoch`` and return the exception that says so."""
        save_inside_epoch(epoch, step, train_seconds)
        where = f"inside epoch {epoch} after step {step} of {steps}{when}"
        return TrainingStopped(_stopped_message(signum, last_path, where), signum)

    def stop_if_diverged(epoch: int) -> None:
        # A host synchronisation: the first non-finite loss, if any, stops the run before anything
        # of this epoch is saved (last.pt stays the last good state).
        bad = train_step.check_finite()
        if bad is not None:
            raise TrainingDiverged(f"non-finite loss at epoch {epoch}, step {bad[0]} ({bad[1]}); "
                                   f"last good checkpoint: {last_path}")

    bounds = _batches(n, cfg.batch_size)
    last_written = time.monotonic()
    for epoch in range(start_epoch, cfg.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        order = _shuffle_order(n, cfg.seed, epoch).to(device)
        done_steps, earlier_seconds = 0, 0.0  # of this epoch, before a mid-epoch resume
        if partial is not None and epoch == start_epoch:
            done_steps, earlier_seconds = int(partial["step"]), float(partial["train_seconds"])
            train_step.load_epoch_state(partial["step_state"])
        else:
            train_step.reset_counter()
        bar = tqdm(total=len(bounds), initial=done_steps, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch",
                   disable=not progress, leave=False)
        for step, (lo, hi) in enumerate(bounds[done_steps:], start=done_steps + 1):
            idx = order[lo:hi]
            if cfg.lr_schedule != "constant":
                factor = lr_factor(cfg, epoch, step, len(bounds))
                for group, base in zip(optimizer.param_groups, base_lrs):
                    group["lr"] = base * factor
            terms = train_step(train_vis.index_select(0, idx), train_other.index_select(0, idx))
            bar.update()
            if progress and step % 20 == 0:  # a host synchronisation, so only now and then
                bar.set_postfix(loss=f"{float(terms['total']):.3f}")
            if cfg.checkpoint_minutes and step < len(bounds) \
                    and time.monotonic() - last_written >= 60 * cfg.checkpoint_minutes:
                stop_if_diverged(epoch)
                save_inside_epoch(epoch, step, earlier_seconds + time.perf_counter() - t0)
                last_written = time.monotonic()
                log.info("epoch %d: wrote %s after step %d of %d", epoch, last_path, step, len(bounds))
            if stop is not None and stop.signum is not None:
                # After the epoch's last step too (step == len(bounds)): the resumed run then runs
                # no step of this epoch and goes on to its scoring.
                stop_if_diverged(epoch)
                bar.close()
                raise stopped_inside_epoch(stop.signum, epoch, step, len(bounds),
                                           earlier_seconds + time.perf_counter() - t0)
        bar.close()
        stop_if_diverged(epoch)
        train_seconds = earlier_seconds + time.perf_counter() - t0
        sums = train_step.epoch_sums()

        try:
            if stop is not None:
                if stop.signum is not None:  # came after the last step's check
                    raise ScoringInterrupted(stop.signum)
                stop.interruptible = True
            val = score(val_set)
            tests = {name: score(pairs) for name, (_, pairs) in monitored.items()}
        except ScoringInterrupted:
            raise stopped_inside_epoch(stop.signum, epoch, len(bounds), len(bounds), train_seconds,
                                       ", before its scoring ended") from None
        finally:
            if stop is not None:
                stop.interruptible = False
        record = {
            "epoch": epoch,
            **{f"loss_{k}" if k not in ("d_pos", "d_neg") else k: float(v) / len(bounds) for k, v in sums.items()},
            "val_fpr95_descriptor": val["fpr95_descriptor"],
            "val_fpr95_metric": val["fpr95_metric"],
            "select_on": cfg.select_on,
            "train_seconds": train_seconds,
            "train_pairs_per_s": n / train_seconds,
        }
        if monitored:
            record["test"] = {name: {"fpr95_metric": r["fpr95_metric"], "fpr95_descriptor": r["fpr95_descriptor"]}
                              for name, r in tests.items()}
        record["epoch_seconds"] = earlier_seconds + time.perf_counter() - t0
        history.append(record)
        log.info("epoch %d: %s", epoch, json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}))

        selection = _selection_score(record, cfg.select_on)
        if best is None or selection < best["score"]:
            best = {"epoch": epoch, "score": selection, "select_on": cfg.select_on,
                    "val_fpr95_metric": val["fpr95_metric"], "val_fpr95_descriptor": val["fpr95_descriptor"]}
            best_state = cpu_state_dict(model)
            save_checkpoint(out_dir / "best.pt", model, best_state, selection="validation", best=best, **meta(epoch))
        stopping = stop is not None and stop.signum is not None and epoch < cfg.epochs
        if epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs or stopping:
            save_last(epoch)
            last_written = time.monotonic()
        atomic_write_json(out_dir / "history.json", history)
        if stopping:
            raise TrainingStopped(_stopped_message(stop.signum, last_path, f"after epoch {epoch}"), stop.signum)

    # Snakemake deletes the declared outputs of a failed job (best.pt among them) before it reruns
    # it; the best epoch's weights travel in last.pt, so a resumed run can always restore best.pt.
    if not (out_dir / "best.pt").exists():
        if best_state is None:  # a last.pt from before the best weights travelled in it
            raise FileNotFoundError(f"{out_dir / 'best.pt'} is missing and {last_path} does not hold the best "
                                    "epoch's weights; rerun with --no-resume")
        save_checkpoint(out_dir / "best.pt", model, best_state, selection="validation", best=best,
                        **meta(best["epoch"]))
    atomic_write_json(out_dir / "history.json", history)
    summary = {"best": best, "select_on": cfg.select_on, "epochs": len(history), "out_dir": str(out_dir)}
    log.info("done: best epoch %d, validation FPR95 (%s) %.2f%%", best["epoch"], cfg.select_on, best["score"])
    return summary


def _stopped_message(signum: int, last_path: Path, where: str) -> str:
    message = (f"stopped by {signal.Signals(signum).name} {where}; wrote {last_path}: the same command resumes "
               "there")
    log.warning("%s", message)  # in the run's train.log too, beside the resume that follows
    return message


__all__ = ["LR_SCHEDULES", "ScoringInterrupted", "StopRequest", "TrainConfig", "TrainingDiverged", "TrainingStopped",
           "create_seeded_model", "lr_factor", "model_fingerprint", "stop_on_signals", "train", "validate"]
