"""EFR-Net: efficient feature relation learning for cross-spectral patch matching (metric network).

Yu, Liu, Zhao, Wu, Hu, "Efficient feature relation learning network for cross-spectral image
patch matching", IEEE TGRS 2023. The layer sizes are those of the authors' public Keras code
(repository ``YuChuang1205/RRL-Net``, ``network_models/EFR.py`` and the ``imp_eca`` attention
of ``network_models/network_module.py``); the training settings are those of its
``train_model_new.py``. Contract: :class:`kglnet.models.metric_nets.MetricModel`.

The Keras building blocks are rebuilt with Keras' settings (:mod:`kglnet.models.keras_layers`):
BatchNormalization momentum 0.99 / epsilon 1e-3 (PyTorch ``momentum=0.01, eps=1e-3``),
convolutions and dense layers with bias, 'same' padding; Keras' initialisers (``he_normal`` for
the 2-D convolutions, which the code names; ``glorot_uniform``, Keras' default, for the attention's
1-D convolutions and the dense layers; zero biases) by
:func:`kglnet.models.keras_layers.keras_init_`.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from .keras_layers import conv_bn_lrelu, dense_head, keras_init_
from .metric_nets import MetricModel
from .registry import register_model

EFR_NET_2023 = ("Yu, Liu, Zhao, Wu, Hu. Efficient feature relation learning network for cross-spectral image patch "
                "matching. IEEE Transactions on Geoscience and Remote Sensing 2023")


def efr_head(in_features: int) -> nn.Sequential:
    """GAP -> Dense 512 ReLU -> Dense 256 ReLU -> Dense 1 (the sigmoid's pre-activation, a logit).
    Every output of EFR-Net and of FIL-Net ends with this head."""
    return dense_head(in_features, (512, 256), pool=nn.AdaptiveAvgPool2d(1))


def axis_eca_kernel_size(n: int, gamma: int = 2, b: int = 1) -> int:
    """ECA's adaptive kernel for an axis of length n: int(|(log2 n + b) / gamma|), made odd.

    Heights / widths 32, 16, 8, 4 -> 3, 3, 3, 1; channels 32, 64, 128, 256 -> 3, 3, 5, 5.
    """
    k = int(abs((math.log2(n) + b) / gamma))
    return k if k % 2 else k + 1


class AxisECA(nn.Module):
    """The code's ``imp_eca``: ECA-style attention along height, width and channels.

    For each axis (H, W, C): the mean over the two other axes gives a length-n profile; a 1-D
    convolution (1 -> 1 channel, bias, kernel :func:`axis_eca_kernel_size`, 'same' padding) and a
    sigmoid turn it into weights; the input is multiplied by all three weight vectors (broadcast).
    Shapes: [B,C,H,W] -> [B,C,H,W]; the sizes are fixed at construction (Keras builds them from
    the static shape). Parameters: (k_h + 1) + (k_w + 1) + (k_c + 1).
    """

    def __init__(self, channels: int, height: int, width: int, gamma: int = 2, b: int = 1) -> None:
        super().__init__()
        self.sizes = (channels, height, width)

        def conv(n: int) -> nn.Conv1d:
            k = axis_eca_kernel_size(n, gamma, b)
            return nn.Conv1d(1, 1, kernel_size=k, padding=k // 2)

        self.conv_h, self.conv_w, self.conv_c = conv(height), conv(width), conv(channels)

    @staticmethod
    def _weights(conv: nn.Conv1d, profile: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(conv(profile.unsqueeze(1)).squeeze(1))   # [B,n] -> [B,n]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_h = self._weights(self.conv_h, x.mean(dim=(1, 3)))   # [B,H]
        w_w = self._weights(self.conv_w, x.mean(dim=(1, 2)))   # [B,W]
        w_c = self._weights(self.conv_c, x.mean(dim=(2, 3)))   # [B,C]
        return x * w_h[:, None, :, None] * w_w[:, None, None, :] * w_c[:, :, None, None]


def efr_tower() -> nn.Sequential:
    """One EFR feature tower: [B,1,64,64] -> [B,256,4,4].

    Four stages of (conv3x3-BN-LReLU) x 2, max-pool 2x2, :class:`AxisECA`, with 32, 64, 128, 256
    channels (64 -> 32 -> 16 -> 8 -> 4).
    """
    layers: list[nn.Module] = []
    c_in, size = 1, 64
    for c_out in (32, 64, 128, 256):
        size //= 2
        layers += [conv_bn_lrelu(c_in, c_out), conv_bn_lrelu(c_out, c_out), nn.MaxPool2d(2, 2),
                   AxisECA(c_out, size, size)]
        c_in = c_out
    return nn.Sequential(*layers)


@register_model("efr_net")
class EFRNet(MetricModel):
    """EFR-Net (Yu, Liu, Zhao, Wu, Hu, "Efficient feature relation learning network for
    cross-spectral image patch matching", IEEE TGRS 2023). Input 64x64, no preprocessing beyond
    the [0,1] scaling (the authors divide uint8 patches by 255, as this project does).

    Architecture as built (the authors' Keras code, ``network_models/EFR.py``):

    - four feature towers with separate weights (:func:`efr_tower`, each [B,1,64,64] ->
      [B,256,4,4]): ``tower_vis_diff`` and ``tower_other_diff`` feed the difference branch,
      ``tower_vis_prod`` and ``tower_other_prod`` the product branch. The Keras model has four
      inputs and its training script feeds [vis, nir, vis, nir], i.e. the same pair to both
      tower pairs; here ``(vis, other)`` goes to both.
    - difference branch: ``|f_vis - f_other|`` -> conv3x3 256->256-BN-LReLU(0.1) -> ``diff``;
      product branch: ``f_vis * f_other`` -> conv3x3 256->256-BN-LReLU -> ``prod``;
      fusion: concat(diff, prod) -> conv3x3 512->512-BN-LReLU -> ``fused``.
    - three heads, each GAP -> Dense 512 ReLU -> Dense 256 ReLU -> Dense 1 (sigmoid in Keras;
      here the logit): on ``fused`` (reported, the Keras model's first output), ``diff``, ``prod``.
      ``head_logits`` = [fused, diff, prod]; the objective sums their BCE (Keras' sum of three
      ``binary_crossentropy`` losses, weights 1).

    Parameters: 9,157,187 trainable (this project's count; 1,173,648 per tower). Keras'
    ``model.summary()`` also counts the BatchNorm moving mean and variance (2 per BN channel,
    4,864 BN channels): 9,166,915 in all = 9.17 M, the paper's published figure. The 0.01 M
    between the trainable count (9.16 M) and 9.17 M is exactly those 9,728 non-trainable BN
    statistics (buffers in PyTorch).

    choice: Keras' initialisers and BatchNorm settings (see
    :func:`kglnet.models.keras_layers.keras_init_`, :func:`kglnet.models.keras_layers.keras_batch_norm`);
    he_normal with the variance-preserving std correction of newer Keras versions (the Keras
    version the authors used is not stated).
    choice: BatchNorm statistics are per tower (each tower sees only its own spectrum's batch),
    as in the Keras graph.
    choice: ``logits`` evaluates only the fused head's dense layers (the auxiliary heads are
    training-only; the reported score is the first output, as the authors' evaluation).
    Training in the authors' code: Adam, lr 2e-4, batch 64, 40 epochs, labelled pairs (0 / 1)
    with augmentation; here the project's ``bce_random_negatives`` objective (BCE summed over the
    three heads, in-batch random negatives).
    """

    paper = EFR_NET_2023
    input_size = 64

    def __init__(self) -> None:
        super().__init__()
        self.tower_vis_diff = efr_tower()
        self.tower_other_diff = efr_tower()
        self.tower_vis_prod = efr_tower()
        self.tower_other_prod = efr_tower()
        self.diff_conv = conv_bn_lrelu(256, 256)
        self.prod_conv = conv_bn_lrelu(256, 256)
        self.fuse_conv = conv_bn_lrelu(512, 512)
        self.head_fused = efr_head(512)
        self.head_diff = efr_head(256)
        self.head_prod = efr_head(256)
        keras_init_(self)

    def relation_features(self, vis: torch.Tensor, other: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(fused [B,512,4,4], diff [B,256,4,4], prod [B,256,4,4]) for checked inputs."""
        diff = self.diff_conv((self.tower_vis_diff(vis) - self.tower_other_diff(other)).abs())
        prod = self.prod_conv(self.tower_vis_prod(vis) * self.tower_other_prod(other))
        fused = self.fuse_conv(torch.cat([diff, prod], dim=1))
        return fused, diff, prod

    def pair_logits(self, vis: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        fused, _, _ = self.relation_features(vis, other)
        return self.head_fused(fused).squeeze(1)

    def pair_head_logits(self, vis: torch.Tensor, other: torch.Tensor) -> list[torch.Tensor]:
        fused, diff, prod = self.relation_features(vis, other)
        return [self.head_fused(fused).squeeze(1), self.head_diff(diff).squeeze(1), self.head_prod(prod).squeeze(1)]


__all__ = ["EFRNet", "AxisECA", "axis_eca_kernel_size", "efr_tower", "efr_head", "EFR_NET_2023"]
