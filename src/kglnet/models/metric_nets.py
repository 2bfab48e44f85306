"""Metric-learning baselines of the paper's tables: Siamese, Pseudo-Siamese, 2-channel, MatchNet.

These networks output a match score in [0, 1] (a probability for MatchNet), no descriptor. Common contract:

- ``logits(vis, other) -> [B]``: match scores of the reported output, higher = match (training:
  Siamese, Pseudo-Siamese and 2-channel the hinge loss of their authors, ``"hinge_random_negatives"``;
  MatchNet binary cross-entropy on logits, ``"bce_random_negatives"``; both in
  :mod:`kglnet.objectives`).
- ``head_logits(vis, other) -> list of [B]``: every output a deeply supervised network trains
  (its reported output first); the objective sums the loss of each, as Keras sums the losses
  of a multi-output model with weights 1. One entry for single-output networks.
- ``forward(vis, other) -> (None, None, score [B])`` with ``score = sigmoid(logits)``.
- inputs float [B,1,64,64] in [0,1], checked like :func:`kglnet.models.kglnet.check_patch_batch`;
  all four work on 64x64 patches directly (``input_size = 64``).
- class attributes ``objective``, ``input_size``, ``paper``, ``reported_branch = "metric"``.

Siamese, Pseudo-Siamese and 2-channel are the cross-spectral networks of Aguilera, Aguilera,
Sappa, Aguilera, Toledo, "Learning cross-spectral similarity measures with deep convolutional
neural networks", CVPR Workshops 2016 (adapted from Zagoruyko & Komodakis, CVPR 2015). The layer
sizes below are those of the authors' public Torch code (``model.lua`` of their ``lcsis``
repository): tower C(96,7,3)-ReLU-P(2,2)-C(192,5,1)-ReLU-P(2,2)-C(256,3,1)-ReLU, which maps a
64x64 patch to 256x1x1 (64 -> 20 -> 10 -> 6 -> 3 -> 1).

All three, as the authors' code: patches are scaled to [0, 1] and made zero-mean per patch and
channel (no division by the std); the loss is Torch7's ``nn.MarginCriterion(1)`` (hinge, labels
+-1) on the raw output (``"hinge_random_negatives"``), so ``sigmoid(output)`` is a monotone match
score (decision at 0.5) rather than a calibrated probability. PyTorch's default initialisation
draws from the same ranges as Torch7's (uniform +-1/sqrt(fan_in), weights and biases). Their
training pairs were the datasets' labelled, balanced positives and negatives; here the training
files hold positives only, so the negatives are drawn within the batch.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .descriptors import check_pair
from .kglnet import PATCH_SIZE
from .registry import register_model

AGUILERA_2016 = ("Aguilera, Aguilera, Sappa, Aguilera, Toledo. Learning cross-spectral similarity measures with "
                 "deep convolutional neural networks. CVPR Workshops 2016")


def zero_mean_patches(x: torch.Tensor) -> torch.Tensor:
    """Subtract each patch's (and channel's) mean: [B,C,H,W] -> [B,C,H,W]."""
    return x - x.mean(dim=(2, 3), keepdim=True)


def aguilera_tower(in_channels: int) -> nn.Sequential:
    """C(96,7,3)-ReLU-P(2,2)-C(192,5,1)-ReLU-P(2,2)-C(256,3,1)-ReLU-flatten: [B,c,64,64] -> [B,256]."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 96, kernel_size=7, stride=3), nn.ReLU(inplace=True),   # 64 -> 20
        nn.MaxPool2d(2, 2),                                                           # -> 10
        nn.Conv2d(96, 192, kernel_size=5), nn.ReLU(inplace=True),                     # -> 6
        nn.MaxPool2d(2, 2),                                                           # -> 3
        nn.Conv2d(192, 256, kernel_size=3), nn.ReLU(inplace=True),                    # -> 1
        nn.Flatten(1),
    )


class MetricModel(nn.Module):
    """Base of the metric baselines: input checks, ``forward`` = sigmoid of :meth:`logits`.
    ``objective`` defaults to BCE with in-batch random negatives; Aguilera et al.'s networks
    override it with their hinge loss."""

    objective: str = "bce_random_negatives"
    input_size: int = PATCH_SIZE
    paper: str = AGUILERA_2016
    reported_branch: str = "metric"

    def pair_logits(self, vis: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """Logits [B] of the reported output; inputs already checked."""
        raise NotImplementedError

    def pair_head_logits(self, vis: torch.Tensor, other: torch.Tensor) -> list[torch.Tensor]:
        """Logits [B] of every trained output, the reported one first; inputs already checked.
        Multi-output networks override this (and ``pair_logits``, to skip the auxiliary heads at
        evaluation)."""
        return [self.pair_logits(vis, other)]

    def logits(self, vis: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """Match logits [B] of the reported output for aligned pairs of float [B,1,64,64] patches."""
        check_pair(vis, other)
        return self.pair_logits(vis, other)

    def head_logits(self, vis: torch.Tensor, other: torch.Tensor) -> list[torch.Tensor]:
        """Match logits [B] of every trained output (reported first), for the training objective."""
        check_pair(vis, other)
        return self.pair_head_logits(vis, other)

    def forward(self, vis: torch.Tensor, other: torch.Tensor) -> tuple[None, None, torch.Tensor]:
        """(None, None, match probability [B] in [0,1])."""
        return None, None, torch.sigmoid(self.logits(vis, other))


class AguileraModel(MetricModel):
    """Base of Aguilera et al.'s three networks: their hinge loss (``MarginCriterion(1)``)."""

    objective = "hinge_random_negatives"


@register_model("siamese")
class Siamese(AguileraModel):
    """Siamese network of Aguilera et al. (CVPRW 2016). Input 64x64.

    Architecture as built: per-patch zero-mean; ONE feature tower (:func:`aguilera_tower`, shared
    weights) applied to both patches -> two 256-D features, concatenated (VIS first) -> decision
    network Linear 512->512, ReLU, Linear 512->1 -> score; forward gives sigmoid(score). 1,171,585
    parameters.
    """

    shared_tower = True

    def __init__(self) -> None:
        super().__init__()
        if self.shared_tower:
            self.tower = aguilera_tower(1)
        else:
            self.tower_vis = aguilera_tower(1)
            self.tower_other = aguilera_tower(1)
        self.decision = nn.Sequential(nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Linear(512, 1))

    def pair_logits(self, vis: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        vis, other = zero_mean_patches(vis), zero_mean_patches(other)
        if self.shared_tower:
            # one pass over both batches: the tower has no batch statistics, so this is the same
            # as two passes
            f = self.tower(torch.cat([vis, other], dim=0))
            f_vis, f_other = f[: vis.shape[0]], f[vis.shape[0]:]
        else:
            f_vis, f_other = self.tower_vis(vis), self.tower_other(other)
        return self.decision(torch.cat([f_vis, f_other], dim=1)).squeeze(1)


@register_model("pseudo_siamese")
class PseudoSiamese(Siamese):
    """Pseudo-Siamese network of Aguilera et al. (CVPRW 2016). Input 64x64.

    Architecture as built: as :class:`Siamese` but with two feature towers with separate weights
    (``tower_vis`` for the visible patch, ``tower_other`` for the NIR / LWIR / SAR patch);
    decision network Linear 512->512, ReLU, Linear 512->1. 2,080,001 parameters.

    The two towers start from the same weights and then train apart: the authors' ``model.lua``
    builds the second as ``rama:clone()``, a copy of the first (the Siamese one shares them).
    """

    shared_tower = False

    def __init__(self) -> None:
        super().__init__()
        self.tower_other.load_state_dict(self.tower_vis.state_dict())


@register_model("two_channel")
class TwoChannel(AguileraModel):
    """2-channel network of Aguilera et al. (CVPRW 2016). Input 64x64.

    Architecture as built: per-patch zero-mean; the two patches stacked as 2 input channels
    (VIS first) -> :func:`aguilera_tower` with 2 input channels -> 256-D -> Linear 256->1 -> score;
    forward gives sigmoid(score). 913,377 parameters.

    choice: one linear layer after the tower, as the authors' code (Zagoruyko & Komodakis' 2ch
    network had a hidden F(256) layer before it).
    """

    def __init__(self) -> None:
        super().__init__()
        self.tower = aguilera_tower(2)
        self.decision = nn.Linear(256, 1)

    def pair_logits(self, vis: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        x = zero_mean_patches(torch.cat([vis, other], dim=1))
        return self.decision(self.tower(x)).squeeze(1)


@register_model("matchnet")
class MatchNet(MetricModel):
    """MatchNet (Han, Leung, Jia, Sukthankar, Berg, "MatchNet: Unifying Feature and Metric
    Learning for Patch-Based Matching", CVPR 2015). Input 64x64.

    Architecture as built. Preprocessing ``(255 x - 128) / 160`` (the released code's
    ``(uint8 - 128) / 160``). Feature tower, shared by both patches (the paper's tied towers):
    conv0 7x7 1->24 pad 3, ReLU, pool0 max 3x3 stride 2; conv1 5x5 24->64 pad 2, ReLU, pool1 max
    3x3 stride 2; conv2 3x3 64->96 pad 1, ReLU; conv3 3x3 96->96 pad 1, ReLU; conv4 3x3 96->64
    pad 1, ReLU, pool4 max 3x3 stride 2 -> 64x8x8 = 4096; bottleneck Linear 4096->B, ReLU.
    Metric network on the concatenated pair (2B): FC1 2B->F, ReLU; FC2 F->F, ReLU; FC3 F->2
    (softmax over {non-match, match}). With the defaults B = 256, F = 1024: 2,859,250 parameters.

    choice: pooling uses ``ceil_mode=True`` (Caffe's rounding), which gives the paper's
    64 -> 32 -> 16 -> 8 sizes. choice: B = 256 (the paper sweeps B in 64..512 and F in 128..1024;
    the released models use F = 1024 without bottleneck: ``bottleneck=None``). choice: a ReLU
    after the bottleneck (all layers but FC3 have ReLU). The logit is ``z_match - z_nonmatch`` of
    FC3, so ``sigmoid(logit)`` equals MatchNet's softmax match probability and the two-way
    softmax cross-entropy equals BCE on that logit. choice: PyTorch's default initialisation.
    """

    paper = ("Han, Leung, Jia, Sukthankar, Berg. MatchNet: Unifying Feature and Metric Learning for Patch-Based "
             "Matching. CVPR 2015")

    def __init__(self, bottleneck: int | None = 256, fc_width: int = 1024) -> None:
        super().__init__()
        feature_dim = bottleneck if bottleneck is not None else 64 * 8 * 8
        self.tower = nn.Sequential(
            nn.Conv2d(1, 24, kernel_size=7, padding=3), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, ceil_mode=True),                                   # 64 -> 32
            nn.Conv2d(24, 64, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, ceil_mode=True),                                   # -> 16
            nn.Conv2d(64, 96, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(96, 96, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(96, 64, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, ceil_mode=True),                                   # -> 8
            nn.Flatten(1),
        )
        if bottleneck is not None:
            self.tower.append(nn.Linear(64 * 8 * 8, bottleneck))
            self.tower.append(nn.ReLU(inplace=True))
        self.metric = nn.Sequential(
            nn.Linear(2 * feature_dim, fc_width), nn.ReLU(inplace=True),
            nn.Linear(fc_width, fc_width), nn.ReLU(inplace=True),
            nn.Linear(fc_width, 2),
        )

    def pair_logits(self, vis: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        x = (torch.cat([vis, other], dim=0) * 255.0 - 128.0) / 160.0
        f = self.tower(x)   # shared weights, no batch statistics: one pass for both patches
        z = self.metric(torch.cat([f[: vis.shape[0]], f[vis.shape[0]:]], dim=1))
        return z[:, 1] - z[:, 0]


__all__ = ["MetricModel", "AguileraModel", "Siamese", "PseudoSiamese", "TwoChannel", "MatchNet", "aguilera_tower",
           "zero_mean_patches"]
