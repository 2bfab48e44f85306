"""``kglnet bench``: training and evaluation throughput of the project's path against a faithful
re-enactment of the reference's, measured in one run on one device (SPEC section 10, issue 6).

The reference path behaves like the authors' code, built from this project's modules:

- the model runs its four per-modality low-level layers twice per forward pass, once per branch
  (:class:`ReferenceKGLNet`, same weights as KGL-Net; the reference's first defect of SPEC 9);
- augmentation on the CPU, one pair at a time in uint8 with OpenCV and NumPy
  (:class:`kglnet.reference_augment.ReferenceCPUAugmenter`; the reference augmented patch by patch
  with a CPU image library at 122.7 ms per batch on one core, SPEC 10: this re-enactment does
  the same operations without the library's overhead, so it is the faster of the two and the
  speed-ups against it are the conservative ones), then the batch is copied to the device;
- fp32 eager forward, loss and backward, PyTorch's default Adam;
- one host synchronisation per step (the reference reads the loss back to log it);
- evaluation copies each batch from host memory, runs fp32 and copies the descriptors back one
  pair at a time in a Python loop (SPEC 9).

The project path is the training loop's own step (:class:`kglnet.step.TrainStep`): patches
resident on the device as uint8, batched augmentation on the device, the fast-path switches,
no synchronisation per step; evaluation through :func:`kglnet.inference.score_pairs`.

Both paths see the same random uint8 patches (throughput does not depend on the content), the
same batch size and the same number of timed steps after the same warm-up.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from . import __version__
from .augment import PairAugmentation
from .inference import resolve_device, score_pairs
from .models import KGLNet, count_parameters, create_model, list_models
from .reference_augment import ReferenceCPUAugmenter
from .step import TrainStep, prepare_model

#: Training pairs per epoch and epochs of the paper's schedule (SPEC sections 3 and 7). The
#: VIS-NIR training set ("country") size is not in the SPEC: give it with ``schedule``.
PAPER_SCHEDULE: dict[str, tuple[int, int]] = {"vislwir": (17_096, 100), "os": (98_940, 200)}

#: The reference's CPU augmentation, ms per 256-pair batch on one core of an H200 machine (SPEC 10).
SPEC_REFERENCE_AUGMENT_MS = 122.7


class ReferenceKGLNet(KGLNet):
    """KGL-Net as the reference computes it: the low-level stacks run once for the descriptor
    branch and again for the metric branch (identical outputs, about a third more work)."""

    def features(self, vis: torch.Tensor, other: torch.Tensor):
        f = super().features(vis, other)
        # the reference's second pass through layers 1-4, for the metric branch
        low_vis, low_other = self._low_level(vis, other)
        f.diff_vis, f.diff_other = self.metric_high_vis(low_vis), self.metric_high_other(low_other)
        return f


@dataclass
class BenchConfig:
    """What to measure. ``precision``/``channels_last``/``compile``: the project path's switches."""

    device: str = "auto"
    model: str = "kglnet"          # any registered model, trained with its own objective and settings
    batch_size: int = 256
    steps: int = 20
    warmup: int = 3
    eval_pairs: int = 8192
    eval_batch_size: int = 1024
    precision: str = "bf16"
    channels_last: bool = True
    compile: str = "none"
    fused_optimizer: bool = False  # the project path's optimiser in its fused implementation
    one_pass_shared_stack: bool = False  # project path: KGL-Net's shared descriptor layers once on both batches
    phases: bool = False           # also time each phase of the project's step (train_phases_ms)
    profile: bool = False          # also profile the project's steps kernel by kernel (train_profile)
    reference: bool = True
    fp32_project: bool = True     # also time the project path with the exact fp32 switches
    seed: int = 0
    threads: int = 0
    schedule: dict[str, list[int]] = field(default_factory=dict)  # extra {dataset: [pairs, epochs]}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _random_patches(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 64, 64), dtype=np.uint8), rng.integers(0, 256, (n, 64, 64), dtype=np.uint8))


def _train_config(model_name: str = "kglnet", fused: bool = False):
    """The training loop's settings for ``model_name``: KGL-Net's paper settings (Adam 5e-3 /
    5e-5), or a baseline's own optimiser settings from :data:`kglnet.zoo.ZOO`."""
    from .train import TrainConfig
    from .zoo import ZOO

    settings = dict(ZOO[model_name]["settings"]) if model_name in ZOO else {}
    return TrainConfig(model=model_name, fused_optimizer=fused, **settings)


def _loss_fn(generator: torch.Generator, model_name: str = "kglnet"):
    """The model's training objective (KGL-Net's loss, or the baseline's own) as a step's loss_fn."""
    from .train import training_terms

    cfg = _train_config(model_name)
    return lambda model, vis, other: training_terms(model, vis, other, cfg, generator)


def _make_optimizer(model: torch.nn.Module, fused: bool = False, model_name: str = "kglnet") -> torch.optim.Optimizer:
    from .train import _make_optimizer as make

    return make(model, _train_config(model_name, fused))


class PhaseTimer:
    """Time of each phase of a training step, given to :attr:`kglnet.step.TrainStep.phase_timer`.

    Two clocks per phase, averaged over the steps: ``host`` (wall time the Python side spent
    issuing it) and ``device`` (on a GPU: time between CUDA events recorded on the stream as each
    phase ends, so idle gaps while the GPU waits for the host count to the phase that caused them;
    on the CPU, where operations are synchronous, the same as ``host``). A device phase much
    longer than its kernels, with host time close to it, means the step is bound by the host."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.marks: list[tuple[str, float, Any]] = []

    def _now(self) -> tuple[float, Any]:
        event = None
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
        return time.perf_counter(), event

    def start(self) -> None:
        """Call before each step."""
        self.marks.append(("start", *self._now()))

    def __call__(self, name: str) -> None:
        self.marks.append((name, *self._now()))

    def summary(self) -> dict[str, dict[str, float]]:
        """{"host": {phase: ms per step}, "device": {...}}; synchronises first."""
        if self.cuda:
            torch.cuda.synchronize()
        host: dict[str, float] = {}
        dev: dict[str, float] = {}
        steps = sum(1 for m in self.marks if m[0] == "start")
        for (_, t0, e0), (name, t1, e1) in zip(self.marks, self.marks[1:]):
            if name == "start":
                continue
            host[name] = host.get(name, 0.0) + 1000 * (t1 - t0)
            dev[name] = dev.get(name, 0.0) + (e0.elapsed_time(e1) if self.cuda else 1000 * (t1 - t0))
        return {"host": {k: v / steps for k, v in host.items()}, "device": {k: v / steps for k, v in dev.items()}}


#: Kernel-name fragments -> what the kernel does, first match wins. Inductor's kernels start with
#: ``triton_`` (and name the operators they fused, convolutions included, hence first); cuDNN and
#: CUTLASS name their convolution kernels by direction (fprop / dgrad / wgrad); on a CPU the
#: entries are operators (``aten::convolution_backward``); the rest are PyTorch's own kernels.
KERNEL_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("inductor (fused)", ("triton",)),
    ("convolution, weight gradient", ("wgrad",)),
    ("convolution, input gradient", ("dgrad",)),
    ("convolution, backward", ("convolution_backward",)),
    ("convolution, forward", ("fprop", "conv")),
    ("matrix product", ("gemm", "matmul")),
    ("copy or fill", ("memcpy", "memset", "copy")),
    ("optimizer", ("adam", "sgd")),
    ("reduction", ("reduce",)),
)


def kernel_category(name: str) -> str:
    """What a kernel (or, on a CPU, an operator) named ``name`` does: see :data:`KERNEL_CATEGORIES`."""
    lower = name.lower()
    return next((cat for cat, parts in KERNEL_CATEGORIES if any(p in lower for p in parts)), "other")


def profile_steps(run, steps: int, device: torch.device, top: int = 25) -> dict[str, Any]:
    """Where ``steps`` training steps spend their time, kernel by kernel (``torch.profiler``).

    ``run(k)`` runs k steps. On a GPU the entries are the kernels, copies and fills the GPU ran
    (their own time on the GPU's clock; with CUDA graphs, the kernels the graphs replay, as far as
    the profiler sees them); on a CPU, the operators (their self time on the host). Returns
    ``{"clock", "steps", "total_ms_per_step", "by_category_ms_per_step", "top"}`` with ``top`` the
    ``top`` longest entries: name (cut at 160 characters), category, ms and calls per step, share
    of the total."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    if steps < 1:
        raise ValueError(f"profile_steps needs steps >= 1, got {steps}")
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        run(steps)
        _sync(device)
    events = prof.key_averages()
    if cuda:
        # kernel events only: an operator's device time repeats the time of the kernels it launched
        timed = [(e.key, e.count, e.self_device_time_total) for e in events if e.device_type == DeviceType.CUDA]
    else:
        timed = [(e.key, e.count, e.self_cpu_time_total) for e in events]
    timed = [t for t in timed if t[2] > 0]
    total_us = sum(t[2] for t in timed)
    by_category: dict[str, float] = {}
    for name, _, us in timed:
        cat = kernel_category(name)
        by_category[cat] = by_category.get(cat, 0.0) + us / 1000 / steps
    rows = [{"name": name[:160], "category": kernel_category(name), "ms_per_step": us / 1000 / steps,
             "calls_per_step": count / steps, "share": us / total_us}
            for name, count, us in sorted(timed, key=lambda t: -t[2])[:top]]
    return {"clock": "device" if cuda else "host", "steps": steps, "total_ms_per_step": total_us / 1000 / steps,
            "by_category_ms_per_step": dict(sorted(by_category.items(), key=lambda kv: -kv[1])), "top": rows}


def time_project_training(cfg: BenchConfig, device: torch.device, vis: np.ndarray, other: np.ndarray,
                          precision: str, channels_last: bool, compile: str, fused_optimizer: bool = False,
                          phases: bool = False, profile: bool = False,
                          one_pass_shared_stack: bool = False) -> dict[str, Any]:
    """Pairs/s of the training loop's step, end to end from device-resident uint8 patches; with
    ``phases``, then ``cfg.steps`` more steps timed phase by phase (:class:`PhaseTimer`); with
    ``profile``, then ``cfg.steps`` more steps under the profiler (:func:`profile_steps`)."""
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model).to(device).train()
    step = TrainStep(model, _make_optimizer(model, fused_optimizer, cfg.model),
                     _loss_fn(torch.Generator(device=device).manual_seed(2), cfg.model),
                     augment=PairAugmentation(), augment_generator=torch.Generator(device=device).manual_seed(1),
                     precision=precision, channels_last=channels_last, compile=compile,
                     one_pass_shared_stack=one_pass_shared_stack)
    vis_d, other_d = torch.from_numpy(vis).to(device), torch.from_numpy(other).to(device)
    n, b = len(vis), cfg.batch_size
    order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed)).to(device)

    def run(k: int, timer: PhaseTimer | None = None) -> None:
        for i in range(k):
            idx = order[(i * b) % (n - b + 1):][:b]
            if timer is not None:
                timer.start()
            step(vis_d.index_select(0, idx), other_d.index_select(0, idx))

    t0 = time.perf_counter()
    run(cfg.warmup)
    _sync(device)
    warmup_s = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    run(cfg.steps)
    _sync(device)
    seconds = time.perf_counter() - t0
    if step.check_finite() is not None:
        raise RuntimeError("benchmark training produced a non-finite loss")
    out = {"pairs_per_s": cfg.steps * b / seconds, "step_ms": 1000 * seconds / cfg.steps, "warmup_s": warmup_s}
    if device.type == "cuda":
        out["peak_memory_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
        # CUDA-graph replays (compile="reduce-overhead") write into memory reserved while the
        # graphs were recorded in the warm-up, which the allocated counter above never sees;
        # the reserved peak covers it
        out["peak_memory_reserved_gb"] = torch.cuda.max_memory_reserved(device) / 2**30
    if phases:
        timer = PhaseTimer(device)
        step.phase_timer = timer
        run(cfg.steps, timer)
        out["phases_ms"] = timer.summary()
        step.phase_timer = None
    if profile:
        out["profile"] = profile_steps(run, cfg.steps, device)
    return out


def time_reference_training(cfg: BenchConfig, device: torch.device, vis: np.ndarray,
                            other: np.ndarray) -> dict[str, float]:
    """Pairs/s of the re-enacted reference step: per-pair CPU augmentation in uint8 on one
    OpenCV thread (:class:`ReferenceCPUAugmenter`), copy, fp32 eager step with the duplicate
    low-level pass, ``loss.item()`` every step. Also the step alone, and the end-to-end rate with
    the reference's own augmentation cost from SPEC 10 in place of the re-enactment's."""
    torch.manual_seed(cfg.seed)
    model = ReferenceKGLNet().to(device).train()
    optimizer = _make_optimizer(model)
    loss_fn = _loss_fn(torch.Generator(device=device).manual_seed(2))
    augment = ReferenceCPUAugmenter(seed=1)
    n, b = len(vis), cfg.batch_size
    augment_s = step_s = 0.0

    def run(k: int) -> None:
        nonlocal augment_s, step_s
        for i in range(k):
            lo = (i * b) % (n - b + 1)
            t0 = time.perf_counter()
            aug_vis, aug_other = augment.batch(vis[lo:lo + b], other[lo:lo + b])
            batch_vis = torch.from_numpy(aug_vis).unsqueeze(1).to(device).float().div_(255.0)
            batch_other = torch.from_numpy(aug_other).unsqueeze(1).to(device).float().div_(255.0)
            t1 = time.perf_counter()
            terms = loss_fn(model, batch_vis, batch_other)
            optimizer.zero_grad()
            terms["total"].backward()
            optimizer.step()
            terms["total"].item()  # the per-step read-back (a host synchronisation)
            t2 = time.perf_counter()
            augment_s += t1 - t0
            step_s += t2 - t1

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # the reference's data pipeline: one process, one core (SPEC 10)
    try:
        run(cfg.warmup)
        augment_s = step_s = 0.0
        t0 = time.perf_counter()
        run(cfg.steps)
        _sync(device)
        seconds = time.perf_counter() - t0
    finally:
        cv2.setNumThreads(threads)
    pairs = cfg.steps * b
    # the reference's own augmentation cost per batch (SPEC 10) scaled to this batch size
    spec_augment_s = cfg.steps * SPEC_REFERENCE_AUGMENT_MS / 1000 * b / 256
    return {"pairs_per_s": pairs / seconds, "step_only_pairs_per_s": pairs / step_s,
            "augment_ms_per_batch": 1000 * augment_s / cfg.steps,
            "spec_augment_pairs_per_s": pairs / (step_s + spec_augment_s)}


@torch.no_grad()
def time_reference_evaluation(cfg: BenchConfig, device: torch.device, vis: np.ndarray, other: np.ndarray) -> float:
    """Pairs/s of the reference's evaluation: per-batch host copies, fp32, per-pair read-back."""
    model = ReferenceKGLNet().to(device).eval()
    out = np.empty(len(vis), dtype=np.float32)
    t0 = time.perf_counter()
    for lo in range(0, len(vis), cfg.eval_batch_size):
        a = torch.from_numpy(vis[lo:lo + cfg.eval_batch_size]).to(device).unsqueeze(1).float() / 255.0
        c = torch.from_numpy(other[lo:lo + cfg.eval_batch_size]).to(device).unsqueeze(1).float() / 255.0
        desc_a, desc_c, prob = model(a, c)
        for i in range(len(a)):  # the reference copies descriptors one at a time
            out[lo + i] = float(torch.linalg.vector_norm(desc_a[i] - desc_c[i]))
        prob.cpu()
    _sync(device)
    return len(vis) / (time.perf_counter() - t0)


def time_project_evaluation(cfg: BenchConfig, device: torch.device, vis: np.ndarray, other: np.ndarray) -> float:
    """Pairs/s of :func:`kglnet.inference.score_pairs` with the project path's switches."""
    model = prepare_model(create_model(cfg.model).to(device).eval(), cfg.channels_last, cfg.one_pass_shared_stack)
    runner = model if cfg.compile == "none" else torch.compile(model, mode=cfg.compile, dynamic=False)
    kwargs = dict(batch_size=cfg.eval_batch_size, device=device, precision=cfg.precision,
                  channels_last=cfg.channels_last)
    score_pairs(runner, vis[: 2 * cfg.eval_batch_size], other[: 2 * cfg.eval_batch_size], **kwargs)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    score_pairs(runner, vis, other, **kwargs)
    return len(vis) / (time.perf_counter() - t0)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, " \
           f"{os.cpu_count()} cores visible)"


def cpu_model() -> str | None:
    """The host CPU's model name (``/proc/cpuinfo`` on Linux; the platform's processor string
    elsewhere, None when neither says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def load_average() -> float | None:
    """The host's 1-minute load average, or None where the platform has none. Recorded before and
    after a benchmark: on a shared machine, other work shows as a load above the bench's own."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def full_schedule_minutes(train_pairs_per_s: float, extra: dict[str, list[int]] | None = None) -> dict[str, Any]:
    """Minutes to train the paper's schedule per dataset at ``train_pairs_per_s`` (and the total)."""
    schedule = {k: tuple(v) for k, v in PAPER_SCHEDULE.items()}
    for name, value in (extra or {}).items():
        if len(value) != 2 or min(value) < 1:
            raise ValueError(f"schedule {name!r}: expected [pairs per epoch, epochs], got {value!r}")
        schedule[name] = (int(value[0]), int(value[1]))
    per = {name: pairs * epochs / train_pairs_per_s / 60 for name, (pairs, epochs) in schedule.items()}
    return {"per_dataset": per, "total": sum(per.values()),
            "schedule": {k: {"pairs_per_epoch": p, "epochs": e} for k, (p, e) in schedule.items()},
            "missing": [] if "visnir" in schedule else ["visnir (training-set size not in the SPEC; "
                                                        "pass --schedule visnir=PAIRS:100)"]}


def flops_per_pair(model_name: str = "kglnet", pairs: int = 4) -> dict[str, float]:
    """Floating-point operations per patch pair (``torch.utils.flop_counter``, counted on the CPU
    in fp32): ``{"eval": forward pass, "train": forward pass, KGL-Net's loss and backward pass}``.
    Throughput times these gives the arithmetic rate a run achieved, to set against the device's
    peak (the counter covers convolutions and matrix products, not elementwise operations)."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = create_model(model_name)
    vis, other = torch.rand(pairs, 1, 64, 64), torch.rand(pairs, 1, 64, 64)
    with FlopCounterMode(display=False) as forward:
        with torch.no_grad():
            model.eval()(vis, other)
    model.train()
    loss_fn = _loss_fn(torch.Generator().manual_seed(0), model_name)
    with FlopCounterMode(display=False) as step:
        terms = loss_fn(model, vis, other)
        terms["total"].backward()
    return {"eval": forward.get_total_flops() / pairs, "train": step.get_total_flops() / pairs}


def run_benchmark(cfg: BenchConfig, progress=print) -> dict[str, Any]:
    """Measure both paths on one device; returns the JSON record (see the module docstring)."""
    if cfg.batch_size < 2 or cfg.steps < 1 or cfg.warmup < 0 or cfg.eval_pairs < 1:
        raise ValueError("batch_size >= 2, steps >= 1, warmup >= 0 and eval_pairs >= 1 are required")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    if cfg.model not in list_models():
        raise ValueError(f"unknown model {cfg.model!r}; registered models: {', '.join(list_models())}")
    device = resolve_device(cfg.device)
    n_train = max(cfg.batch_size * 4, cfg.batch_size + 1)
    vis, other = _random_patches(max(n_train, cfg.eval_pairs), cfg.seed)
    record: dict[str, Any] = {
        "device": device_name(device), "device_type": device.type, "torch": torch.__version__,
        "cuda": torch.version.cuda, "kglnet": __version__, "git_commit": _git_commit(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "config": asdict(cfg),
        "model": cfg.model, "cpu_model": cpu_model(), "load_average_1m_before": load_average(),
    }
    with torch.device("meta"):  # parameter shapes only: no memory, no initialisation
        record["parameters"] = count_parameters(create_model(cfg.model))
    progress(f"{cfg.model}: project training ({cfg.precision}, channels_last={cfg.channels_last}, compile={cfg.compile}, "
             f"fused_optimizer={cfg.fused_optimizer}, one_pass_shared_stack={cfg.one_pass_shared_stack})")
    fast = time_project_training(cfg, device, vis[:n_train], other[:n_train], cfg.precision, cfg.channels_last,
                                 cfg.compile, cfg.fused_optimizer, cfg.phases, cfg.profile, cfg.one_pass_shared_stack)
    record["train_pairs_per_s"] = fast["pairs_per_s"]
    record["train_step_ms"] = fast["step_ms"]
    record["train_warmup_s"] = fast["warmup_s"]
    record["peak_memory_gb"] = fast.get("peak_memory_gb")
    record["peak_memory_reserved_gb"] = fast.get("peak_memory_reserved_gb")
    if cfg.phases:
        record["train_phases_ms"] = fast["phases_ms"]
    if cfg.profile:
        record["train_profile"] = fast["profile"]
    if cfg.fp32_project:
        progress("project training, exact fp32 path")
        exact = time_project_training(cfg, device, vis[:n_train], other[:n_train], "fp32", False, "none")
        record["fp32_train_pairs_per_s"] = exact["pairs_per_s"]
    progress("project evaluation")
    record["eval_pairs_per_s"] = time_project_evaluation(cfg, device, vis[:cfg.eval_pairs], other[:cfg.eval_pairs])
    # the reference re-enactment is KGL-Net's code; other models have no reference path here
    if cfg.reference and cfg.model == "kglnet":
        progress("reference training")
        ref = time_reference_training(cfg, device, vis[:n_train], other[:n_train])
        record["reference_train_pairs_per_s"] = ref["pairs_per_s"]
        record["reference_train_step_only_pairs_per_s"] = ref["step_only_pairs_per_s"]
        record["reference_augment_ms_per_batch"] = ref["augment_ms_per_batch"]
        record["reference_augment"] = "OpenCV/NumPy, uint8, pair by pair on one thread (kglnet.reference_augment)"
        record["train_speedup"] = record["train_pairs_per_s"] / ref["pairs_per_s"]
        # the same, with the reference's measured augmentation cost (SPEC 10) instead
        record["reference_train_pairs_per_s_spec_augment"] = ref["spec_augment_pairs_per_s"]
        record["train_speedup_spec_augment"] = record["train_pairs_per_s"] / ref["spec_augment_pairs_per_s"]
        progress("reference evaluation")
        record["reference_eval_pairs_per_s"] = time_reference_evaluation(
            cfg, device, vis[:cfg.eval_pairs], other[:cfg.eval_pairs])
        record["eval_speedup"] = record["eval_pairs_per_s"] / record["reference_eval_pairs_per_s"]
    record["full_schedule_minutes"] = full_schedule_minutes(record["train_pairs_per_s"], cfg.schedule)
    record["load_average_1m_after"] = load_average()
    flops = flops_per_pair(cfg.model)
    record["gflop_per_pair"] = {k: v / 1e9 for k, v in flops.items()}
    record["achieved_tflops"] = {"train": record["train_pairs_per_s"] * flops["train"] / 1e12,
                                 "eval": record["eval_pairs_per_s"] * flops["eval"] / 1e12}
    return record


__all__ = ["BenchConfig", "KERNEL_CATEGORIES", "PAPER_SCHEDULE", "SPEC_REFERENCE_AUGMENT_MS", "PhaseTimer", "ReferenceKGLNet", "flops_per_pair",
           "full_schedule_minutes", "kernel_category", "profile_steps", "run_benchmark",
           "time_project_training", "time_reference_training", "time_project_evaluation",
           "time_reference_evaluation"]
