"""AFD-Net (Quan et al., ICCV 2019): aggregated multi-level feature differences.

Layer sizes from the public Keras re-implementation ``network_models/AFD.py`` of the
YuChuang1205/RRL-Net repository; the Keras conventions (TF ``'same'`` padding, BatchNorm and
InstanceNormalization, initialisers, softmax outputs as logits) come from
:mod:`kglnet.models.keras_layers`.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .keras_layers import GlobalInstanceNorm, conv_bn_relu, dense_head, keras_init_, two_way_logit
from .metric_nets import MetricModel
from .registry import register_model

QUAN_2019 = ("Quan, Liang, Wang, Wei, Li, Huyan, Jiao. AFD-Net: Aggregated Feature Difference Learning for "
             "Cross-Spectral Image Patch Matching. ICCV 2019")


class AFDFeatureNetwork(nn.Module):
    """One spectrum's feature network (Keras ``FeatureNetwork2``): five feature levels.

    Every conv 3x3 with TF ``'same'`` padding, bias, BatchNorm, ReLU (``sN`` = stride N):
    level 1: C32 -> f1 [32,64,64];
    level 2: C32-s2, GlobalInstanceNorm, ReLU -> f2 [32,32,32];
    level 3: C64, C64-s2, GlobalInstanceNorm, ReLU -> f3 [64,16,16];
    level 4: C128, C128-s2 -> f4 [128,8,8];
    level 5: C256, C256-s2 -> f5 [256,4,4].
    """

    def __init__(self) -> None:
        super().__init__()
        self.levels = nn.ModuleList([
            conv_bn_relu(1, 32),
            nn.Sequential(conv_bn_relu(32, 32, 2), GlobalInstanceNorm(), nn.ReLU(inplace=True)),
            nn.Sequential(conv_bn_relu(32, 64), conv_bn_relu(64, 64, 2), GlobalInstanceNorm(), nn.ReLU(inplace=True)),
            nn.Sequential(conv_bn_relu(64, 128), conv_bn_relu(128, 128, 2)),
            nn.Sequential(conv_bn_relu(128, 256), conv_bn_relu(256, 256, 2)),
        ])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for level in self.levels:
            x = level(x)
            features.append(x)
        return features


def _decision_head(in_features: int) -> nn.Sequential:
    """Global 4x4 average pool -> Dense 512, ReLU -> Dense 256, ReLU -> Dense 2 (softmax scores)."""
    return dense_head(in_features, (512, 256), outputs=2, pool=nn.AvgPool2d(4))


@register_model("afd_net")
class AFDNet(MetricModel):
    """AFD-Net of Quan, Liang, Wang, Wei, Li, Huyan, Jiao, "AFD-Net: Aggregated Feature
    Difference Learning for Cross-Spectral Image Patch Matching", ICCV 2019. Input 64x64
    (``input_size = 64``, no resize).

    Architecture as built: the layer sizes of the public Keras re-implementation
    (``network_models/AFD.py`` of YuChuang1205/RRL-Net), which are followed wherever they and the
    paper might disagree (the paper's text was not compared layer by layer here; the one known
    difference, the loss, is listed under "choice:" below):

    - Two :class:`AFDFeatureNetwork` with separate weights (``features_vis`` for the VIS patch,
      ``features_other`` for the NIR / LWIR / SAR patch; the code builds two instances), each
      giving five levels f1..f5 (64x64x32, 32x32x32, 16x16x64, 8x8x128, 4x4x256); levels 2 and 3
      end with the domain-invariance instance normalisation (:class:`GlobalInstanceNorm`).
    - Feature differences ``d_k = |f_k(vis) - f_k(other)|``.
    - Aggregation network (every conv 3x3, TF ``'same'`` padding, BatchNorm, ReLU):
      a1 = C32, C32-s2 on d1 -> 32x32x32; a2 = C64, C64-s2 on [a1, d2] (64 ch) -> 16x16x64;
      a3 = C128, C128-s2 on [a2, d3] (128 ch) -> 8x8x128; a4 = C256, C256-s2 on [a3, d4] (256 ch)
      -> 4x4x256; a5 = C512 on [a4, d5] (512 ch) -> 4x4x512 (``[a, d]`` = channel concatenation,
      aggregated features first).
    - Aggregated head (the reported output): 4x4 average pool -> Dense 512, ReLU -> Dense 256,
      ReLU -> Dense 2 (softmax); logit ``z_match - z_nonmatch``.
    - Single-level head (auxiliary, deep supervision of the highest-level difference): C512 on d5
      -> 4x4 average pool -> Dense 512, ReLU -> Dense 256, ReLU -> Dense 2; same kind of logit.

    ``head_logits`` = [aggregated head, single-level head]; the objective sums their BCEs, which
    equal the two categorical cross-entropies (weights 1) of the Keras training script.
    ``logits`` / ``forward`` use the aggregated head only (the script reports output 0).

    Parameters: 8,247,820 trainable = two feature networks 2 x 1,173,604 (convs 1,171,680
    [320 + 9,248 + 18,496 + 36,928 + 73,856 + 147,584 + 295,168 + 590,080] + BatchNorm 1,920 +
    instance norm 4) + aggregation convs 3,927,488 [2 x 9,248 + 2 x 36,928 + 2 x 147,584 +
    2 x 590,080 + 2,359,808] + single-level conv 1,180,160 + BatchNorm of the aggregation and
    single-level convs 3,968 + two dense heads 2 x 394,498 [262,656 + 131,328 + 514]. Keras'
    summary would also list 7,808 non-trainable BatchNorm moving statistics. No parameter count
    is published.

    Keras settings kept: BatchNorm momentum 0.99 / epsilon 1e-3 (``eps=1e-3, momentum=0.01``);
    InstanceNormalization epsilon 1e-3 (added to the std); conv and dense layers with bias;
    ``'same'`` padding (TensorFlow's asymmetric split for the stride-2 convolutions, see
    :class:`kglnet.models.keras_layers.KerasConv2d`); ``he_normal`` conv kernels, ``glorot_uniform``
    dense kernels, zero biases (:func:`kglnet.models.keras_layers.keras_init_`, ``"inverse_cdf"``
    sampler).

    choice: the paper trains AFD-Net with the large margin cosine loss; the Keras script (and
    this model, through the project objective) uses the categorical cross-entropy of two plain
    softmax outputs, each reported as the logit ``z_match - z_nonmatch`` (Keras' clipping of the
    softmax probabilities to [1e-7, 1 - 1e-7] before the log is not reproduced).
    choice: the feature networks do not share weights (two instances in the code).
    choice: the inputs are used as given (float in [0,1], the Keras script's ``/ 255``).
    Training (not part of the model): the Keras script trains on labelled, balanced pairs with
    imgaug augmentation, Nadam lr 2e-4, batch 64, 40 epochs; here the project objective
    ``bce_random_negatives`` draws negatives in the batch.
    """

    paper = QUAN_2019

    def __init__(self) -> None:
        super().__init__()
        self.features_vis = AFDFeatureNetwork()
        self.features_other = AFDFeatureNetwork()
        self.aggregate = nn.ModuleList([
            nn.Sequential(conv_bn_relu(32, 32), conv_bn_relu(32, 32, 2)),       # d1 -> 32x32x32
            nn.Sequential(conv_bn_relu(64, 64), conv_bn_relu(64, 64, 2)),       # [a1, d2] -> 16x16x64
            nn.Sequential(conv_bn_relu(128, 128), conv_bn_relu(128, 128, 2)),   # [a2, d3] -> 8x8x128
            nn.Sequential(conv_bn_relu(256, 256), conv_bn_relu(256, 256, 2)),   # [a3, d4] -> 4x4x256
            conv_bn_relu(512, 512),                                             # [a4, d5] -> 4x4x512
        ])
        self.aggregated_head = _decision_head(512)
        self.single_conv = conv_bn_relu(256, 512)                               # d5 -> 4x4x512
        self.single_head = _decision_head(512)
        keras_init_(self, sampler="inverse_cdf")

    def differences(self, vis: torch.Tensor, other: torch.Tensor) -> list[torch.Tensor]:
        """``|f_k(vis) - f_k(other)|`` for the five levels k = 1..5."""
        return [(a - b).abs() for a, b in zip(self.features_vis(vis), self.features_other(other))]

    def aggregated_logit(self, diffs: list[torch.Tensor]) -> torch.Tensor:
        """Reported output: logit [B] of the head on the aggregated differences."""
        x = self.aggregate[0](diffs[0])
        for stage, d in zip(self.aggregate[1:], diffs[1:]):
            x = stage(torch.cat([x, d], dim=1))
        return two_way_logit(self.aggregated_head(x))

    def single_logit(self, diffs: list[torch.Tensor]) -> torch.Tensor:
        """Auxiliary output: logit [B] of the head on the highest-level difference d5 alone."""
        return two_way_logit(self.single_head(self.single_conv(diffs[-1])))

    def pair_logits(self, vis: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return self.aggregated_logit(self.differences(vis, other))

    def pair_head_logits(self, vis: torch.Tensor, other: torch.Tensor) -> list[torch.Tensor]:
        diffs = self.differences(vis, other)
        return [self.aggregated_logit(diffs), self.single_logit(diffs)]


__all__ = ["AFDNet", "AFDFeatureNetwork", "QUAN_2019"]
