"""FIL-Net: feature interaction learning for cross-spectral patch matching (metric network).

Yu, Zhao, Liu, Wu, Hu, "Feature interaction learning network for cross-spectral image patch
matching", IEEE TIP 2023. The layer sizes are those of the authors' public Keras code
(repository ``YuChuang1205/RRL-Net``, ``network_models/FIL.py``); the training settings are
those of its ``train_model_new.py``. Contract: :class:`kglnet.models.metric_nets.MetricModel`.
Keras' settings (BatchNorm momentum 0.99 / epsilon 1e-3, biases, 'same' padding, he_normal /
glorot_uniform initialisers) come from :mod:`kglnet.models.keras_layers`; the output heads are
EFR-Net's (:func:`kglnet.models.efr_net.efr_head`, the same authors' code).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .efr_net import efr_head
from .keras_layers import LEAKY_SLOPE, conv_bn, conv_bn_lrelu, keras_init_
from .metric_nets import MetricModel
from .registry import register_model

FIL_NET_2023 = ("Yu, Zhao, Liu, Wu, Hu. Feature interaction learning network for cross-spectral image patch "
                "matching. IEEE Transactions on Image Processing 2023")

# Channels of the five feature levels of a tower (64x64, 32x32, 16x16, 8x8, 4x4).
LEVEL_CHANNELS = (32, 32, 64, 128, 256)


class ResidualDown(nn.Module):
    """The code's residual down-sampling stage: [B,c_in,H,W] -> [B,c_out,H/2,W/2].

    main: conv3x3-BN-LReLU, max-pool 2, conv3x3-BN-LReLU, conv3x3-BN (no activation);
    shortcut: conv1x1-BN-LReLU, max-pool 2; output LReLU(main + shortcut).
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.main = nn.Sequential(conv_bn_lrelu(c_in, c_out), nn.MaxPool2d(2, 2),
                                  conv_bn_lrelu(c_out, c_out), conv_bn(c_out, c_out))
        self.shortcut = nn.Sequential(conv_bn_lrelu(c_in, c_out, 1), nn.MaxPool2d(2, 2))
        self.act = nn.LeakyReLU(LEAKY_SLOPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.main(x) + self.shortcut(x))


class FILTower(nn.Module):
    """One FIL feature tower: [B,1,64,64] -> five levels [B,32,64,64], [B,32,32,32], [B,64,16,16],
    [B,128,8,8], [B,256,4,4].

    Level 1: (conv3x3-BN-LReLU) x 2 with 32 channels; levels 2-5: :class:`ResidualDown`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn_lrelu(1, 32), conv_bn_lrelu(32, 32))
        self.stages = nn.ModuleList(ResidualDown(a, b) for a, b in zip(LEVEL_CHANNELS[:-1], LEVEL_CHANNELS[1:]))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        levels = [self.stem(x)]
        for stage in self.stages:
            levels.append(stage(levels[-1]))
        return levels


class FeatureInteraction(nn.Module):
    """Cross-spectral interaction at one level (c channels, spatial size kept).

    For each spectrum s: ``a_s = LReLU(BN(conv1x1(f_s)))`` (features) and
    ``g_s = sigmoid(BN(conv1x1(f_s)))`` (gates), four separate 1x1 convolutions. Cross gating:
    ``p_vis = a_vis * g_other``, ``p_other = a_other * g_vis``; interaction residuals
    ``r_vis = |p_vis - a_vis|``, ``r_other = |p_other - a_other|``.
    Returns (r_vis, r_other, p_vis, p_other), each [B,c,H,W].
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.feat_vis = conv_bn_lrelu(channels, channels, 1)
        self.gate_vis = conv_bn(channels, channels, 1)
        self.feat_other = conv_bn_lrelu(channels, channels, 1)
        self.gate_other = conv_bn(channels, channels, 1)

    def forward(self, f_vis: torch.Tensor, f_other: torch.Tensor) -> tuple[torch.Tensor, ...]:
        a_vis, a_other = self.feat_vis(f_vis), self.feat_other(f_other)
        g_vis, g_other = torch.sigmoid(self.gate_vis(f_vis)), torch.sigmoid(self.gate_other(f_other))
        p_vis, p_other = a_vis * g_other, a_other * g_vis
        return (p_vis - a_vis).abs(), (p_other - a_other).abs(), p_vis, p_other


def double_conv(c_in: int, c_out: int) -> nn.Sequential:
    """(conv3x3-BN-LReLU) x 2: [B,c_in,H,W] -> [B,c_out,H,W]."""
    return nn.Sequential(conv_bn_lrelu(c_in, c_out), conv_bn_lrelu(c_out, c_out))


@register_model("fil_net")
class FILNet(MetricModel):
    """FIL-Net (Yu, Zhao, Liu, Wu, Hu, "Feature interaction learning network for cross-spectral
    image patch matching", IEEE TIP 2023). Input 64x64, no preprocessing beyond the [0,1]
    scaling (the authors divide uint8 patches by 255, as this project does).

    Architecture as built (the authors' Keras code, ``network_models/FIL.py``):

    - two feature towers with separate weights (:class:`FILTower`, ``tower_vis`` and
      ``tower_other``), five levels each with 32, 32, 64, 128, 256 channels at 64, 32, 16, 8, 4
      pixels;
    - per level l a :class:`FeatureInteraction` (``interactions[l]``) -> residuals r_vis, r_other
      and cross-gated features p_vis, p_other;
    - fusion path (``fusion[l]``): level 1: concat(r_vis, r_other) (64) -> double conv 64;
      level l = 2..5: concat(max-pool 2 of the previous level's output, r_vis, r_other) ->
      double conv with 128, 256, 512, 1024 channels (inputs 128, 256, 512, 1024), each a
      (conv3x3-BN-LReLU(0.1)) x 2; the fusion outputs of levels 3, 4, 5 (256 ch 16x16, 512 ch 8x8,
      1024 ch 4x4) feed dense heads;
    - interaction-loss path (``aux_convs``), levels 3, 4, 5: p_vis + p_other -> double conv
      keeping c_l channels (64, 128, 256) -> dense head;
    - six dense heads, each GAP -> Dense 512 ReLU -> Dense 256 ReLU -> Dense 1 (sigmoid in Keras;
      here the logit). ``head_logits`` in the Keras output order: fusion level 5 (reported),
      fusion 4, fusion 3, interaction 5, interaction 4, interaction 3; the objective sums their
      BCE (Keras' six ``binary_crossentropy`` losses, weights 1).

    Parameters: 33,046,982 trainable (this project's count; 2,022,496 per tower). Keras'
    ``model.summary()`` also counts the BatchNorm moving mean and variance (2 per BN channel,
    10,880 BN channels): 33,068,742 in all = 33.07 M, the paper's published figure. The 0.02 M
    between the trainable count (33.05 M) and 33.07 M is exactly those 21,760 non-trainable BN
    statistics (buffers in PyTorch).

    choice: Keras' initialisers and BatchNorm settings (see
    :func:`kglnet.models.keras_layers.keras_init_`; the same he_normal variant as EFR-Net).
    choice: BatchNorm statistics are per tower (each tower sees only its own spectrum's batch),
    as in the Keras graph.
    choice: ``logits`` evaluates only the level-5 fusion head and skips the interaction-loss
    convolutions and the other five heads (training-only; the reported score is the first output,
    as the authors' evaluation).
    choice: the fusion path's max-pooling uses Keras' 'same' padding in the code; every size here
    is even, so it is a plain 2x2 max-pool.
    Training in the authors' code: Nadam, lr 2e-4, batch 64, 40 epochs, labelled pairs (0 / 1)
    with augmentation; here the project's ``bce_random_negatives`` objective (BCE summed over the
    six heads, in-batch random negatives).
    """

    paper = FIL_NET_2023
    input_size = 64
    aux_levels = (4, 3, 2)  # 0-based levels of the interaction-loss heads, Keras output order (5, 4, 3)

    def __init__(self) -> None:
        super().__init__()
        self.tower_vis = FILTower()
        self.tower_other = FILTower()
        self.interactions = nn.ModuleList(FeatureInteraction(c) for c in LEVEL_CHANNELS)
        fusion_out = (64, 128, 256, 512, 1024)
        fusion_in = [2 * LEVEL_CHANNELS[0]] + [prev + 2 * c for prev, c in zip(fusion_out[:-1], LEVEL_CHANNELS[1:])]
        self.fusion = nn.ModuleList(double_conv(a, b) for a, b in zip(fusion_in, fusion_out))
        self.pool = nn.MaxPool2d(2, 2)
        # heads on the fusion outputs of levels 5, 4, 3
        self.fusion_heads = nn.ModuleList(efr_head(c) for c in (1024, 512, 256))
        # interaction-loss path, levels 5, 4, 3
        aux_channels = [LEVEL_CHANNELS[level] for level in self.aux_levels]
        self.aux_convs = nn.ModuleList(double_conv(c, c) for c in aux_channels)
        self.aux_heads = nn.ModuleList(efr_head(c) for c in aux_channels)
        keras_init_(self)

    def level_features(self, vis: torch.Tensor, other: torch.Tensor) -> tuple[list[torch.Tensor], list[tuple]]:
        """(fusion outputs of the five levels, :class:`FeatureInteraction` outputs of the five
        levels) for checked inputs."""
        levels = zip(self.interactions, self.tower_vis(vis), self.tower_other(other))
        inter = [block(f_vis, f_other) for block, f_vis, f_other in levels]
        fused: list[torch.Tensor] = []
        for level, (r_vis, r_other, _, _) in enumerate(inter):
            parts = [r_vis, r_other] if level == 0 else [self.pool(fused[-1]), r_vis, r_other]
            fused.append(self.fusion[level](torch.cat(parts, dim=1)))
        return fused, inter

    def pair_logits(self, vis: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        fused, _ = self.level_features(vis, other)
        return self.fusion_heads[0](fused[4]).squeeze(1)

    def pair_head_logits(self, vis: torch.Tensor, other: torch.Tensor) -> list[torch.Tensor]:
        fused, inter = self.level_features(vis, other)
        heads = [head(fused[level]).squeeze(1) for head, level in zip(self.fusion_heads, (4, 3, 2))]
        for conv, head, level in zip(self.aux_convs, self.aux_heads, self.aux_levels):
            _, _, p_vis, p_other = inter[level]
            heads.append(head(conv(p_vis + p_other)).squeeze(1))
        return heads


__all__ = ["FILNet", "FILTower", "FeatureInteraction", "ResidualDown", "double_conv", "LEVEL_CHANNELS"]
