"""Batched inference of a patch-matching model on uint8 pair arrays."""

from __future__ import annotations

import numpy as np
import torch


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; any other string is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available on this machine")
    return device


def to_patch_tensor(patches: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 [N,64,64] -> float [N,1,64,64] in [0,1] on ``device`` (the /255 happens there)."""
    return torch.from_numpy(np.ascontiguousarray(patches)).to(device).unsqueeze(1).float().div_(255.0)


@torch.no_grad()
def score_pairs(model: torch.nn.Module, left: np.ndarray, right: np.ndarray, batch_size: int = 512,
                device: torch.device | str = "cpu") -> dict[str, np.ndarray | None]:
    """Descriptor distances and match probabilities for aligned pairs.

    Args:
        model: a registered model in eval mode whose forward returns
            ``(desc_left [B,D] or None, desc_right [B,D] or None, probability [B] or None)``
            (a descriptor model has no probability, a metric-only model no descriptors).
        left, right: uint8 [N,64,64].
    Returns:
        ``{"distance": float32 [N] Euclidean distance of the L2-normalised descriptors, or None,
        "probability": float32 [N] metric-branch match probability, or None}``.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    distances, probabilities = [], []
    for start in range(0, len(left), batch_size):
        vis = to_patch_tensor(left[start:start + batch_size], device)
        other = to_patch_tensor(right[start:start + batch_size], device)
        desc_vis, desc_other, prob = model(vis, other)
        if desc_vis is not None:
            distances.append(torch.linalg.vector_norm(desc_vis - desc_other, dim=1).float().cpu())
        if prob is not None:
            probabilities.append(prob.float().cpu())
    model.train(was_training)
    if not distances and not probabilities:
        raise ValueError(f"{type(model).__name__} returned neither descriptors nor a probability")
    return {
        "distance": torch.cat(distances).numpy() if distances else None,
        "probability": torch.cat(probabilities).numpy() if probabilities else None,
    }
