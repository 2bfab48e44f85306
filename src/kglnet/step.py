"""One training step, shared by the training loop and the benchmark, with the fast-path switches.

The step takes a batch of uint8 pair patches already on the training device and does everything
else there: the cast to [0, 1], the batched augmentation (SPEC section 4), the forward pass and
loss (under bf16 autocast with ``precision="bf16"``), the backward pass and the optimiser step.
It never waits for the device: the loss terms stay tensors, and a non-finite loss is recorded on
the device and reported by :meth:`TrainStep.check_finite`, which the loop calls once per epoch
(one host synchronisation per epoch instead of one per step).

Fast-path switches (``TrainConfig``): ``precision`` ("fp32" is the exact path, "bf16" runs the
forward pass and loss under ``torch.autocast`` in bfloat16, weights and optimiser state stay fp32),
``channels_last`` (NHWC memory format for the convolutions) and ``compile`` ("none" or a
``torch.compile`` mode: "default", "reduce-overhead" (CUDA graphs), "max-autotune").
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch

PRECISIONS = ("fp32", "bf16")
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` in bfloat16 for ``precision="bf16"``, a no-op context for "fp32"."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def prepare_model(model: torch.nn.Module, channels_last: bool) -> torch.nn.Module:
    """Move the model's 4-D weights to NHWC when ``channels_last`` (in place; returns the model)."""
    if channels_last:
        model.to(memory_format=torch.channels_last)
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
        augment: ``augment(vis, other, generator) -> (vis, other)`` or None (no augmentation).
        augment_generator: the augmentation's random stream (on the model's device).
        precision, channels_last, compile: the fast-path switches (module docstring).
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 loss_fn: Callable[..., dict[str, torch.Tensor]], augment=None,
                 augment_generator: torch.Generator | None = None, precision: str = "fp32",
                 channels_last: bool = False, compile: str = "none") -> None:
        if compile not in COMPILE_MODES:
            raise ValueError(f"compile must be one of {', '.join(COMPILE_MODES)}; got {compile!r}")
        self.device = next(model.parameters()).device
        autocast_context(self.device, precision)  # validates precision
        self.model = prepare_model(model, channels_last)
        self.optimizer = optimizer
        self.augment = augment
        self.augment_generator = augment_generator
        self.precision = precision
        self.channels_last = channels_last
        self.compile = compile
        self._loss_fn = loss_fn
        # The forward pass and loss are compiled; augmentation (random draws from a generator)
        # and the optimiser step stay eager.
        self._forward_loss = (self._eager_forward_loss if compile == "none"
                              else torch.compile(self._eager_forward_loss, mode=compile, dynamic=False))
        self.steps = 0
        # First step (1-based) with a non-finite loss, or 0: kept on the device, read once per epoch.
        self._first_bad = torch.zeros((), dtype=torch.long, device=self.device)
        self._bad_terms: dict[str, torch.Tensor] | None = None

    def _eager_forward_loss(self, vis: torch.Tensor, other: torch.Tensor) -> dict[str, torch.Tensor]:
        with autocast_context(self.device, self.precision):
            terms = self._loss_fn(self.model, vis, other)
        return {k: v.float() for k, v in terms.items()}

    def __call__(self, vis_u8: torch.Tensor, other_u8: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimiser step on uint8 [B,64,64] batches on the model's device; returns the loss
        terms (detached tensors, still on the device)."""
        vis = to_unit_float(vis_u8)
        other = to_unit_float(other_u8)
        if self.augment is not None:
            vis, other = self.augment(vis, other, self.augment_generator)
        if self.channels_last:
            vis = vis.contiguous(memory_format=torch.channels_last)
            other = other.contiguous(memory_format=torch.channels_last)
        terms = self._forward_loss(vis, other)
        self.steps += 1
        self.optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        self.optimizer.step()
        detached = {k: v.detach() for k, v in terms.items()}
        # Remember the first non-finite step and its terms without reading them back now.
        newly_bad = (self._first_bad == 0) & ~torch.isfinite(detached["total"])
        self._first_bad = torch.where(newly_bad, torch.full_like(self._first_bad, self.steps), self._first_bad)
        if self._bad_terms is None:
            self._bad_terms = {k: torch.zeros_like(v) for k, v in detached.items()}
        self._bad_terms = {k: torch.where(newly_bad, v, self._bad_terms[k]) for k, v in detached.items()}
        return detached

    def check_finite(self) -> tuple[int, dict[str, float]] | None:
        """(1-based step, its loss terms) of the first non-finite loss since the last reset, or
        None. Reads one value back from the device (a synchronisation): call it once per epoch."""
        first = int(self._first_bad)
        if first == 0:
            return None
        return first, {k: float(v) for k, v in (self._bad_terms or {}).items()}

    def reset_counter(self) -> None:
        """Start counting steps (and the first non-finite step) from 1 again, e.g. each epoch."""
        self.steps = 0
        self._first_bad = torch.zeros_like(self._first_bad)
        self._bad_terms = None


__all__ = ["PRECISIONS", "COMPILE_MODES", "TrainStep", "autocast_context", "prepare_model", "to_unit_float"]
