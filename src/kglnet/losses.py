"""KGL-Net training objective (SPEC section 3). Every term has weight 1 by default.

All functions take batched tensors on the training device and return tensors on it: no host-side
index tensors and no ``.item()`` calls, so a training step never waits on the host.

:class:`LossConfig` also carries the paper's ablations (which have no published numbers): a weight
per term (0 switches a term off) and the choice of the metric head's negatives (``"hardest"``:
HNSM-M, or ``"random"``). The defaults are the paper's objective, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# LossConfig lives in the torch-free kglnet.settings (the workflow's config checks build it).
from .settings import LossConfig

# A distance no real pair reaches (L2-normalised descriptors are at most 2 apart); used to take
# excluded candidates out of the minimum.
_EXCLUDED = 10.0


def descriptor_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """All-pairs distance between L2-normalised descriptors: ``sqrt(|2 - 2 a.b| + 1e-6)``.

    Shapes: a [P,D], b [Q,D] -> [P,Q].
    """
    return torch.sqrt((2.0 - 2.0 * a @ b.t()).abs() + 1e-6)


def pair_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance of aligned pairs, same formula as :func:`descriptor_distance`. [P,D],[P,D] -> [P]."""
    return torch.sqrt((2.0 - 2.0 * (a * b).sum(dim=1)).abs() + 1e-6)


@dataclass
class HardNegatives:
    """Hardest negatives of a batch of P positive pairs.

    distance [P]: the smallest of the four candidates per pair; source [P] (int): which candidate won
    (0 VIS-VIS, 1 X-X, 2 VIS_i-X_j, 3 X_i-VIS_j); vis_other_index [P] (int): the j of the nearest
    X_j (j != i) to VIS_i, used as the HNSM-M negative.
    """

    distance: torch.Tensor
    source: torch.Tensor
    vis_other_index: torch.Tensor


def hardest_negatives(desc_vis: torch.Tensor, desc_other: torch.Tensor, exclude_at_most: float = 0.008) -> HardNegatives:
    """Four-candidate hardest negative per positive pair (HyNet style, SPEC section 3).

    Candidates for pair i: nearest other VIS to VIS_i, nearest other X to X_i, nearest X_j (j != i)
    to VIS_i, nearest VIS_j (j != i) to X_i. The diagonal, and any candidate with distance
    <= ``exclude_at_most`` (probably the same physical point: a false negative), are excluded.

    Shapes: desc_vis, desc_other [P,D] L2-normalised, P >= 2.
    """
    p = desc_vis.shape[0]
    if p < 2:
        raise ValueError(f"hard-negative mining needs at least 2 pairs per batch, got {p}")
    eye = torch.eye(p, dtype=torch.bool, device=desc_vis.device)

    def masked(d: torch.Tensor) -> torch.Tensor:
        return d.masked_fill(eye | (d <= exclude_at_most), _EXCLUDED)

    d_vv = masked(descriptor_distance(desc_vis, desc_vis))
    d_xx = masked(descriptor_distance(desc_other, desc_other))
    d_vx = masked(descriptor_distance(desc_vis, desc_other))   # [i, j] = D(VIS_i, X_j)
    candidates = torch.stack([
        d_vv.min(dim=1).values,
        d_xx.min(dim=1).values,
        d_vx.min(dim=1).values,        # nearest X_j to VIS_i
        d_vx.min(dim=0).values,        # nearest VIS_j to X_i (column i of D(VIS, X))
    ], dim=1)                          # [P, 4]
    distance, source = candidates.min(dim=1)
    return HardNegatives(distance=distance, source=source, vis_other_index=d_vx.argmin(dim=1))


def hybrid_triplet_loss(d_pos: torch.Tensor, d_neg: torch.Tensor, margin: float = 1.2, alpha: float = 2.0) -> torch.Tensor:
    """``sum_i max(0, margin + g(d_pos) - g(d_neg))`` with ``g(d) = d + alpha d^2 / 2``. [P],[P] -> scalar."""

    def g(d: torch.Tensor) -> torch.Tensor:
        return d + alpha * d.pow(2) / 2.0

    return F.relu(margin + g(d_pos) - g(d_neg)).sum()


def norm_loss(raw_vis: torch.Tensor, raw_other: torch.Tensor, weight: float = 0.1) -> torch.Tensor:
    """``weight * sum_i (|raw_vis_i| - |raw_other_i|)^2`` on the pre-normalisation descriptors."""
    return weight * (raw_vis.norm(dim=1) - raw_other.norm(dim=1)).pow(2).sum()


def hnsm_pairs(diff_vis: torch.Tensor, diff_other: torch.Tensor, negative_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """HNSM-M examples for the metric head: P positives then P hard negatives.

    Returns (vis maps [2P,...], other maps [2P,...], labels [2P] float). The negative for VIS_i is
    X_{negative_index[i]}. The SPEC shuffles the 2P examples; every layer of the metric head works
    per example (FRN normalises each sample, no BatchNorm) and the BCE is a mean, so the order
    cannot change the loss or its gradient and the shuffle is left out.
    """
    p = diff_vis.shape[0]
    vis = torch.cat([diff_vis, diff_vis], dim=0)
    other = torch.cat([diff_other, diff_other.index_select(0, negative_index)], dim=0)
    labels = torch.cat([diff_vis.new_ones(p), diff_vis.new_zeros(p)])
    return vis, other, labels


def random_negative_index(p: int, device: torch.device | str,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """HNSM-M ablation: for each i a j != i drawn uniformly from the other P - 1 pairs. [P] int64.

    ``j = (i + k) mod P`` with ``k`` uniform in 1..P-1, drawn from ``generator`` (on its own
    device, then moved to ``device`` if they differ) or, without one, from torch's default
    generator of ``device``. No host synchronisation.
    """
    if p < 2:
        raise ValueError(f"random negatives need at least 2 pairs per batch, got {p}")
    device = torch.device(device)
    gen_device = generator.device if generator is not None else device
    k = torch.randint(1, p, (p,), generator=generator, device=gen_device).to(device)
    return (torch.arange(p, device=device) + k).remainder_(p)


def feature_guided_loss(common_vis, common_other, diff_vis, diff_other) -> torch.Tensor:
    """MSE between the common and the difference map of the same patch, VIS term + other term.

    Gradients flow into both maps (no detach), as SPEC section 3 states.
    """
    return F.mse_loss(common_vis, diff_vis) + F.mse_loss(common_other, diff_other)


def kglnet_loss(model, vis: torch.Tensor, other: torch.Tensor, cfg: LossConfig = LossConfig(),
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Full objective for a batch of P positive pairs. Returns the weighted terms (as they enter
    the total; the norm term carries ``norm_weight`` as before), their sum as ``total``, and the
    mean positive / hardest-negative distances (detached) for logging.

    ``generator`` supplies the draws of ``cfg.negatives == "random"`` (see
    :func:`random_negative_index`); the default objective draws nothing.
    """
    f = model.features(vis, other)
    d_pos = pair_distance(f.desc_vis, f.desc_other)
    # Mined in every configuration: it is HNSM-M's source and the logged d_neg.
    hard = hardest_negatives(f.desc_vis, f.desc_other, cfg.exclude_at_most)
    zero = d_pos.new_zeros(())
    triplet = norm = bce = feature = zero
    if cfg.triplet_weight > 0:
        triplet = cfg.triplet_weight * hybrid_triplet_loss(d_pos, hard.distance, cfg.margin, cfg.alpha)
    if cfg.norm_weight > 0:
        norm = norm_loss(f.raw_vis, f.raw_other, cfg.norm_weight)
    if cfg.bce_weight > 0:
        if cfg.negatives == "random":
            negative_index = random_negative_index(f.diff_vis.shape[0], f.diff_vis.device, generator)
        else:
            negative_index = hard.vis_other_index
        m_vis, m_other, labels = hnsm_pairs(f.diff_vis, f.diff_other, negative_index)
        bce = cfg.bce_weight * F.binary_cross_entropy_with_logits(model.metric_logits(m_vis, m_other), labels)
    if cfg.feature_weight > 0:
        feature = cfg.feature_weight * feature_guided_loss(f.common_vis, f.common_other, f.diff_vis, f.diff_other)
    return {
        "total": triplet + norm + bce + feature,
        "triplet": triplet, "norm": norm, "bce": bce, "feature": feature,
        "d_pos": d_pos.detach().mean(), "d_neg": hard.distance.detach().mean(),
    }
