"""Training and loss settings, checked without torch.

:class:`TrainConfig` (and the :class:`LossConfig` inside it) is what a run's config and the
workflow's config entries become. Snakemake builds every run's settings before any job starts
(workflow/rules/common.smk), so a mistake fails at once naming its section; this module imports
neither torch nor the model modules (it reads :mod:`kglnet.models.catalog`), which keeps that
check, and every ``snakemake -n``, from paying torch's import (about 2.5 s on a 2-core CPU).
:mod:`kglnet.train`, :mod:`kglnet.losses` and :mod:`kglnet.step` re-export these names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from .models.catalog import list_models, model_info
from .utils.config import dataclass_from_dict

PRECISIONS = ("fp32", "bf16")
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
NEGATIVES = ("hardest", "random")
_WEIGHTS = ("triplet_weight", "norm_weight", "bce_weight", "feature_weight")


@dataclass
class LossConfig:
    """Settings of :func:`kglnet.losses.kglnet_loss`; the defaults are the paper's objective.

    Ablation switches (SPEC section 3 terms; the paper reports no numbers for them):

    - ``bce_weight = 0``: descriptor branch alone; the metric head gets no gradient (select the
      checkpoint on the descriptor FPR95: ``TrainConfig.select_on = "descriptor"``).
    - ``triplet_weight = 0`` and ``norm_weight = 0``: metric branch alone. HNSM-M still mines the
      metric head's negatives from the current descriptors (whose projection layer then gets no
      gradient; layers 5-8 of the descriptor branch still learn through the feature-guided loss),
      so the ablation removes the descriptor *objective*, not the mining.
    - ``negatives = "random"``: HNSM-M replaced by a uniformly random X_j, j != i.
    - ``feature_weight = 0``: no feature-guided loss.

    A term whose weight is 0 is not computed at all (it is reported as 0).
    """

    margin: float = 1.2
    alpha: float = 2.0
    exclude_at_most: float = 0.008
    norm_weight: float = 0.1
    triplet_weight: float = 1.0
    bce_weight: float = 1.0
    feature_weight: float = 1.0
    negatives: str = "hardest"

    def __post_init__(self) -> None:
        for name in _WEIGHTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"loss setting {name} must be a finite number >= 0, got {value!r}")
        if self.negatives not in NEGATIVES:
            raise ValueError(f"loss setting negatives must be one of {', '.join(NEGATIVES)}; got {self.negatives!r}")
        if not any(getattr(self, name) > 0 for name in _WEIGHTS):
            raise ValueError(f"loss settings: at least one of {', '.join(_WEIGHTS)} must be > 0")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "LossConfig":
        return dataclass_from_dict(cls, values, "loss setting(s)")


SELECT_ON = ("metric", "descriptor")
OPTIMIZERS = ("adam", "nadam", "sgd")
FUSED_OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "linear", "inverse", "step")
_LATER_DEFAULTS = {"select_on": "metric", "weight_decay": 0.0, "momentum": 0.9, "dampening": 0.0, "precision": "fp32",
                   "channels_last": False, "compile": "none", "lr_schedule": "constant", "lr_decay": 0.0,
                   "lr_step_epochs": 0, "lr_step_gamma": 0.1, "fused_optimizer": False,
                   "one_pass_shared_stack": False, "objective_options": {}}
_LATER_LOSS_DEFAULTS = {"triplet_weight": 1.0, "bce_weight": 1.0, "feature_weight": 1.0, "negatives": "hardest"}


@dataclass
class TrainConfig:
    """Training settings; defaults are the paper's (SPEC section 3)."""

    model: str = "kglnet"
    epochs: int = 100
    batch_size: int = 256            # P positive pairs per batch
    lr_features: float = 5e-3        # whole feature network
    lr_head: float = 5e-5            # metric head
    optimizer: str = "adam"          # "adam", "nadam" or "sgd" (all optimise the metric head too)
    augment: bool = True
    seed: int = 0
    device: str = "auto"
    eval_batch_size: int = 512
    # Epochs between writes of last.pt (the resume state, about 100 MB for KGL-Net); the last
    # epoch is always written. A resumed run repeats at most checkpoint_every - 1 epochs.
    checkpoint_every: int = 1
    # Also write last.pt inside an epoch once this many minutes have passed since the last write
    # (0: only at epoch ends). Epochs that take longer (large networks on a CPU: one epoch of the
    # built-in data took MFD-Net with eight branches 43 min at one thread here) then lose at most
    # this much to an interruption; a run whose epochs are shorter never writes one.
    checkpoint_minutes: float = 10.0
    threads: int = 0                 # torch CPU threads; 0 keeps torch's default
    loss: LossConfig = field(default_factory=LossConfig)
    select_on: str = "metric"        # validation FPR95 that picks best.pt: "metric" or "descriptor"
    weight_decay: float = 0.0        # L2 penalty of the optimiser (baselines' papers use some)
    momentum: float = 0.9            # SGD momentum
    dampening: float = 0.0           # SGD dampening (Torch7's optim.sgd used dampening = momentum)
    # Learning-rate schedule (multiplies every group's lr; see lr_factor): "constant", "linear"
    # (to 0 at the last step, HardNet's code), "inverse" (lr / (1 + lr_decay * step), Torch7's
    # optim.sgd learningRateDecay) or "step" (x lr_step_gamma every lr_step_epochs epochs).
    lr_schedule: str = "constant"
    lr_decay: float = 0.0
    lr_step_epochs: int = 0
    lr_step_gamma: float = 0.1
    # Fast-path switches (src/kglnet/step.py); the defaults are the exact fp32 eager path.
    precision: str = "fp32"          # "fp32" or "bf16" (autocast for forward pass, loss and evaluation)
    channels_last: bool = False      # NHWC memory format for the convolutions
    compile: str = "none"            # "none" or a torch.compile mode (default, reduce-overhead, max-autotune)
    # The optimiser's fused implementation (one kernel per step for Adam or SGD instead of one per
    # tensor operation); off: PyTorch's default implementation, the exact path.
    fused_optimizer: bool = False
    # KGL-Net's shared descriptor layers once on both modalities' batches (src/kglnet/step.py);
    # off: once per modality, the exact path.
    one_pass_shared_stack: bool = False
    # A kglnet checkpoint of the same model (a run's best.pt or last.pt) whose weights the run
    # starts from instead of the seed's initialisation: fine-tuning a trained model on other
    # pairs, or a second stage with other settings (another loss). The optimiser, the epoch count
    # and the random streams start afresh; "": the seed's initialisation (the paper).
    init_from: str = ""
    # Keyword arguments of a baseline's own objective (kglnet.objectives), for a one-change study
    # of a paper's loss (e.g. {"normalize": true}: the loss on L2-normalised descriptors); {}: the
    # paper's. KGL-Net and its variants take their loss settings from ``loss`` instead.
    objective_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Names are checked here, before train() creates or reads anything.
        if self.model not in list_models():
            raise ValueError(f"unknown model {self.model!r}; registered models: {', '.join(list_models())}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; allowed: {', '.join(OPTIMIZERS)}")
        if self.select_on not in SELECT_ON:
            raise ValueError(f"select_on must be one of {', '.join(SELECT_ON)}; got {self.select_on!r}")
        for name in ("weight_decay", "momentum", "dampening"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ValueError(f"{name} must be a number in [0, 1); got {value!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}; got {self.lr_schedule!r}")
        if self.lr_schedule == "inverse" and not self.lr_decay > 0:
            raise ValueError(f"lr_schedule 'inverse' needs lr_decay > 0; got {self.lr_decay!r}")
        if self.lr_schedule == "step" and not (self.lr_step_epochs >= 1 and 0 < self.lr_step_gamma < 1):
            raise ValueError("lr_schedule 'step' needs lr_step_epochs >= 1 and 0 < lr_step_gamma < 1; got "
                             f"{self.lr_step_epochs!r}, {self.lr_step_gamma!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        if self.compile not in COMPILE_MODES:
            raise ValueError(f"compile must be one of {', '.join(COMPILE_MODES)}; got {self.compile!r}")
        if isinstance(self.checkpoint_every, bool) or not isinstance(self.checkpoint_every, int) \
                or self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be an integer >= 1; got {self.checkpoint_every!r}")
        if isinstance(self.checkpoint_minutes, bool) or not isinstance(self.checkpoint_minutes, (int, float)) \
                or not 0 <= self.checkpoint_minutes < float("inf"):
            raise ValueError(f"checkpoint_minutes must be a number >= 0 (0: only at epoch ends); "
                             f"got {self.checkpoint_minutes!r}")
        if not isinstance(self.channels_last, bool):
            raise ValueError(f"channels_last must be true or false; got {self.channels_last!r}")
        if not isinstance(self.fused_optimizer, bool):
            raise ValueError(f"fused_optimizer must be true or false; got {self.fused_optimizer!r}")
        if not isinstance(self.one_pass_shared_stack, bool):
            raise ValueError(f"one_pass_shared_stack must be true or false; got {self.one_pass_shared_stack!r}")
        if self.one_pass_shared_stack and not model_info(self.model).shared_stack:
            raise ValueError(f"one_pass_shared_stack needs a model with shared descriptor layers (KGL-Net or "
                             f"one of its variants); got model {self.model!r}")
        if not isinstance(self.init_from, str):
            raise ValueError(f"init_from must be the path of a checkpoint (a string, \"\" for none); "
                             f"got {self.init_from!r}")
        if self.fused_optimizer and self.optimizer not in FUSED_OPTIMIZERS:
            raise ValueError(f"fused_optimizer needs optimizer {' or '.join(FUSED_OPTIMIZERS)} "
                             f"(PyTorch has no fused {self.optimizer}); got optimizer {self.optimizer!r}")
        if isinstance(self.loss, dict):
            self.loss = LossConfig.from_dict(self.loss)
        check_objective_options(self.model, self.objective_options)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        # __post_init__ turns a "loss" dict into a LossConfig
        return dataclass_from_dict(cls, values, "training setting(s)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def resume_key(self) -> str:
        """Fingerprint of everything that must match for a resume to be exact (all but epochs/device).

        Settings added after the first checkpoints were written (the ablation switches and
        ``select_on``) enter the fingerprint only when they differ from their defaults, which are
        the earlier behaviour: a checkpoint made before they existed still resumes, and any
        changed setting still refuses it. ``init_from`` is a path, like the data files' (moving a
        run's files does not change it); the checksum of its file is compared as an input instead.
        """
        d = self.to_dict()
        for volatile in ("epochs", "device", "eval_batch_size", "threads", "checkpoint_every", "checkpoint_minutes",
                         "init_from"):
            d.pop(volatile)
        for key, default in _LATER_DEFAULTS.items():
            if d.get(key) == default:
                d.pop(key)
        for key, default in _LATER_LOSS_DEFAULTS.items():
            if d["loss"].get(key) == default:
                d["loss"].pop(key)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


# Arguments every objective takes from the training loop, never from the config.
_LOOP_ARGUMENTS = ("model", "vis", "other", "generator")

# The keyword arguments (beyond _LOOP_ARGUMENTS) of each objective of kglnet.objectives.OBJECTIVES,
# which objective_options may set; tests/test_settings.py holds this to the functions' signatures.
OBJECTIVE_OPTIONS: dict[str, tuple[str, ...]] = {
    "hardnet": (),
    "sosnet": ("k", "sos_weight"),
    "hynet": (),
    "tfeat": ("margin",),
    "l2net": ("compactness_weight",),
    "softpn": ("negative", "normalize"),
    "quadruplet": ("both_positives", "normalize", "negatives"),
    "bce_random_negatives": (),
    "hinge_random_negatives": ("margin",),
}


def check_objective_options(model: str, options: Any) -> None:
    """Refuse ``objective_options`` the model's objective would not take: not a mapping, given
    for a model trained with KGL-Net's loss (its settings are ``loss``), or naming an argument
    the objective does not have (the error lists those it has)."""
    if not isinstance(options, dict):
        raise ValueError(f"objective_options must be a mapping of the objective's keyword arguments; got {options!r}")
    if not options:
        return
    objective = model_info(model).objective
    if objective == "kglnet":
        raise ValueError(f"objective_options apply to a baseline's own objective; model {model!r} trains with "
                         "KGL-Net's loss, whose settings are `loss`")
    allowed = OBJECTIVE_OPTIONS[objective]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"objective_options: objective {objective!r} of model {model!r} has no argument(s) "
                         f"{', '.join(unknown)}; it takes: {', '.join(allowed) or 'none'}")
