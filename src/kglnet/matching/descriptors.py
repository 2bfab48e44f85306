"""Per-image patch descriptors and pairwise match probabilities from a trained model.

The models' ``forward(vis, other)`` takes *aligned pairs*; matching needs the descriptors of all
patches of ONE image at a time, through the branch of that image's spectrum:

- KGL-Net (:class:`kglnet.models.KGLNet`, also the shared-low-level ablation): VIS patches go
  through the VIS low-level stack (``low_vis``), patches of the other image (NIR, thermal, SAR)
  through ``low_other``; both then through the shared descriptor layers (``desc_high``,
  ``desc_proj``, ``desc_bn``) and L2 normalisation. In eval mode this equals the
  ``desc_vis`` / ``desc_other`` of :meth:`KGLNet.features` on any pairing of the patches.
- descriptor models (:class:`kglnet.models.descriptors.DescriptorModel`: l2net, hardnet, sosnet,
  hynet, tfeat, pnnet, qnet): one set of weights for both spectra, ``embed`` then L2
  normalisation; the modality makes no difference.
- any other module whose ``forward(x, x)`` returns descriptors (first two outputs not None): the
  patches are fed as both inputs and the output of the right side is kept (twice the work; used
  for models outside the registry, e.g. in tests).
- metric-only models (``reported_branch == "metric"``: siamese, two_channel, matchnet, scfdm,
  ...) have no descriptors: :func:`has_descriptors` is False and :func:`compute_descriptors`
  raises ``ValueError``.

Shapes: patches uint8 [K, 64, 64] -> descriptors float32 [K, D] (numpy, on the host), computed in
batches of ``batch_size`` under ``torch.no_grad`` on the model's device, in fp32.

:func:`match_probabilities` scores matched patch pairs with the metric branch (KGL-Net's match
probability) through :func:`kglnet.inference.score_pairs`: probability float32 [M].
"""

from __future__ import annotations

import numpy as np
import torch

from kglnet.models.descriptors import DescriptorModel
from kglnet.models.kglnet import KGLNet, check_patch_batch
from kglnet.models.layers import l2_normalize

__all__ = ["MODALITIES", "has_descriptors", "has_metric_branch", "model_device", "branch_descriptors",
           "compute_descriptors", "match_probabilities"]

MODALITIES = ("vis", "other")


def _model_name(model: torch.nn.Module) -> str:
    return getattr(model, "model_name", type(model).__name__)


def has_descriptors(model: torch.nn.Module) -> bool:
    """True when ``model`` produces per-patch descriptors (everything but metric-only models)."""
    if isinstance(model, (KGLNet, DescriptorModel)):
        return True
    return getattr(model, "reported_branch", None) != "metric"


def has_metric_branch(model: torch.nn.Module) -> bool:
    """True when ``model``'s forward returns a match probability (KGL-Net, metric networks)."""
    if isinstance(model, KGLNet):
        return True
    if isinstance(model, DescriptorModel):
        return False
    return getattr(model, "reported_branch", None) == "metric"


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _check_modality(modality: str) -> None:
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {', '.join(MODALITIES)}; got {modality!r}")


def branch_descriptors(model: torch.nn.Module, x: torch.Tensor, modality: str) -> torch.Tensor:
    """L2-normalised descriptors [B, D] of a float batch [B,1,64,64] in [0,1] of ONE spectrum.

    ``modality`` is "vis" for visible patches, "other" for NIR / thermal / SAR patches.
    """
    _check_modality(modality)
    if isinstance(model, KGLNet):
        check_patch_batch(x, modality)
        if model.shared_low_level:
            low = model.low(x)
        else:
            low = (model.low_vis if modality == "vis" else model.low_other)(x)
        _, desc = model._descriptor(model.desc_high(low))
        return desc
    if isinstance(model, DescriptorModel):
        check_patch_batch(x, modality)
        return l2_normalize(model.embed(x))
    if not has_descriptors(model):
        raise ValueError(f"model {_model_name(model)!r} is a metric-only network without descriptors; "
                         "matching needs a descriptor branch (kglnet, hardnet, ...)")
    out = model(x, x)
    desc = out[0] if modality == "vis" else out[1]
    if desc is None:
        raise ValueError(f"model {_model_name(model)!r} returned no descriptors; "
                         "matching needs a descriptor branch (kglnet, hardnet, ...)")
    return desc


@torch.no_grad()
def compute_descriptors(model: torch.nn.Module, patches: np.ndarray, modality: str, *, batch_size: int = 256,
                        device: torch.device | str | None = None) -> np.ndarray:
    """Descriptors float32 [K, D] of uint8 patches [K, 64, 64] of one image, batch by batch.

    ``device``: where the batches go (default: the model's device). The model is put in eval
    mode for the call and restored afterwards.
    """
    from kglnet.step import to_unit_float

    _check_modality(modality)
    patches = np.asarray(patches)
    if patches.ndim != 3 or patches.shape[1:] != (64, 64) or patches.dtype != np.uint8:
        raise ValueError(f"patches must be uint8 [K,64,64], got {patches.dtype} {list(patches.shape)}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not has_descriptors(model):
        raise ValueError(f"model {_model_name(model)!r} is a metric-only network without descriptors; "
                         "matching needs a descriptor branch (kglnet, hardnet, ...)")
    device = torch.device(device) if device is not None else model_device(model)
    if len(patches) == 0:
        return np.zeros((0, int(getattr(model, "descriptor_dim", 128))), np.float32)
    was_training = model.training
    model.eval()
    try:
        out = []
        for start in range(0, len(patches), int(batch_size)):
            batch = torch.from_numpy(np.ascontiguousarray(patches[start:start + int(batch_size)])).to(device)
            out.append(branch_descriptors(model, to_unit_float(batch), modality).float())
        return torch.cat(out).cpu().numpy()
    finally:
        model.train(was_training)


def match_probabilities(model: torch.nn.Module, patches0: np.ndarray, patches1: np.ndarray, matches: np.ndarray,
                        *, batch_size: int = 256, device: torch.device | str | None = None) -> np.ndarray:
    """Metric-branch match probability float32 [M] of each match (i, j): VIS patch ``patches0[i]``
    against other-spectrum patch ``patches1[j]``; ``matches`` int [M, 2]."""
    from kglnet.inference import score_pairs

    if not has_metric_branch(model):
        raise ValueError(f"model {_model_name(model)!r} has no metric branch (no match probability) "
                         "to verify matches with; use a KGL-Net checkpoint or no verification")
    matches = np.asarray(matches, dtype=np.int64).reshape(-1, 2)
    if len(matches) == 0:
        return np.zeros(0, np.float32)
    device = torch.device(device) if device is not None else model_device(model)
    scores = score_pairs(model, patches0[matches[:, 0]], patches1[matches[:, 1]], batch_size=int(batch_size),
                         device=device)
    if scores["probability"] is None:
        raise ValueError(f"model {_model_name(model)!r} returned no match probability")
    return scores["probability"].astype(np.float32)
