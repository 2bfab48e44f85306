"""Descriptor-learning baselines of the paper's VIS-NIR table: L2-Net, HardNet, SOSNet, HyNet, TFeat.

Every model here is Siamese (one set of weights for both spectra) and produces 128-D
L2-normalised descriptors; matching is the Euclidean distance between them (SPEC section 5,
"descriptor FPR95"). Common contract (see also :mod:`kglnet.models.metric_nets`):

- ``forward(vis, other) -> (desc_vis [B,128], desc_other [B,128], None)``: inputs float
  [B,1,64,64] in [0,1] (uint8 / 255), checked like :func:`kglnet.models.kglnet.check_patch_batch`.
- ``raw_descriptors(vis, other) -> (raw_vis [B,128], raw_other [B,128])``: the descriptors before
  L2 normalisation (HyNet's objective regularises their norms; the other objectives use
  ``forward``).
- class attributes ``objective`` (a key of :data:`kglnet.objectives.OBJECTIVES`), ``input_size``,
  ``paper``, ``reported_branch = "descriptor"``.

Choices common to all five (the papers train on 32x32 Photo Tourism patches):

- choice: the 64x64 patches are resized inside ``forward`` to 32x32 with
  ``F.interpolate(mode="bilinear", antialias=True, align_corners=False)`` (an area-like
  downsampling; HardNet's code resizes with PIL/OpenCV).
- choice: each spectrum's batch passes through the shared tower separately, as HardNet's code
  calls the network once for anchors and once for positives, so BatchNorm statistics in training
  are per spectrum (the same convention as KGL-Net's descriptor BatchNorm). A batch of one pair
  therefore cannot be run in training mode (BatchNorm needs more than one value per channel).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .kglnet import PATCH_SIZE, check_patch_batch
from .layers import FRN, TLU, l2_normalize, standardize_patches
from .registry import register_model

DESCRIPTOR_DIM = 128


def check_pair(vis: torch.Tensor, other: torch.Tensor) -> None:
    """Raise ValueError unless both are float [B,1,64,64] batches of the same size B >= 1."""
    check_patch_batch(vis, "vis")
    check_patch_batch(other, "other")
    if vis.shape[0] != other.shape[0]:
        raise ValueError(f"vis and other batches differ in size: {vis.shape[0]} vs {other.shape[0]}")


def resize_patches(x: torch.Tensor, size: int) -> torch.Tensor:
    """[B,C,64,64] -> [B,C,size,size]: bilinear with antialiasing (identity when size is 64)."""
    if size == x.shape[-1]:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def orthogonal_init(module: nn.Module, gain: float = 0.6, bias: float = 0.01) -> None:
    """HardNet / HyNet code init: orthogonal conv and linear weights (gain 0.6), bias 0.01."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.constant_(m.bias, bias)


def l2net_layers(dropout: float = 0.0) -> nn.Sequential:
    """The L2-Net tower: 7 convolutions, BatchNorm without affine parameters, no conv bias.

    conv3x3 1->32, conv3x3 32->32, conv3x3 32->64 stride 2, conv3x3 64->64, conv3x3 64->128
    stride 2, conv3x3 128->128 (each followed by BN(affine=False) and ReLU), [Dropout(p) when
    p > 0], conv8x8 128->128 (no padding), BN(affine=False). [B,1,32,32] -> [B,128,1,1].
    """
    def block(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(c_out, affine=False), nn.ReLU(inplace=True)]

    layers: list[nn.Module] = [
        *block(1, 32), *block(32, 32), *block(32, 64, 2), *block(64, 64), *block(64, 128, 2), *block(128, 128),
    ]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers += [nn.Conv2d(128, DESCRIPTOR_DIM, kernel_size=8, bias=False), nn.BatchNorm2d(DESCRIPTOR_DIM, affine=False)]
    return nn.Sequential(*layers)


class DescriptorModel(nn.Module):
    """Base of the descriptor baselines: input checks, resize, Siamese tower, L2 normalisation.

    Subclasses set ``self.tower`` ([B,1,s,s] -> [B,128,...]) and may override
    :meth:`normalize_input` (applied after the resize, before the tower).
    """

    objective: str = "hardnet"
    input_size: int = PATCH_SIZE
    paper: str = ""
    reported_branch: str = "descriptor"
    descriptor_dim: int = DESCRIPTOR_DIM
    tower: nn.Module

    def normalize_input(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """One spectrum's raw descriptors: [B,1,64,64] -> [B,128] (not normalised)."""
        return self.tower(self.normalize_input(resize_patches(x, self.input_size))).flatten(1)

    def raw_descriptors(self, vis: torch.Tensor, other: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw_vis [B,128], raw_other [B,128]): descriptors before L2 normalisation."""
        check_pair(vis, other)
        return self.embed(vis), self.embed(other)

    def forward(self, vis: torch.Tensor, other: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        """(desc_vis [B,128], desc_other [B,128], None): L2-normalised descriptors, no metric head."""
        raw_vis, raw_other = self.raw_descriptors(vis, other)
        return l2_normalize(raw_vis), l2_normalize(raw_other), None


@register_model("l2net")
class L2Net(DescriptorModel):
    """L2-Net (Tian, Fan, Wu, "L2-Net: Deep Learning of Discriminative Patch Descriptor in
    Euclidean Space", CVPR 2017). Input 32x32 (the 64x64 patch is resized inside ``forward``).

    Architecture as built: per-patch standardisation -> :func:`l2net_layers` without dropout
    (7 convolutions, BatchNorm without affine parameters, ReLU; last layer conv 8x8 128->128 + BN)
    -> 128-D descriptor, L2-normalised. 1,334,560 parameters.

    choice: the input standardisation (per-patch mean / std) is HardNet's ``input_norm``; L2-Net's
    own pipeline normalised patches too, the exact form is not stated. choice: L2-Net ends with a
    local response normalisation layer that yields unit-length descriptors; here
    ``d / sqrt(sum d^2 + 1e-10)``. choice: the central-surround variant (CS L2-Net) is not built.
    choice: orthogonal init (gain 0.6), as HardNet's code.
    """

    objective = "l2net"
    input_size = 32
    paper = "Tian, Fan, Wu. L2-Net: Deep Learning of Discriminative Patch Descriptor in Euclidean Space. CVPR 2017"
    dropout = 0.0

    def __init__(self) -> None:
        super().__init__()
        self.tower = l2net_layers(self.dropout)
        orthogonal_init(self)

    def normalize_input(self, x: torch.Tensor) -> torch.Tensor:
        return standardize_patches(x)


@register_model("hardnet")
class HardNet(L2Net):
    """HardNet (Mishchuk, Mishkin, Radenovic, Matas, "Working hard to know your neighbor's margins:
    Local descriptor learning loss", NIPS 2017). Input 32x32 (resized inside ``forward``).

    Architecture as built: the L2-Net architecture (:class:`L2Net`) with Dropout(0.3) before the
    last convolution, exactly HardNet's released code: per-patch standardisation (detached mean /
    std), 7 convolutions without bias, BatchNorm without affine parameters, orthogonal init
    (gain 0.6). 128-D, L2-normalised. 1,334,560 parameters.
    """

    objective = "hardnet"
    paper = ("Mishchuk, Mishkin, Radenovic, Matas. Working hard to know your neighbor's margins: "
             "Local descriptor learning loss. NIPS 2017")
    dropout = 0.3


@register_model("sosnet")
class SOSNet(DescriptorModel):
    """SOSNet (Tian, Yu, Fan, Wu, Heijnen, Balntas, "SOSNet: Second Order Similarity Regularization
    for Local Descriptor Learning", CVPR 2019). Input 32x32 (resized inside ``forward``).

    Architecture as built: the HardNet architecture, as SOSNet's released ``SOSNet32x32``:
    InstanceNorm2d(1, affine=False, eps=1e-5) on the input, 7 convolutions without bias,
    BatchNorm(affine=False, eps=1e-5), ReLU, Dropout(0.1) before the last conv 8x8 -> BN.
    128-D, L2-normalised. 1,334,560 parameters.

    choice: dropout 0.1 and the InstanceNorm input layer follow SOSNet's released model
    definition (HardNet uses 0.3 and a detached per-patch standardisation). choice: orthogonal
    init (gain 0.6), as HardNet's code.
    """

    objective = "sosnet"
    input_size = 32
    paper = ("Tian, Yu, Fan, Wu, Heijnen, Balntas. SOSNet: Second Order Similarity Regularization for "
             "Local Descriptor Learning. CVPR 2019")

    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__()
        self.input_norm = nn.InstanceNorm2d(1, affine=False, eps=1e-5)
        self.tower = l2net_layers(dropout)
        for m in self.tower.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps = 1e-5
        orthogonal_init(self)

    def normalize_input(self, x: torch.Tensor) -> torch.Tensor:
        return self.input_norm(x)


def _conv_frn_tlu(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=True), FRN(c_out), TLU(c_out)]


@register_model("hynet")
class HyNet(DescriptorModel):
    """HyNet (Tian, Barroso-Laguna, Ng, Balntas, Mikolajczyk, "HyNet: Learning Local Descriptor
    with Hybrid Similarity Measure and Triplet Loss", NeurIPS 2020). Input 32x32 (resized inside
    ``forward``).

    Architecture as built (HyNet's released model): FRN(1), TLU(1) on the input; conv3x3 1->32,
    32->32, 32->64 stride 2, 64->64, 64->128 stride 2, 128->128, each with bias and followed by
    FRN + TLU (the same FRN / TLU as KGL-Net: fixed eps 1e-6, tau initialised to -1);
    Dropout(0.3); conv 8x8 128->128 without bias; BatchNorm2d(128, affine=False) -> raw descriptor
    (exposed by :meth:`raw_descriptors` for the L2 norm regulariser); L2-normalised. 1,336,355
    parameters.

    choice: dropout 0.3 and orthogonal init (gain 0.6, bias 0.01) as HyNet's released code.
    """

    objective = "hynet"
    input_size = 32
    paper = ("Tian, Barroso-Laguna, Ng, Balntas, Mikolajczyk. HyNet: Learning Local Descriptor with Hybrid "
             "Similarity Measure and Triplet Loss. NeurIPS 2020")

    def __init__(self, dropout: float = 0.3) -> None:
        super().__init__()
        self.tower = nn.Sequential(
            FRN(1), TLU(1),
            *_conv_frn_tlu(1, 32), *_conv_frn_tlu(32, 32),
            *_conv_frn_tlu(32, 64, 2), *_conv_frn_tlu(64, 64),
            *_conv_frn_tlu(64, 128, 2), *_conv_frn_tlu(128, 128),
            nn.Dropout(dropout),
            nn.Conv2d(128, DESCRIPTOR_DIM, kernel_size=8, bias=False),
            nn.BatchNorm2d(DESCRIPTOR_DIM, affine=False),
        )
        orthogonal_init(self)


@register_model("tfeat")
class TFeat(DescriptorModel):
    """TFeat (Balntas, Riba, Ponsa, Mikolajczyk, "Learning local feature descriptors with triplets
    and shallow convolutional neural networks", BMVC 2016). Input 32x32 (resized inside
    ``forward``).

    Architecture as built: InstanceNorm2d(1) on the input; conv 7x7 1->32, tanh, max-pool 2x2;
    conv 6x6 32->64, tanh; flatten 64x8x8; Linear 4096->128, tanh -> raw descriptor;
    L2-normalised. 599,808 parameters.

    choice: the per-patch InstanceNorm input layer follows TFeat's PyTorch release (the paper
    subtracts a mean). choice: TFeat's descriptor is the tanh output, not unit length; here it is
    L2-normalised like every descriptor of this project so that the distance is the same as in
    evaluation (the triplet margin of 1 then applies to unit-length descriptors).
    choice: PyTorch's default initialisation.
    """

    objective = "tfeat"
    input_size = 32
    paper = ("Balntas, Riba, Ponsa, Mikolajczyk. Learning local feature descriptors with triplets and shallow "
             "convolutional neural networks. BMVC 2016")

    def __init__(self) -> None:
        super().__init__()
        self.tower = nn.Sequential(
            nn.InstanceNorm2d(1, affine=False),
            nn.Conv2d(1, 32, kernel_size=7), nn.Tanh(), nn.MaxPool2d(2, 2),   # 32 -> 26 -> 13
            nn.Conv2d(32, 64, kernel_size=6), nn.Tanh(),                      # 13 -> 8
            nn.Flatten(1),
            nn.Linear(64 * 8 * 8, DESCRIPTOR_DIM), nn.Tanh(),
        )


__all__ = ["DescriptorModel", "L2Net", "HardNet", "SOSNet", "HyNet", "TFeat", "check_pair", "resize_patches",
           "standardize_patches", "l2net_layers", "orthogonal_init"]
