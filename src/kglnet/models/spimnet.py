"""SPIMNet: spectral-invariant matching network (metric network, ~131 M parameters).

SPIMNet (SPectral-Invariant Matching Network), Information Fusion 91 (2023) 623-632,
doi:10.1016/j.inffus.2022.10.033; code: github.com/koyeongmin/SPIMNet (``SPIMNet.ipynb``,
TensorFlow 2 / Keras). The layer sizes, the wiring and the training settings below are those of
that notebook, whose printed model summary gives 130,886,917 parameters (130,872,965 trainable +
13,952 BatchNorm moving statistics): the "130.89 M" the KGL-Net paper quotes.
Contract: :class:`kglnet.models.metric_nets.MetricModel`.

Keras' settings are kept (:mod:`kglnet.models.keras_layers`): BatchNormalization momentum 0.99 /
epsilon 1e-3 (PyTorch ``momentum=0.01, eps=1e-3``); TensorFlow-Addons ``InstanceNormalization``
(per sample and channel over H x W, epsilon 1e-3, learned scale and offset) as
:class:`~kglnet.models.keras_layers.KerasInstanceNorm`; 'same' padding exactly as TensorFlow
computes it (5x5 stride-2 convolutions pad 1 before / 2 after, see
:class:`~kglnet.models.keras_layers.KerasConv2d`); ``he_normal`` kernels (Keras' truncated
normal) for every convolution and transposed convolution, with Keras' fan-in of a transposed
convolution, ``glorot_uniform`` for the dense layers, zero biases
(:func:`~kglnet.models.keras_layers.keras_init_`, ``"inverse_cdf"`` sampler).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .descriptors import check_pair
from .keras_layers import KerasConv2d, KerasInstanceNorm, keras_batch_norm, keras_init_
from .metric_nets import MetricModel
from .registry import register_model

SPIMNET_2023 = ("SPIMNet (SPectral-Invariant Matching Network): Spectral-invariant matching network. "
                "Information Fusion 91 (2023) 623-632, doi:10.1016/j.inffus.2022.10.033 "
                "(code: github.com/koyeongmin/SPIMNet)")

# Feature extractor of each matching domain: (out channels, kernel, stride), 64x64 -> 8x8x256.
DOMAIN_LAYERS = ((32, 3, 1), (64, 3, 1), (128, 3, 1), (128, 5, 2), (256, 3, 1), (256, 5, 2), (256, 3, 1),
                 (256, 5, 2))
DOMAIN_FEATURES = 256 * 8 * 8                      # 16,384 per patch
# Translation U-Nets: encoder widths (64x64 -> 1x1) and decoder widths (1x1 -> 32x32).
ENCODER = (64, 128, 256, 256, 256, 256)
DECODER = (256, 256, 256, 128, 64)


def bn_in_relu(channels: int) -> list[nn.Module]:
    """The notebook's normalisation: BatchNorm, then InstanceNorm, then ReLU."""
    return [keras_batch_norm(channels), KerasInstanceNorm(channels), nn.ReLU(inplace=True)]


def down_block(c_in: int, c_out: int, normalise: bool = True) -> nn.Sequential:
    """``downsample``: conv 4x4 stride 2 'same', no bias, [BN + IN], ReLU: H -> H/2."""
    layers: list[nn.Module] = [KerasConv2d(c_in, c_out, 4, stride=2, bias=False)]
    layers += bn_in_relu(c_out) if normalise else [nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def up_block(c_in: int, c_out: int) -> nn.Sequential:
    """``upsample``: transposed conv 4x4 stride 2 'same' (PyTorch padding 1), no bias, BN + IN,
    ReLU: H -> 2H."""
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False), *bn_in_relu(c_out))


def feature_block(c_in: int, c_out: int, kernel_size: int, stride: int) -> nn.Sequential:
    """``extract_first_features``: conv 'same', no bias, BN + IN, ReLU."""
    return nn.Sequential(KerasConv2d(c_in, c_out, kernel_size, stride=stride, bias=False), *bn_in_relu(c_out))


class Translator(nn.Module):
    """Domain translation U-Net (``RGB2NIR_convertor`` / ``NIR2RGB_convertor``):
    [B,c_in,64,64] in [-1,1] -> [B,c_out,64,64] in (-1,1).

    Encoder: six :func:`down_block` 4x4/2 (64, 128, 256, 256, 256, 256 channels; the first without
    normalisation): 64 -> 32 -> 16 -> 8 -> 4 -> 2 -> 1. Decoder: five :func:`up_block` (256, 256,
    256, 128, 64), each followed by concatenation with the encoder output of the same size
    (skips 2x2 ... 32x32); last: transposed conv 4x4/2 with bias, 128 -> c_out, tanh.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        widths = (c_in,) + ENCODER
        self.down = nn.ModuleList(down_block(a, b, normalise=i > 0)
                                  for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])))
        skips = ENCODER[-2::-1]                     # 256, 256, 256, 128, 64
        ins = (ENCODER[-1],) + tuple(d + s for d, s in zip(DECODER[:-1], skips[:-1]))
        self.up = nn.ModuleList(up_block(a, b) for a, b in zip(ins, DECODER))
        self.last = nn.ConvTranspose2d(DECODER[-1] + skips[-1], c_out, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = torch.cat([block(x), skip], dim=1)
        return torch.tanh(self.last(x))


class DomainMatcher(nn.Module):
    """``NIR_domain_matching`` / ``RGB_domain_matching``: one feature extractor (shared by the two
    patches of its domain) of eight :func:`feature_block` (:data:`DOMAIN_LAYERS`), flatten ->
    ``[f_a, f_b, |f_a - f_b|]``: two [B,c,64,64] -> [B, 3 x 16,384].

    The two patches go through separately (two calls, as the notebook calls the Keras layers
    twice), so in training each gets its own BatchNorm batch statistics.
    """

    def __init__(self, c_in: int) -> None:
        super().__init__()
        layers, c = [], c_in
        for c_out, k, s in DOMAIN_LAYERS:
            layers.append(feature_block(c, c_out, k, s))
            c = c_out
        self.features = nn.Sequential(*layers, nn.Flatten(1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        f_a, f_b = self.features(a), self.features(b)
        return torch.cat([f_a, f_b, (f_a - f_b).abs()], dim=1)


@register_model("spimnet")
class SPIMNet(MetricModel):
    """SPIMNet (Information Fusion 91, 2023, 623-632; code github.com/koyeongmin/SPIMNet). Input 64x64.

    Architecture as built (the notebook's ``make_similarity_model``), VIS patch v, other patch x
    (NIR / LWIR / SAR), both mapped from [0,1] to [-1,1]:

    - translators (:class:`Translator`, separate weights): ``vis_to_other`` v -> x' (1 channel),
      ``other_to_vis`` x -> v' (``vis_channels`` channels);
    - matching in the other patch's domain: ``other_domain`` (:class:`DomainMatcher`, 1 input
      channel) on (x, x'); in the VIS domain: ``vis_domain`` (``vis_channels`` input channels) on
      (v, v'); each gives ``[f_1, f_2, |f_1 - f_2|]`` (49,152 values);
    - head on ``[other-domain, VIS-domain]`` (98,304 values): Dense 98304->1024, Dense 1024->128,
      Dense 128->1, with NO activation in between (Keras ``Dense`` default, as in the notebook);
      the last output is the logit (the notebook trains BCE ``from_logits``).

    Parameters (trainable; ``count_parameters``): 130,872,965 with ``vis_channels=3`` (the
    published network; + 13,952 BatchNorm running means / variances = 130,886,917, the notebook's
    Keras total and the 130.89 M quoted by KGL-Net); 130,866,243 with ``vis_channels=1``.

    choice: the grey VIS patch is repeated to 3 channels (``vis_channels=3``, default) so that the
    layers and the count are the published RGB ones; ``vis_channels=1`` feeds it as one channel.
    choice: inputs in [0,1] are mapped to [-1,1] (``2x - 1``), the notebook's ``x / 127.5 - 1``.
    choice: PyTorch flattens the 8x8x256 maps channel-first (Keras: channel-last): a fixed
    permutation of the first dense layer's inputs, same function class.
    choice: the auxiliary translation losses are not part of this project's objective (the
    project's ``"bce_random_negatives"`` trains the logit only); the notebook adds, on positive
    pairs only, ``0.1 x (L1(v, v') + L1(x, x'))`` (:func:`translation_l1_loss`) and
    ``30 x`` the MSE between ImageNet-pretrained VGG19 ``block5_conv4`` features of (v, v') and of
    (x, x') (x repeated to 3 channels), which needs ImageNet weights.
    choice: the notebook's label smoothing 0.01 and its L2 kernel regulariser (0.001, domain
    matchers' convolutions; not added to the loss in its custom training loop) are not applied.
    choice: positives and random negatives pass in one call (the notebook calls the network
    once on 8 positive and once on 8 negative pairs), which changes BatchNorm's batch statistics.

    Quirk kept from the original: the translators' innermost 4x4 convolution outputs a 1x1 map, on
    which InstanceNorm returns its offset whatever the input. With Keras' zero offsets and
    ReLU'(0) = 0 (TensorFlow and PyTorch alike), that block and the first up block output zeros
    and get exactly zero gradient, so they stay at their initial values: the U-Nets work through
    their skip connections only. BatchNorm offsets directly followed by InstanceNorm are cancelled
    by it (gradient ~0).
    """

    paper = SPIMNET_2023

    def __init__(self, vis_channels: int = 3) -> None:
        super().__init__()
        if vis_channels not in (1, 3):
            raise ValueError(f"vis_channels must be 1 or 3, got {vis_channels}")
        self.vis_channels = vis_channels
        self.vis_to_other = Translator(vis_channels, 1)
        self.other_to_vis = Translator(1, vis_channels)
        self.other_domain = DomainMatcher(1)
        self.vis_domain = DomainMatcher(vis_channels)
        self.head = nn.Sequential(nn.Linear(2 * 3 * DOMAIN_FEATURES, 1024), nn.Linear(1024, 128),
                                  nn.Linear(128, 1))
        keras_init_(self, sampler="inverse_cdf")

    def _inputs(self, vis: torch.Tensor, other: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        vis = vis * 2.0 - 1.0
        return vis.expand(-1, self.vis_channels, -1, -1), other * 2.0 - 1.0

    def translations(self, vis: torch.Tensor, other: torch.Tensor) -> dict[str, torch.Tensor]:
        """Inputs in [-1,1] and their translations (inputs already checked):
        ``vis`` [B,c,64,64], ``vis_from_other`` (x -> v'), ``other`` [B,1,64,64],
        ``other_from_vis`` (v -> x')."""
        v, x = self._inputs(vis, other)
        return {"vis": v, "vis_from_other": self.other_to_vis(x), "other": x, "other_from_vis": self.vis_to_other(v)}

    def pair_logits(self, vis: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        t = self.translations(vis, other)
        f_other = self.other_domain(t["other"], t["other_from_vis"])
        f_vis = self.vis_domain(t["vis"], t["vis_from_other"])
        return self.head(torch.cat([f_other, f_vis], dim=1)).squeeze(1)


def translation_l1_loss(model: SPIMNet, vis: torch.Tensor, other: torch.Tensor, alpha: float = 0.1) -> torch.Tensor:
    """The notebook's L1 translation term for aligned POSITIVE pairs:
    ``alpha x (mean |v - v'| + mean |x - x'|)`` in the [-1,1] range (alpha 0.1). Not used by the
    project's objective; the VGG19 perceptual term (weight 30) is not provided."""
    check_pair(vis, other)
    t = model.translations(vis, other)
    return alpha * ((t["vis"] - t["vis_from_other"]).abs().mean() + (t["other"] - t["other_from_vis"]).abs().mean())


__all__ = ["SPIMNet", "Translator", "DomainMatcher", "translation_l1_loss", "SPIMNET_2023"]
