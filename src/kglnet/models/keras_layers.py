"""Keras conventions in PyTorch, shared by the cross-spectral baselines that re-implement Keras models.

Why these exist: SCFDM, AFD-Net, MFD-Net, EFR-Net and FIL-Net (:mod:`kglnet.models.scfdm`,
:mod:`~kglnet.models.afd_net`, :mod:`~kglnet.models.mfd_net`, :mod:`~kglnet.models.efr_net`,
:mod:`~kglnet.models.fil_net`; layer sizes from the public Keras code of the RRL-Net repository
of Yu et al.) and SPIMNet (:mod:`kglnet.models.spimnet`; the authors' TensorFlow 2 / Keras
notebook) are meant to be faithful re-implementations of Keras models. Where Keras' defaults
differ from PyTorch's they change what a layer computes (padding, normalisation) or where
training starts (initialisation), so every such model rebuilds Keras' behaviour. This module
holds the one version of each piece:

- :class:`KerasConv2d`: TensorFlow's ``padding='same'`` (the odd padding row / column at the
  bottom / right, where PyTorch's symmetric padding would shift a strided sampling grid).
- :func:`keras_batch_norm`: ``BatchNormalization()`` (momentum 0.99, epsilon 1e-3).
- :func:`conv_bn`, :func:`conv_bn_relu`, :func:`conv_bn_lrelu`: the ``Conv2D('same') ->
  BatchNormalization() [-> activation]`` unit these models are made of.
- :func:`dense_head`: ``[pool ->] Flatten -> Dense + ReLU ... -> Dense`` output heads.
- :func:`truncated_normal_`, :func:`he_normal_`, :func:`keras_init_`: Keras' initialisers
  (``he_normal`` on TensorFlow's truncated normal, ``glorot_uniform``, zero biases).
- :class:`GlobalInstanceNorm`, :class:`KerasInstanceNorm`: the two ``InstanceNormalization``
  layers of the Keras ecosystem in use (keras-contrib's with ``axis=None``; TensorFlow-Addons').
- :func:`two_way_logit`, :func:`probability_to_logit`, :func:`keras_l2_normalize`: Keras'
  softmax / probability outputs and ``K.l2_normalize`` expressed for the project's BCE-on-logits
  objective.

PN-Net and Q-Net (:mod:`kglnet.models.pn_qnet`) are Torch7 models and use none of this.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

KERAS_NORM_EPS = 1e-3         # epsilon of BatchNormalization and of both InstanceNormalization layers
KERAS_BN_MOMENTUM = 0.01      # PyTorch's momentum = 1 - Keras' 0.99
KERAS_EPSILON = 1e-7          # keras.backend.epsilon(): probability clipping of the losses
KERAS_L2_EPS = 1e-12          # K.l2_normalize: x / sqrt(max(sum x^2, 1e-12))
# Std of a unit normal truncated to [-2, 2]; Keras (>= 2.2.3) divides he_normal's std by it so
# that the truncated draws keep the variance 2 / fan_in.
TRUNCATED_NORMAL_STD = 0.87962566103423978
LEAKY_SLOPE = 0.1             # LeakyReLU(alpha=0.1) of the RRL-Net repository's blocks (EFR-Net, FIL-Net)
SAMPLERS = ("redraw", "inverse_cdf")


class KerasConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's ``'same'`` padding: output size ``ceil(size / stride)``.

    The total padding ``max((out - 1) * stride + k - size, 0)`` is split with the extra row /
    column at the bottom / right, as TensorFlow does. For stride 1 and an odd kernel that split
    is always symmetric, so PyTorch's own ``padding = k // 2`` is used; otherwise the input is
    padded in ``forward`` for its size. Shapes: [B,C,H,W] -> [B,C',ceil(H/s),ceil(W/s)].
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 bias: bool = True) -> None:
        static = stride == 1 and kernel_size % 2 == 1
        super().__init__(in_channels, out_channels, kernel_size, stride=stride,
                         padding=kernel_size // 2 if static else 0, bias=bias)
        self.dynamic_padding = not static

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dynamic_padding:
            pad: list[int] = []
            # F.pad takes (left, right, top, bottom): width first
            for size, k, s in ((x.shape[-1], self.kernel_size[1], self.stride[1]),
                               (x.shape[-2], self.kernel_size[0], self.stride[0])):
                total = max((-(-size // s) - 1) * s + k - size, 0)
                pad += [total // 2, total - total // 2]
            if any(pad):
                x = F.pad(x, pad)
        return super().forward(x)


def keras_batch_norm(channels: int) -> nn.BatchNorm2d:
    """Keras' default ``BatchNormalization()`` (momentum 0.99, epsilon 1e-3) in PyTorch terms."""
    return nn.BatchNorm2d(channels, eps=KERAS_NORM_EPS, momentum=KERAS_BN_MOMENTUM)


def conv_bn(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
            activation: nn.Module | None = None) -> nn.Sequential:
    """Keras ``Conv2D(c, k, strides=s, padding='same')`` (bias) -> ``BatchNormalization()``
    [-> ``activation``]: Sequential(:class:`KerasConv2d`, BatchNorm2d[, activation])."""
    block = nn.Sequential(KerasConv2d(in_channels, out_channels, kernel_size, stride=stride),
                          keras_batch_norm(out_channels))
    if activation is not None:
        block.append(activation)
    return block


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3 :func:`conv_bn` -> ``ReLU()`` (SCFDM, AFD-Net)."""
    return conv_bn(in_channels, out_channels, 3, stride, nn.ReLU(inplace=True))


def conv_bn_lrelu(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Sequential:
    """:func:`conv_bn` -> ``LeakyReLU(0.1)``: Yu et al.'s basic unit (EFR-Net, FIL-Net)."""
    return conv_bn(in_channels, out_channels, kernel_size, activation=nn.LeakyReLU(LEAKY_SLOPE))


def dense_head(in_features: int, widths: Sequence[int], outputs: int = 1,
               pool: nn.Module | None = None) -> nn.Sequential:
    """[``pool`` ->] Flatten -> (Dense w, ReLU) for each of ``widths`` -> Dense ``outputs``.

    The last layer has no activation: with ``outputs=1`` it is the logit of Keras' sigmoid
    output, with ``outputs=2`` the scores of a softmax output (see :func:`two_way_logit`).
    """
    layers: list[nn.Module] = [] if pool is None else [pool]
    layers.append(nn.Flatten(1))
    n_in = in_features
    for width in widths:
        layers += [nn.Linear(n_in, width), nn.ReLU(inplace=True)]
        n_in = width
    layers.append(nn.Linear(n_in, outputs))
    return nn.Sequential(*layers)


def truncated_normal_(tensor: torch.Tensor, std: float, sampler: str = "redraw") -> torch.Tensor:
    """In place: N(0, std^2) truncated to [-2 std, 2 std], TensorFlow's ``truncated_normal``.

    ``sampler="redraw"`` draws N(0, std^2) and redraws the out-of-range values (~4.6 %) until none
    is left, as TensorFlow does; many times faster on CPU than the inverse-CDF method for the tens
    of millions of weights of these models (no ``erfinv``). ``"inverse_cdf"`` is
    ``nn.init.trunc_normal_``. Same distribution; a given seed gives different values, so each
    model keeps the sampler it was written with (its seeded weights stay the same). Meta tensors
    (no values; used to count parameters without allocating them) are left as they are.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if tensor.device.type == "meta":
        return tensor
    if sampler == "inverse_cdf":
        return nn.init.trunc_normal_(tensor, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)
    with torch.no_grad():
        flat = tensor.view(-1)
        flat.normal_(0.0, std)
        index = (flat.abs() > 2 * std).nonzero().squeeze(1)
        while index.numel() > 0:
            redraw = torch.empty(index.numel(), dtype=flat.dtype, device=flat.device).normal_(0.0, std)
            flat[index] = redraw
            index = index[redraw.abs() > 2 * std]
    return tensor


def he_normal_(weight: torch.Tensor, sampler: str = "redraw") -> torch.Tensor:
    """Keras' ``he_normal``: :func:`truncated_normal_` with std ``sqrt(2 / fan_in) / 0.8796``.

    ``fan_in = weight[0].numel()``: kernel area x input channels for a convolution, and kernel
    area x OUTPUT channels for a transposed convolution, which is Keras' fan-in of
    ``Conv2DTranspose`` (its kernel's input-side axis is the filters).
    """
    std = math.sqrt(2.0 / weight[0].numel()) / TRUNCATED_NORMAL_STD
    return truncated_normal_(weight, std, sampler)


def keras_init_(module: nn.Module, sampler: str = "redraw") -> None:
    """Keras' initialisation of every layer of ``module``, in place.

    2-D convolutions and transposed convolutions: ``he_normal`` (:func:`he_normal_`; every Keras
    model here names it for each ``Conv2D`` / ``Conv2DTranspose``); dense layers and 1-D
    convolutions: ``glorot_uniform`` (Keras' default); zero biases; BatchNorm gamma 1, beta 0.
    ``sampler``: see :func:`truncated_normal_`.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            he_normal_(m.weight, sampler)
        elif isinstance(m, (nn.Linear, nn.Conv1d)):
            nn.init.xavier_uniform_(m.weight)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
            continue
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class GlobalInstanceNorm(nn.Module):
    """The Keras(-contrib) ``InstanceNormalization()`` with its default ``axis=None`` (AFD-Net).

    Per sample, over ALL of (C, H, W): ``(x - mean) / (std + eps)`` with the population standard
    deviation and ``eps`` added to the std (not to the variance), then one scalar ``gamma`` and
    one scalar ``beta`` (2 parameters, whatever the channel count). This is not PyTorch's
    ``InstanceNorm2d`` (per channel) nor ``GroupNorm(1, C)`` (eps inside the root, per-channel
    affine), nor :class:`KerasInstanceNorm`. Shapes: [B,C,H,W] -> [B,C,H,W].
    """

    def __init__(self, eps: float = KERAS_NORM_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(1))
        self.beta = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True, correction=0)
        return (x - mean) / (std + self.eps) * self.gamma + self.beta


class KerasInstanceNorm(nn.Module):
    """TensorFlow-Addons ``InstanceNormalization`` (defaults; SPIMNet): per sample and channel,
    ``(x - mean) / sqrt(var + 1e-3) * gamma + beta`` over H x W (biased variance).

    Written out instead of ``nn.InstanceNorm2d`` because it must also accept 1x1 maps (SPIMNet's
    translators' bottleneck), where it returns ``beta`` as TensorFlow does; PyTorch refuses them.
    """

    def __init__(self, channels: int, eps: float = KERAS_NORM_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        var = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True)
        x = (x - mean) * torch.rsqrt(var + self.eps)
        return x * self.weight[None, :, None, None] + self.bias[None, :, None, None]


def two_way_logit(z: torch.Tensor) -> torch.Tensor:
    """[B,2] scores of a (non-match, match) softmax layer -> logit [B] ``z_match - z_nonmatch``.

    Its sigmoid is the softmax match probability, and BCE on it equals the two-way categorical
    cross-entropy (Keras' clipping of the softmax probabilities to [1e-7, 1 - 1e-7] aside).
    """
    return z[:, 1] - z[:, 0]


def probability_to_logit(p: torch.Tensor, eps: float = KERAS_EPSILON) -> torch.Tensor:
    """``log(p / (1 - p))`` of ``p`` clipped to [eps, 1 - eps]: the logit Keras (TF1 backend) gives
    ``binary_crossentropy`` for a probability output, so BCE on it equals Keras' loss."""
    p = p.clamp(eps, 1.0 - eps)
    return torch.log(p) - torch.log1p(-p)


def keras_l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """``K.l2_normalize(x, axis=-1)``: ``x / sqrt(max(sum x^2, 1e-12))`` over the last dimension."""
    return x * torch.rsqrt(x.pow(2).sum(dim=-1, keepdim=True).clamp_min(KERAS_L2_EPS))


__all__ = ["KerasConv2d", "keras_batch_norm", "conv_bn", "conv_bn_relu", "conv_bn_lrelu", "dense_head",
           "truncated_normal_", "he_normal_", "keras_init_", "GlobalInstanceNorm", "KerasInstanceNorm",
           "two_way_logit", "probability_to_logit", "keras_l2_normalize", "KERAS_NORM_EPS", "KERAS_BN_MOMENTUM",
           "KERAS_EPSILON", "KERAS_L2_EPS", "TRUNCATED_NORMAL_STD", "LEAKY_SLOPE", "SAMPLERS"]
