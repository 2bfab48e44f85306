"""Parameter arithmetic and random inputs shared by the model tests (tests/models): each test
spells its network's expected parameter count out layer by layer with these."""

from __future__ import annotations

import torch


def conv(c_in: int, c_out: int, k: int = 3, bias: bool = True) -> int:
    """A k x k convolution: weights, plus one bias per output channel."""
    return c_in * c_out * k * k + (c_out if bias else 0)


def bn(c: int) -> int:
    """BatchNorm's trainable gamma and beta (its moving statistics are buffers; Keras' totals also
    count those two per channel)."""
    return 2 * c


def conv_bn(c_in: int, c_out: int, k: int = 3) -> int:
    """A convolution with bias followed by BatchNorm."""
    return conv(c_in, c_out, k) + bn(c_out)


def linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def pair(b: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``b`` random 1 x 64 x 64 patch pairs in [0, 1), the same for the same seed."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, 64, 64, generator=g), torch.rand(b, 1, 64, 64, generator=g)
