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


# Pairs uploaded to the device per transfer (8 Ki pairs = 64 MiB). On CUDA each chunk is copied
# from pinned host memory without blocking, so the host prepares the next chunk while the GPU
# scores this one; one large pageable upload left the GPU idle for the whole copy first.
_UPLOAD_PAIRS = 8192


def _upload(array: np.ndarray, device: torch.device) -> torch.Tensor:
    host = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":
        return host.pin_memory().to(device, non_blocking=True)
    return host.to(device)


@torch.no_grad()
def score_pairs(model: torch.nn.Module, left: np.ndarray, right: np.ndarray, batch_size: int = 512,
                device: torch.device | str = "cpu", precision: str = "fp32",
                channels_last: bool = False, fixed_batch: bool = False) -> dict[str, np.ndarray | None]:
    """Descriptor distances and match probabilities for aligned pairs.

    Args:
        model: a registered model in eval mode whose forward returns
            ``(desc_left [B,D] or None, desc_right [B,D] or None, probability [B] or None)``
            (a descriptor model has no probability, a metric-only model no descriptors).
        left, right: uint8 [N,64,64].
        precision: "fp32" (exact) or "bf16" (autocast; scores are returned as float32).
        channels_last: feed NHWC batches (use with a model converted to channels_last).
        fixed_batch: pad a short last batch to ``batch_size`` (scores of the padding dropped), so
            a ``torch.compile``-d model with ``dynamic=False`` sees one shape and compiles once.
    Returns:
        ``{"distance": float32 [N] Euclidean distance of the L2-normalised descriptors, or None,
        "probability": float32 [N] metric-branch match probability, or None}``.

    The uint8 patches go to the device in large chunks and are cast there, and the scores stay on
    the device until the end: no host synchronisation per batch.
    """
    from .step import autocast_context, to_unit_float

    device = torch.device(device)
    was_training = model.training
    model.eval()
    distances, probabilities = [], []
    with autocast_context(device, precision):
        # whole batches per chunk: only the very last batch can be short (or padded)
        per_upload = max(batch_size, _UPLOAD_PAIRS // batch_size * batch_size)
        for chunk in range(0, len(left), per_upload):
            chunk_left = _upload(left[chunk:chunk + per_upload], device)
            chunk_right = _upload(right[chunk:chunk + per_upload], device)
            for start in range(0, len(chunk_left), batch_size):
                batch_left = chunk_left[start:start + batch_size]
                batch_right = chunk_right[start:start + batch_size]
                real = len(batch_left)
                if fixed_batch and real < batch_size:
                    pad = batch_size - real
                    batch_left = torch.cat([batch_left, batch_left.new_zeros((pad, *batch_left.shape[1:]))])
                    batch_right = torch.cat([batch_right, batch_right.new_zeros((pad, *batch_right.shape[1:]))])
                vis = to_unit_float(batch_left, channels_last)
                other = to_unit_float(batch_right, channels_last)
                desc_vis, desc_other, prob = model(vis, other)
                # Copies, never views: a model compiled with CUDA graphs (reduce-overhead)
                # overwrites its outputs at the next call.
                if desc_vis is not None:
                    distances.append(torch.linalg.vector_norm(desc_vis[:real].float() - desc_other[:real].float(), dim=1))
                if prob is not None:
                    probabilities.append(prob[:real].to(torch.float32, copy=True))
    model.train(was_training)
    if not distances and not probabilities:
        raise ValueError(f"{type(model).__name__} returned neither descriptors nor a probability")
    return {
        "distance": torch.cat(distances).cpu().numpy() if distances else None,
        "probability": torch.cat(probabilities).cpu().numpy() if probabilities else None,
    }
