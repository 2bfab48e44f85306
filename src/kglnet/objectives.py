"""Training objectives of the baseline models (:mod:`kglnet.models.descriptors`, ``metric_nets``).

``OBJECTIVES[name](model, vis, other, generator=None) -> dict[str, Tensor]``: ``"total"`` (the
scalar to minimise) plus logging terms, for a batch of P POSITIVE pairs (VIS_i, X_i) (the training
files hold positives only; negatives come from the batch), P >= 2. Each model names its objective
in its class attribute ``objective``; :func:`objective_for` looks it up.

Everything stays on the tensors' device: no host synchronisation, no host-side index tensors (random
negatives are drawn with :func:`kglnet.losses.random_negative_index`, from ``generator`` when one
is given, so the draws are reproducible). Distances between L2-normalised descriptors are
:func:`kglnet.losses.descriptor_distance`, ``sqrt(|2 - 2 a.b| + 1e-6)`` (HardNet's formula for
unit vectors).

Model interfaces the objectives use: ``model(vis, other)`` (descriptors) for ``hardnet``,
``sosnet``, ``tfeat``, ``l2net``; ``model.raw_descriptors(vis, other)`` for ``hynet``, ``softpn``
and ``quadruplet``; ``model.logits(vis, other)`` for ``bce_random_negatives`` and
``hinge_random_negatives``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .losses import (descriptor_distance, hardest_negatives, hybrid_triplet_loss, norm_loss, pair_distance,
                     random_negative_index)
from .models.layers import l2_normalize

# A distance no real pair reaches (unit descriptors are at most 2 apart): removes a candidate
# from a minimum.
_EXCLUDED = 10.0


def _check_batch(p: int) -> None:
    if p < 2:
        raise ValueError(f"in-batch negatives need at least 2 pairs per batch, got {p}")


def _descriptors(model, vis: torch.Tensor, other: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    desc_vis, desc_other, _ = model(vis, other)
    if desc_vis is None or desc_other is None:
        raise TypeError(f"{type(model).__name__} returns no descriptors; use a metric objective")
    _check_batch(desc_vis.shape[0])
    return desc_vis, desc_other


# --------------------------------------------------------------------------- building blocks --

def hardest_in_batch(desc_vis: torch.Tensor, desc_other: torch.Tensor, anchor_swap: bool = True,
                     exclude_at_most: float = 0.008) -> tuple[torch.Tensor, torch.Tensor]:
    """HardNet's sampling: (d_pos [P], d_neg [P]) from the VIS-X distance matrix D [P,P].

    ``d_pos[i] = D[i,i]``; ``d_neg[i] = min_{j != i} D[i,j]`` (nearest X_j to VIS_i), and with
    ``anchor_swap`` also ``min_{j != i} D[j,i]`` (nearest VIS_j to X_i). Entries at most
    ``exclude_at_most`` apart are left out as likely false negatives (HardNet's code, 0.008).
    """
    _check_batch(desc_vis.shape[0])
    d = descriptor_distance(desc_vis, desc_other)
    eye = torch.eye(d.shape[0], dtype=torch.bool, device=d.device)
    masked = d.masked_fill(eye | (d <= exclude_at_most), _EXCLUDED)
    d_neg = masked.min(dim=1).values
    if anchor_swap:
        d_neg = torch.minimum(d_neg, masked.min(dim=0).values)
    return d.diagonal(), d_neg


def hardnet_triplet_loss(desc_vis: torch.Tensor, desc_other: torch.Tensor, margin: float = 1.0,
                         anchor_swap: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``mean_i max(0, margin + d_pos_i - d_neg_i)`` with :func:`hardest_in_batch`.

    Returns (loss, d_pos, d_neg).
    """
    d_pos, d_neg = hardest_in_batch(desc_vis, desc_other, anchor_swap)
    return F.relu(margin + d_pos - d_neg).mean(), d_pos, d_neg


def sos_regularizer(desc_vis: torch.Tensor, desc_other: torch.Tensor, k: int = 8) -> torch.Tensor:
    """SOSNet's second-order similarity term.

    ``R = 1/P sum_i sqrt( sum_{j in c_i} (D_v[i,j] - D_x[i,j])^2 )`` with D_v, D_x the VIS-VIS
    and X-X distance matrices and ``c_i = kNN_k(VIS_i) U kNN_k(X_i)`` (neighbours j != i, found in
    their own spectrum; k is capped at P - 1). The neighbour sets are a selection (no gradient).
    Zero when D_v == D_x. The square root is taken as 0 where its argument is 0 (its gradient is
    kept finite).
    """
    p = desc_vis.shape[0]
    _check_batch(p)
    k = min(k, p - 1)
    d_v = descriptor_distance(desc_vis, desc_vis)
    d_x = descriptor_distance(desc_other, desc_other)
    eye = torch.eye(p, dtype=torch.bool, device=d_v.device)
    with torch.no_grad():
        knn_v = d_v.masked_fill(eye, _EXCLUDED).topk(k, dim=1, largest=False).indices
        knn_x = d_x.masked_fill(eye, _EXCLUDED).topk(k, dim=1, largest=False).indices
        mask = torch.zeros_like(eye)
        mask.scatter_(1, knn_v, True)
        mask.scatter_(1, knn_x, True)
    sq = (d_v - d_x).pow(2).masked_fill(~mask, 0.0).sum(dim=1)
    root = torch.where(sq > 0, sq.clamp_min(1e-12).sqrt(), torch.zeros_like(sq))
    return root.mean()


def compactness_loss(desc: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """L2-Net's descriptor compactness term for one spectrum: ``1/2 sum_{i != j} r_ij^2``.

    ``r_ij`` is the Pearson correlation, over the P descriptors of the batch, between descriptor
    dimensions i and j. Shapes: desc [P,D] -> scalar.
    """
    centered = desc - desc.mean(dim=0, keepdim=True)
    cov = centered.t() @ centered
    std = cov.diagonal().clamp_min(eps).sqrt()
    corr = cov / (std[:, None] * std[None, :])
    eye = torch.eye(corr.shape[0], dtype=torch.bool, device=corr.device)
    return 0.5 * corr.masked_fill(eye, 0.0).pow(2).sum()


# ------------------------------------------------------------------------------ objectives --

def hardnet_objective(model, vis: torch.Tensor, other: torch.Tensor,
                      generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """HardNet (Mishchuk et al., NIPS 2017): hardest-in-batch triplet margin loss, margin 1,
    anchor swap, mean over the batch, on the VIS-X distance matrix of L2-normalised descriptors
    (VIS_i is the anchor, X_i its positive). ``generator`` is unused (no random draws)."""
    desc_vis, desc_other = _descriptors(model, vis, other)
    loss, d_pos, d_neg = hardnet_triplet_loss(desc_vis, desc_other, margin=1.0, anchor_swap=True)
    return {"total": loss, "triplet": loss, "d_pos": d_pos.detach().mean(), "d_neg": d_neg.detach().mean()}


def sosnet_objective(model, vis: torch.Tensor, other: torch.Tensor,
                     generator: torch.Generator | None = None, k: int = 8,
                     sos_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """SOSNet (Tian et al., CVPR 2019): first-order loss + ``sos_weight`` x SOS regulariser.

    First-order term as SOSNet's paper: ``mean_i max(0, 1 + d_pos_i - d_neg_i)^2``, i.e. HardNet's
    hardest-in-batch triplet (margin 1) with a quadratic hinge and the hardest negative taken over
    all four candidate kinds (VIS-VIS, X-X, VIS_i-X_j, X_i-VIS_j), mined by
    :func:`kglnet.losses.hardest_negatives` (false-negative threshold 0.008 as HardNet).
    Second-order term: :func:`sos_regularizer` with k = 8 (the paper's value), weight 1.
    """
    desc_vis, desc_other = _descriptors(model, vis, other)
    d_pos = pair_distance(desc_vis, desc_other)
    d_neg = hardest_negatives(desc_vis, desc_other).distance
    fos = F.relu(1.0 + d_pos - d_neg).pow(2).mean()
    sos = sos_weight * sos_regularizer(desc_vis, desc_other, k)
    return {"total": fos + sos, "fos": fos, "sos": sos,
            "d_pos": d_pos.detach().mean(), "d_neg": d_neg.detach().mean()}


def hynet_objective(model, vis: torch.Tensor, other: torch.Tensor,
                    generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """HyNet (Tian et al., NeurIPS 2020): hybrid-similarity triplet + L2 norm regulariser.

    Needs ``model.raw_descriptors(vis, other)`` (descriptors before L2 normalisation). Triplet:
    :func:`kglnet.losses.hybrid_triplet_loss` (``g(d) = d + alpha d^2 / 2``, margin 1.2, alpha 2)
    with the four-candidate hardest negative of :func:`kglnet.losses.hardest_negatives`; norm
    term: :func:`kglnet.losses.norm_loss` with weight 0.1. Both are sums over the batch, exactly
    the form KGL-Net's objective uses (choice: the same reduction as KGL-Net).
    """
    raw_vis, raw_other = model.raw_descriptors(vis, other)
    _check_batch(raw_vis.shape[0])
    desc_vis, desc_other = l2_normalize(raw_vis), l2_normalize(raw_other)
    d_pos = pair_distance(desc_vis, desc_other)
    d_neg = hardest_negatives(desc_vis, desc_other).distance
    triplet = hybrid_triplet_loss(d_pos, d_neg, margin=1.2, alpha=2.0)
    norm = norm_loss(raw_vis, raw_other, weight=0.1)
    return {"total": triplet + norm, "triplet": triplet, "norm": norm,
            "d_pos": d_pos.detach().mean(), "d_neg": d_neg.detach().mean()}


def tfeat_objective(model, vis: torch.Tensor, other: torch.Tensor,
                    generator: torch.Generator | None = None, margin: float = 1.0) -> dict[str, torch.Tensor]:
    """TFeat (Balntas et al., BMVC 2016): margin triplet loss with anchor swap, random negatives.

    Triplet i: anchor VIS_i, positive X_i, negative X_j with j != i drawn uniformly from the batch
    (:func:`kglnet.losses.random_negative_index`, from ``generator``). Anchor swap: the negative
    distance is ``min(D(VIS_i, X_j), D(X_i, X_j))``. Loss ``mean_i max(0, margin + d_pos - d_neg)``,
    margin 1. choice: the negative is taken from the other spectrum (X_j); choice: distances are
    between L2-normalised descriptors (TFeat used its raw tanh descriptors). A drawn j may show the
    same physical point as i only if the batch holds that point twice (not excluded).
    """
    desc_vis, desc_other = _descriptors(model, vis, other)
    index = random_negative_index(desc_vis.shape[0], desc_vis.device, generator)
    negative = desc_other.index_select(0, index)
    d_pos = pair_distance(desc_vis, desc_other)
    d_neg = torch.minimum(pair_distance(desc_vis, negative), pair_distance(desc_other, negative))
    loss = F.relu(margin + d_pos - d_neg).mean()
    return {"total": loss, "triplet": loss, "d_pos": d_pos.detach().mean(), "d_neg": d_neg.detach().mean()}


NEGATIVE_SPECTRA = ("random", "vis", "other")
# Which of a quadruplet's four non-matching pairs compete for its negative (Q-Net: all four).
QUADRUPLET_NEGATIVES = ("all", "cross", "same")


def euclidean_pair_distance(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Euclidean distance of aligned pairs of descriptors of any length: ``sqrt(sum (a-b)^2 + eps)``.

    For unit vectors this is :func:`kglnet.losses.pair_distance`. Shapes: [P,D],[P,D] -> [P].
    """
    return torch.sqrt((a - b).pow(2).sum(dim=1) + eps)


def soft_pn_loss(d_pos: torch.Tensor, d_neg: torch.Tensor) -> torch.Tensor:
    """PN-Net's SoftPN loss of P examples, as the released Torch code computes it.

    Per example, with the softmax of (d_neg, d_pos): ``s_neg = e^d_neg / (e^d_neg + e^d_pos)``,
    ``s_pos = 1 - s_neg``; the paper's loss is ``s_pos^2 + (s_neg - 1)^2`` (= ``2 s_pos^2``).
    Returned: ``mean_i (s_pos^2 + (s_neg - 1)^2) / 2``, i.e. Torch's ``MSECriterion`` of the
    softmax against the target (1, 0) averaged over all 2P entries (PN-Net's and Q-Net's
    ``DistanceRatioCriterion``), so the published learning rates apply unchanged; it is half the
    paper's per-example value. Shapes: [P],[P] -> scalar.
    """
    soft = torch.softmax(torch.stack([d_neg, d_pos], dim=1), dim=1)
    return 0.5 * ((soft[:, 0] - 1.0).pow(2) + soft[:, 1].pow(2)).mean()


def _raw_pairs(model, vis: torch.Tensor, other: torch.Tensor,
               normalize: bool) -> tuple[torch.Tensor, torch.Tensor]:
    raw_vis, raw_other = model.raw_descriptors(vis, other)
    _check_batch(raw_vis.shape[0])
    if normalize:
        return l2_normalize(raw_vis), l2_normalize(raw_other)
    return raw_vis, raw_other


def _coin_flips(p: int, device: torch.device, generator: torch.Generator | None) -> torch.Tensor:
    """P fair 0/1 draws (int64) from ``generator`` (on its own device, then moved) or the default one."""
    gen_device = generator.device if generator is not None else device
    return torch.randint(0, 2, (p,), generator=generator, device=gen_device).to(device)


def softpn_objective(model, vis: torch.Tensor, other: torch.Tensor,
                     generator: torch.Generator | None = None, negative: str = "random",
                     normalize: bool = False) -> dict[str, torch.Tensor]:
    """PN-Net (Balntas et al., arXiv 2016) as trained cross-spectrally by Q-Net's authors
    (Aguilera et al., Sensors 2017, Section 3.3): SoftPN on in-batch triplets.

    Triplet i (P per batch): the matching pair (VIS_i, X_i) and one non-matching patch N_i of
    pair j != i, j drawn uniformly (:func:`kglnet.losses.random_negative_index`, from
    ``generator``); with ``negative="random"`` (default) N_i is VIS_j or X_j with probability
    1/2 each (a second draw from ``generator``, after j), Q-Net's "random" false pair;
    ``"vis"`` / ``"other"`` always take VIS_j / X_j. ``d_pos = D(VIS_i, X_i)``, ``d_neg =
    min(D(VIS_i, N_i), D(X_i, N_i))`` (PN-Net's in-triplet mining), loss :func:`soft_pn_loss`.
    D is :func:`euclidean_pair_distance` of the raw descriptors (``model.raw_descriptors``, the
    tanh outputs the papers train on); ``normalize=True`` uses the L2-normalised ones instead.
    Everything stays on the descriptors' device; the same ``generator`` state gives the same
    triplets. A drawn j shows the same physical point as i only if the batch holds it twice.
    """
    if negative not in NEGATIVE_SPECTRA:
        raise ValueError(f"negative must be one of {NEGATIVE_SPECTRA}, got {negative!r}")
    desc_vis, desc_other = _raw_pairs(model, vis, other, normalize)
    p, device = desc_vis.shape[0], desc_vis.device
    index = random_negative_index(p, device, generator)
    neg_vis, neg_other = desc_vis.index_select(0, index), desc_other.index_select(0, index)
    if negative == "random":
        take_vis = (_coin_flips(p, device, generator) == 1).unsqueeze(1)
        neg = torch.where(take_vis, neg_vis, neg_other)
    else:
        neg = neg_vis if negative == "vis" else neg_other
    d_pos = euclidean_pair_distance(desc_vis, desc_other)
    d_neg = torch.minimum(euclidean_pair_distance(desc_vis, neg), euclidean_pair_distance(desc_other, neg))
    loss = soft_pn_loss(d_pos, d_neg)
    return {"total": loss, "softpn": loss, "d_pos": d_pos.detach().mean(), "d_neg": d_neg.detach().mean()}


def quadruplet_objective(model, vis: torch.Tensor, other: torch.Tensor,
                         generator: torch.Generator | None = None, both_positives: bool = True,
                         normalize: bool = False, negatives: str = "all") -> dict[str, torch.Tensor]:
    """Q-Net (Aguilera et al., Sensors 2017): SoftPN on in-batch quadruplets.

    Quadruplet i (P per batch): two matching cross-spectral pairs, (VIS_i, X_i) and (VIS_j, X_j)
    with j != i drawn uniformly (:func:`kglnet.losses.random_negative_index`, from
    ``generator``), as Q-Net's data script pairs two random matching pairs. ``d_pos =
    max(D(VIS_i, X_i), D(VIS_j, X_j))`` (the harder of the two matching pairs; with
    ``both_positives=False`` only ``D(VIS_i, X_i)``), ``d_neg = min(D(VIS_i, VIS_j),
    D(VIS_i, X_j), D(X_i, VIS_j), D(X_i, X_j))`` (the hardest of the four non-matching pairs);
    loss :func:`soft_pn_loss` (the released ``quadruplet_4n_2p`` network: four negatives, two
    positives). D is :func:`euclidean_pair_distance` of the raw descriptors
    (``model.raw_descriptors``); ``normalize=True`` uses the L2-normalised ones. All on the
    descriptors' device, reproducible with ``generator``. Each pair is the first pair of its own
    quadruplet and the second pair of those that drew it.

    ``negatives`` (not in the paper; a probe of why Q-Net collapses on mini OS): ``"all"`` the
    four, ``"cross"`` only the cross-spectral two (VIS_i-X_j, X_i-VIS_j), ``"same"`` only the
    same-spectrum two (VIS_i-VIS_j, X_i-X_j). PN-Net's negative is the nearer of one of each.
    """
    if negatives not in QUADRUPLET_NEGATIVES:
        raise ValueError(f"negatives must be one of {QUADRUPLET_NEGATIVES}, got {negatives!r}")
    desc_vis, desc_other = _raw_pairs(model, vis, other, normalize)
    index = random_negative_index(desc_vis.shape[0], desc_vis.device, generator)
    vis_j, other_j = desc_vis.index_select(0, index), desc_other.index_select(0, index)
    d_match = euclidean_pair_distance(desc_vis, desc_other)
    d_pos = torch.maximum(d_match, d_match.index_select(0, index)) if both_positives else d_match
    pairs = []  # only the distances that compete for the negative
    if negatives in ("all", "same"):
        pairs += [(desc_vis, vis_j), (desc_other, other_j)]
    if negatives in ("all", "cross"):
        pairs += [(desc_vis, other_j), (desc_other, vis_j)]
    d_neg = torch.stack([euclidean_pair_distance(a, b) for a, b in pairs], dim=1).min(dim=1).values
    loss = soft_pn_loss(d_pos, d_neg)
    return {"total": loss, "quadruplet": loss, "d_pos": d_pos.detach().mean(), "d_neg": d_neg.detach().mean()}


def l2net_objective(model, vis: torch.Tensor, other: torch.Tensor,
                    generator: torch.Generator | None = None,
                    compactness_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """L2-Net (Tian et al., CVPR 2017): relative-distance loss + descriptor compactness.

    Relative distance (L2-Net's E1): with ``S = exp(2 - D)`` on the VIS-X distance matrix D,
    ``s^r_ii = S_ii / sum_j S_ij`` (rows) and ``s^c_ii = S_ii / sum_j S_ji`` (columns);
    ``E1 = -1/2 (mean_i log s^c_ii + mean_i log s^r_ii)`` (log-softmax, numerically stable).
    Compactness (E2): :func:`compactness_loss` of each spectrum's descriptors, summed.

    Simplifications: the means over the batch replace the paper's sums (a batch-size-independent
    scale); the paper's third term (E3, a constraint on intermediate feature maps) is omitted, the
    tower does not expose those maps here. Note: the compactness term has a noise floor of about
    ``D (D-1) / (2P)`` per spectrum (sample correlations of independent dimensions), large
    beside E1 for small batches; ``compactness_weight`` scales it (1 = the paper).
    """
    desc_vis, desc_other = _descriptors(model, vis, other)
    d = descriptor_distance(desc_vis, desc_other)
    similarity = 2.0 - d
    rows = F.log_softmax(similarity, dim=1).diagonal()
    cols = F.log_softmax(similarity, dim=0).diagonal()
    relative = -0.5 * (rows.mean() + cols.mean())
    compact = compactness_weight * (compactness_loss(desc_vis) + compactness_loss(desc_other))
    return {"total": relative + compact, "relative": relative, "compactness": compact,
            "d_pos": d.diagonal().detach().mean()}


def _scored_with_random_negatives(model, vis: torch.Tensor, other: torch.Tensor,
                                  generator: torch.Generator | None) -> tuple[list[torch.Tensor], int]:
    """Scores of the P positives (VIS_i, X_i) followed by P random negatives (VIS_i, X_j), j != i.

    Returns (one [2P] tensor per trained output, the reported output first; P). The negatives come
    from :func:`kglnet.losses.random_negative_index` (from ``generator``). Uses
    ``model.head_logits`` (deeply supervised networks) when the model has it, else ``model.logits``.
    """
    p = vis.shape[0]
    _check_batch(p)
    index = random_negative_index(p, vis.device, generator)
    pair_vis = torch.cat([vis, vis], dim=0)
    pair_other = torch.cat([other, other.index_select(0, index)], dim=0)
    if hasattr(model, "head_logits"):
        return model.head_logits(pair_vis, pair_other), p
    return [model.logits(pair_vis, pair_other)], p


def bce_random_negatives_objective(model, vis: torch.Tensor, other: torch.Tensor,
                                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Metric models: binary cross-entropy on logits over P positives and P random negatives.

    The P positive pairs (VIS_i, X_i) get label 1; P negatives (VIS_i, X_j), j != i drawn
    uniformly (:func:`kglnet.losses.random_negative_index`, from ``generator``), get label 0.
    Needs ``model.logits(vis, other) -> [B]``, or ``model.head_logits(vis, other) -> list of [B]``
    for deeply supervised networks (several trained outputs): the loss is the sum over outputs of
    the mean BCE of the 2P examples (Keras' sum of a multi-output model's losses, weights 1). A
    two-way softmax output trained with categorical cross-entropy is the same as BCE on the logit
    ``z_match - z_nonmatch``, so such heads report that difference.

    The papers trained on their datasets' labelled, balanced positive / negative pairs; here the
    training files hold positives only, so the negatives are drawn within the batch from other
    positive pairs (a different point of the same or of another image).
    """
    heads, p = _scored_with_random_negatives(model, vis, other, generator)
    labels = torch.cat([heads[0].new_ones(p), heads[0].new_zeros(p)])
    per_head = [F.binary_cross_entropy_with_logits(logits, labels) for logits in heads]
    total = torch.stack(per_head).sum()
    prob = torch.sigmoid(heads[0].detach())
    out = {"total": total, "bce": per_head[0], "p_pos": prob[:p].mean(), "p_neg": prob[p:].mean()}
    for k, term in enumerate(per_head[1:], start=1):
        out[f"bce_head{k}"] = term
    return out


def hinge_random_negatives_objective(model, vis: torch.Tensor, other: torch.Tensor,
                                     generator: torch.Generator | None = None,
                                     margin: float = 1.0) -> dict[str, torch.Tensor]:
    """Metric models trained as Aguilera et al. (CVPRW 2016) and Zagoruyko & Komodakis (CVPR 2015):
    hinge loss on the raw output over P positives and P random negatives.

    Labels y = +1 for the P positives (VIS_i, X_i) and -1 for P negatives (VIS_i, X_j), j != i, drawn
    as in :func:`bce_random_negatives_objective`; with s = ``model.logits`` (a raw score, no sigmoid)
    the loss is ``mean over the 2P examples of max(0, margin - y s)``, margin 1: Torch7's
    ``nn.MarginCriterion(1)`` with its default size averaging, the criterion of the authors' code.
    Several trained outputs (``head_logits``): the sum of each one's mean hinge. The decision rule
    stays s > 0, i.e. ``sigmoid(s) > 0.5``, but ``sigmoid(s)`` is a monotone score, not a calibrated
    probability.

    Logged beside ``total``: ``hinge`` (reported output) and the mean score of positives and of
    negatives (``score_pos``, ``score_neg``).
    """
    heads, p = _scored_with_random_negatives(model, vis, other, generator)
    signs = torch.cat([heads[0].new_ones(p), -heads[0].new_ones(p)])
    per_head = [F.relu(margin - signs * scores).mean() for scores in heads]
    total = torch.stack(per_head).sum()
    score = heads[0].detach()
    out = {"total": total, "hinge": per_head[0], "score_pos": score[:p].mean(), "score_neg": score[p:].mean()}
    for k, term in enumerate(per_head[1:], start=1):
        out[f"hinge_head{k}"] = term
    return out


Objective = Callable[..., dict]

OBJECTIVES: dict[str, Objective] = {
    "hardnet": hardnet_objective,
    "sosnet": sosnet_objective,
    "hynet": hynet_objective,
    "tfeat": tfeat_objective,
    "l2net": l2net_objective,
    "softpn": softpn_objective,
    "quadruplet": quadruplet_objective,
    "bce_random_negatives": bce_random_negatives_objective,
    "hinge_random_negatives": hinge_random_negatives_objective,
}


def get_objective(name: str) -> Objective:
    """``OBJECTIVES[name]``; an unknown name lists the known ones."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise KeyError(f"unknown objective {name!r}; known: {', '.join(sorted(OBJECTIVES))}") from None


def objective_for(model) -> Objective:
    """The objective a baseline model names in its ``objective`` class attribute."""
    name = getattr(model, "objective", None)
    if name is None:
        raise AttributeError(f"{type(model).__name__} names no objective (class attribute 'objective')")
    return get_objective(name)


__all__ = ["OBJECTIVES", "get_objective", "objective_for", "hardest_in_batch", "hardnet_triplet_loss",
           "sos_regularizer", "compactness_loss", "hardnet_objective", "sosnet_objective", "hynet_objective",
           "tfeat_objective", "l2net_objective", "bce_random_negatives_objective",
           "hinge_random_negatives_objective", "euclidean_pair_distance",
           "soft_pn_loss", "softpn_objective", "quadruplet_objective", "NEGATIVE_SPECTRA"]
