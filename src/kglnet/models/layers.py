"""Building blocks of KGL-Net (SPEC section 2): FRN, TLU, ECA and the conv stacks built from them."""

from __future__ import annotations

import math

import torch
import torch.nn as nn


class FRN(nn.Module):
    """Filter response normalisation (arXiv 1911.09737) without the TLU.

    ``x * rsqrt(mean(x^2 over H, W) + |eps|)`` then per-channel ``gamma * x + beta``.
    eps is a fixed buffer (1e-6), not a learned parameter.

    Shapes: [B, C, H, W] -> [B, C, H, W].
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("eps", torch.tensor(eps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nu2 = x.pow(2).mean(dim=(2, 3), keepdim=True)
        x = x * torch.rsqrt(nu2 + self.eps.abs())
        return self.gamma * x + self.beta


class TLU(nn.Module):
    """Thresholded linear unit ``max(x, tau)`` with a learned per-channel tau (initialised to -1)."""

    def __init__(self, channels: int, init: float = -1.0) -> None:
        super().__init__()
        self.tau = nn.Parameter(torch.full((1, channels, 1, 1), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.maximum(x, self.tau)


def eca_kernel_size(channels: int) -> int:
    """ECA's adaptive kernel: int((log2(C) + 1) / 2), made odd (3, 3, 5, 5 for C = 32..256)."""
    k = int((math.log2(channels) + 1) / 2)
    return k + 1 if k % 2 == 0 else k


class ECA(nn.Module):
    """Efficient channel attention: GAP -> 1-D conv across channels (no bias) -> sigmoid -> scale.

    Shapes: [B, C, H, W] -> [B, C, H, W].
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        k = eca_kernel_size(channels)
        self.conv = nn.Conv1d(1, 1, kernel_size=k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.mean(dim=(2, 3))                      # [B, C]
        w = self.conv(w.unsqueeze(1)).squeeze(1)    # 1-D conv over the channel axis
        return x * torch.sigmoid(w)[:, :, None, None]


class ConvFRN(nn.Sequential):
    """3x3 conv (padding 1, bias) -> FRN -> TLU, optionally followed by ECA."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, eca: bool = False) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=True),
            FRN(c_out),
            TLU(c_out),
        ]
        if eca:
            layers.append(ECA(c_out))
        super().__init__(*layers)


#: eps of :class:`LowLevelStack`'s standardisation: a quarter of one grey level (1 / 255). HardNet's
#: 1e-7 is not large against float32's rounding error in a patch mean (about 1e-8 for values near
#: 0.3; the error depends on the summation order): with it a constant patch of 0.3 came out as
#: 0.298 on the 2-core machine instead of 0; a patch with texture (std of a few grey levels or
#: more) is scaled within a few per cent of 1 / std, and layer 1's FRN removes that scale anyway.
STANDARDIZE_EPS = 1e-3


def standardize_patches(x: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """HardNet's ``input_norm``: per patch, subtract the mean and divide by (unbiased std + eps).

    The statistics are detached, as in HardNet's code (eps 1e-7 is its value). No value of a
    standardised patch of N pixels exceeds (N - 1) / sqrt(N) in magnitude (Samuelson's inequality).
    Shapes: [B,C,H,W] -> [B,C,H,W] (statistics over C, H and W of each sample).
    """
    flat = x.flatten(1)
    mean = flat.mean(dim=1).detach()[:, None, None, None]
    std = flat.std(dim=1).detach()[:, None, None, None]
    return (x - mean) / (std + eps)


class LowLevelStack(nn.Sequential):
    """Per-modality layers 1-4: [B,1,64,64] -> low-level map [B,64,32,32].

    ``standardize_input`` (not in the SPEC, off by default): standardise each patch with
    :func:`standardize_patches` (eps :data:`STANDARDIZE_EPS`) before layer 1. Layer 1's FRN already
    divides each patch by its root mean square, so what this adds is the mean's removal; the
    division keeps the values bounded. It adds no parameter, so the state-dict keys are
    those of the plain stack, and every caller of the stack (training, scoring, matching, export)
    gets it.
    """

    def __init__(self, standardize_input: bool = False) -> None:
        super().__init__(
            FRN(1),
            TLU(1),
            ConvFRN(1, 32),
            ConvFRN(32, 32, eca=True),
            ConvFRN(32, 64, stride=2),
            ConvFRN(64, 64, eca=True),
        )
        self.standardize_input = standardize_input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.standardize_input:
            x = standardize_patches(x, eps=STANDARDIZE_EPS)
        return super().forward(x)


class HighLevelStack(nn.Sequential):
    """Layers 5-8: low-level map [B,64,32,32] -> [B,256,8,8]."""

    def __init__(self) -> None:
        super().__init__(
            ConvFRN(64, 128, stride=2),
            ConvFRN(128, 128, eca=True),
            ConvFRN(128, 256, stride=2),
            ConvFRN(256, 256, eca=True),
        )


def init_weights(module: nn.Module) -> None:
    """SPEC init: Kaiming-normal (fan_out, leaky_relu) conv/linear weights, zero bias; BN 1/0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def l2_normalize(d: torch.Tensor) -> torch.Tensor:
    """``d / sqrt(sum d^2 + 1e-10)`` along dim 1, exactly as SPEC section 2."""
    return d / torch.sqrt(d.pow(2).sum(dim=1, keepdim=True) + 1e-10)


__all__ = ["FRN", "TLU", "ECA", "ConvFRN", "LowLevelStack", "HighLevelStack", "init_weights",
           "l2_normalize", "eca_kernel_size", "standardize_patches", "STANDARDIZE_EPS"]
