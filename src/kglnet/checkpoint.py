"""Checkpoints: one self-describing format for resume state and for trained models.

A checkpoint is a dict saved with ``torch.save`` and written atomically. It names its format and
its model, so evaluation can refuse a file that is not a kglnet checkpoint, or that belongs to
another model, with an error naming the file instead of a stack trace from ``load_state_dict``.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError  # noqa: F401  (re-exported: raised here)
from .models import create_model, list_models
from .utils.io import atomic_path

CHECKPOINT_FORMAT = "kglnet-checkpoint"
CHECKPOINT_VERSION = 1


def cpu_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``model``'s weights and buffers."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module,
                    model_state: dict[str, torch.Tensor] | None = None, **extra: Any) -> None:
    """Atomically save ``model``'s weights (or ``model_state``, weights of the same model saved
    earlier), its registered name and any ``extra`` entries."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_name": getattr(model, "model_name", type(model).__name__),
        "model_state": model_state if model_state is not None else cpu_state_dict(model),
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_checkpoint(path: str | os.PathLike, expected_model: str | None = None) -> dict[str, Any]:
    """Load and check a checkpoint dict (weights only: no arbitrary pickled code is executed)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "checkpoint file does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(path, f"not a readable checkpoint (truncated or not a torch file): {exc}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(path, f"not a kglnet checkpoint (no 'format: {CHECKPOINT_FORMAT}' entry)")
    name = state.get("model_name")
    if name not in list_models():
        raise CheckpointError(path, f"checkpoint is of model {name!r}, which is not registered ({', '.join(list_models())})")
    if expected_model is not None and name != expected_model:
        raise CheckpointError(path, f"checkpoint is of model {name!r}, expected {expected_model!r}")
    return state


def load_weights(model: torch.nn.Module, state: dict[str, Any], path: str | os.PathLike, context: str = "") -> None:
    """Load checkpoint ``state``'s weights (read from ``path``) into ``model``; weights that do not
    fit raise :class:`CheckpointError` naming the file (``context`` prefixes the problem)."""
    try:
        model.load_state_dict(state["model_state"])
    except RuntimeError as exc:
        first = " ".join(str(exc).splitlines()[0:3])
        raise CheckpointError(path, f"{context}weights do not fit model {state['model_name']!r}: {first}") from None


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu", expected_model: str | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Build the checkpoint's model, load its weights, move it to ``device`` in eval mode."""
    state = read_checkpoint(path, expected_model)
    model = create_model(state["model_name"], **state.get("model_kwargs", {}))
    load_weights(model, state, path)
    return model.to(device).eval(), state
