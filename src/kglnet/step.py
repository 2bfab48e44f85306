"""One training step, shared by the training loop and the benchmark, with the fast-path switches.

The step takes a batch of uint8 pair patches already on the training device and does everything
else there: the cast to [0, 1], the batched augmentation (SPEC section 4), the forward pass and
loss (under bf16 autocast with ``precision="bf16"``), the backward pass and the optimiser step.
It never waits for the device: the loss terms stay tensors, and a non-finite loss is recorded on
the device and reported by :meth:`TrainStep.check_finite`, which the loop calls once per epoch
(one host synchronisation per epoch instead of one per step).

Fast-path switches (``TrainConfig``): ``precision`` ("fp32" is the exact path, "bf16" runs the
forward pass and loss under ``torch.autocast`` in bfloat16, weights and optimiser state stay fp32),
``channels_last`` (NHWC memory format for the convolutions), ``compile`` ("none" or a
``torch.compile`` mode: "default", "reduce-overhead" (CUDA graphs), "max-autotune") and
``one_pass_shared_stack`` (KGL-Net and its variants only: the shared descriptor layers run once on
both modalities' batches stacked; :class:`kglnet.models.kglnet.KGLNet`).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch

from .settings import COMPILE_MODES, PRECISIONS  # noqa: F401  (re-exported)


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` in bfloat16 for ``precision="bf16"``, a no-op context for "fp32"."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def prepare_model(model: torch.nn.Module, channels_last: bool,
                  one_pass_shared_stack: bool = False) -> torch.nn.Module:
    """Move the model's 4-D weights to NHWC when ``channels_last``, and switch KGL-Net's shared
    descriptor layers to one pass over both modalities when ``one_pass_shared_stack`` (in place;
    returns the model). A model without shared descriptor layers refuses that switch."""
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if one_pass_shared_stack:
        if not hasattr(model, "one_pass_shared_stack"):
            raise ValueError(f"one_pass_shared_stack: {type(model).__name__} has no shared descriptor layers "
                             "(only KGL-Net and its variants do)")
        model.one_pass_shared_stack = True
    return model


def to_unit_float(patches: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 [B,64,64] -> float32 [B,1,64,64] in [0,1], on the patches' device."""
    x = patches.unsqueeze(1).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


class TrainStep:
    """``step(vis_u8, other_u8) -> dict of detached loss-term tensors`` (no host synchronisation).

    Args:
        model: the model being trained (in train mode; moved to NHWC here when ``channels_last``).
        optimizer: its optimiser.
        loss_fn: ``loss_fn(model, vis, other) -> dict`` with a scalar ``"total"`` (the objective;
            any random draws it makes come from generators it closes over).
        augment: a :class:`kglnet.augment.PairAugmentation` (or any object with its ``draw`` and
            ``apply`` methods), or None (no augmentation).
        augment_generator: the augmentation's random stream (on the model's device).
        precision, channels_last, compile, one_pass_shared_stack: the fast-path switches (module
            docstring).

    With a compile mode, one compiled function takes the uint8 batch and the augmentation's random
    numbers (drawn eagerly from ``augment_generator``, in the same order as the eager path) and
    does the cast, the augmentation, the forward pass and the loss; its backward pass is compiled
    with it. The eager path calls the same function uncompiled, so both apply the same operations
    to the same draws. On CUDA the fast path also lets cuDNN pick its fastest convolution
    algorithms (``torch.backends.cudnn.benchmark``).

    ``phase_timer``: if set, a callable ``phase_timer(name)`` called as each phase of a step ends
    ("draw", "forward", "backward", "optimizer", "bookkeeping"); ``kglnet bench --phases`` uses it.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 loss_fn: Callable[..., dict[str, torch.Tensor]], augment=None,
                 augment_generator: torch.Generator | None = None, precision: str = "fp32",
                 channels_last: bool = False, compile: str = "none", one_pass_shared_stack: bool = False) -> None:
        if compile not in COMPILE_MODES:
            raise ValueError(f"compile must be one of {', '.join(COMPILE_MODES)}; got {compile!r}")
        self.device = next(model.parameters()).device
        autocast_context(self.device, precision)  # validates precision
        self.model = prepare_model(model, channels_last, one_pass_shared_stack)
        self.optimizer = optimizer
        self.augment = augment
        self.augment_generator = augment_generator
        # draw/apply split: the application is a pure function of the batch and the draws, so it
        # is compiled with the forward pass
        if augment is not None and not (hasattr(augment, "draw") and hasattr(augment, "apply")):
            raise TypeError(f"augment must have draw() and apply() (like PairAugmentation); got {augment!r}")
        self.precision = precision
        self.channels_last = channels_last
        self.compile = compile
        self._loss_fn = loss_fn
        if self.device.type == "cuda" and (precision != "fp32" or compile != "none"):
            # the fast path is not bit-exact anyway; the exact path keeps cuDNN's default choice
            torch.backends.cudnn.benchmark = True
        self._forward_loss = (self._eager_forward_loss if compile == "none"
                              else torch.compile(self._eager_forward_loss, mode=compile, dynamic=False))
        self.phase_timer: Callable[[str], None] | None = None
        self.steps = 0
        self._keys: list[str] | None = None
        # First step (1-based) with a non-finite loss, or 0: kept on the device, read once per epoch.
        self._first_bad = torch.zeros((), dtype=torch.long, device=self.device)
        self._bad_values: torch.Tensor | None = None
        self._sums: torch.Tensor | None = None

    def _eager_forward_loss(self, vis_u8: torch.Tensor, other_u8: torch.Tensor,
                            draws: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        vis = to_unit_float(vis_u8)
        other = to_unit_float(other_u8)
        if self.augment is not None:
            vis, other = self.augment.apply(vis, other, draws)
        if self.channels_last:
            vis = vis.contiguous(memory_format=torch.channels_last)
            other = other.contiguous(memory_format=torch.channels_last)
        with autocast_context(self.device, self.precision):
            terms = self._loss_fn(self.model, vis, other)
        return {k: v.float() for k, v in terms.items()}

    def _mark(self, name: str) -> None:
        if self.phase_timer is not None:
            self.phase_timer(name)

    def __call__(self, vis_u8: torch.Tensor, other_u8: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimiser step on uint8 [B,64,64] batches on the model's device; returns the loss
        terms (detached tensors, still on the device)."""
        draws: dict[str, torch.Tensor] = {}
        if self.augment is not None:
            draws = self.augment.draw((vis_u8.shape[0], 1, *vis_u8.shape[1:]), self.augment_generator,
                                      self.device)
        self._mark("draw")
        terms = self._forward_loss(vis_u8, other_u8, draws)
        self._mark("forward")
        self.steps += 1
        self.optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        self._mark("backward")
        self.optimizer.step()
        self._mark("optimizer")
        # Bookkeeping on the terms stacked into one tensor (one sum and one masked copy instead
        # of one per term; with 7 terms, as KGL-Net's loss has, 20 aten calls per step instead of
        # 29): their running sum and the first non-finite step with its terms, read back only
        # once per epoch.
        if self._keys is None:
            self._keys = list(terms)
        values = torch.stack([terms[k].detach() for k in self._keys])
        self._sums = values if self._sums is None else self._sums + values
        newly_bad = (self._first_bad == 0) & ~torch.isfinite(values[self._keys.index("total")])
        self._first_bad = torch.where(newly_bad, self.steps, self._first_bad)
        self._bad_values = torch.where(newly_bad, values,
                                       torch.zeros_like(values) if self._bad_values is None else self._bad_values)
        self._mark("bookkeeping")
        return dict(zip(self._keys, values.unbind()))

    def epoch_sums(self) -> dict[str, torch.Tensor]:
        """Each loss term summed over the steps since :meth:`reset_counter` (tensors on the device)."""
        if self._sums is None:
            return {}
        return dict(zip(self._keys or [], self._sums.unbind()))

    def check_finite(self) -> tuple[int, dict[str, float]] | None:
        """(1-based step, its loss terms) of the first non-finite loss since the last reset, or
        None. Reads one value back from the device (a synchronisation): call it once per epoch."""
        first = int(self._first_bad)
        if first == 0:
            return None
        values = self._bad_values.tolist() if self._bad_values is not None else []
        return first, dict(zip(self._keys or [], values))

    def epoch_state(self) -> dict[str, Any]:
        """The counters since :meth:`reset_counter` (steps taken, term sums; on the CPU), for a
        last.pt written inside an epoch. Call it after :meth:`check_finite` found nothing."""
        return {"steps": self.steps, "keys": list(self._keys or []),
                "sums": None if self._sums is None else self._sums.detach().to("cpu", copy=True)}

    def load_epoch_state(self, state: dict[str, Any]) -> None:
        """Continue counting from an :meth:`epoch_state` (a run resumed inside an epoch)."""
        self.reset_counter()
        self.steps = int(state["steps"])
        self._keys = list(state["keys"]) or None
        self._sums = None if state["sums"] is None else state["sums"].to(self.device)

    def reset_counter(self) -> None:
        """Start counting steps (the first non-finite step, the term sums) from 1 again, e.g. each
        epoch."""
        self.steps = 0
        self._first_bad = torch.zeros_like(self._first_bad)
        self._bad_values = None
        self._sums = None


__all__ = ["PRECISIONS", "COMPILE_MODES", "TrainStep", "autocast_context", "prepare_model", "to_unit_float"]
