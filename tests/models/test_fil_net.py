"""FIL-Net (Yu et al., TIP 2023): exact parameter count, towers, feature interaction, head order, Keras settings.

The contract shared with the other cross-spectral models (registration, outputs and head count,
input checks, batch independence, gradients) is in test_cross_spectral_contract.py.
"""

import pytest
import torch
import torch.nn as nn

import kglnet.models.fil_net as fil_net  # noqa: F401  (registers "fil_net")
from kglnet.models import count_parameters, create_model
from model_counts import conv_bn, linear, pair

PAPER_MILLIONS = 33.07  # published parameter count of FIL-Net


def head(c):
    return linear(c, 512) + linear(512, 256) + linear(256, 1)


def residual_down(a, b):
    # main conv3x3 a->b, conv3x3 b->b, conv3x3 b->b; shortcut conv1x1 a->b
    return conv_bn(a, b) + conv_bn(b, b) + conv_bn(b, b) + conv_bn(a, b, 1)


LEVELS = [32, 32, 64, 128, 256]
TOWER = conv_bn(1, 32) + conv_bn(32, 32) + sum(residual_down(a, b) for a, b in zip(LEVELS[:-1], LEVELS[1:]))
INTERACTION = sum(4 * conv_bn(c, c, 1) for c in LEVELS)     # feature + gate 1x1 convs per spectrum
# fusion: level 1 input 2*32; level l input = previous output + 2*c_l
FUSION_IO = [(64, 64), (64 + 64, 128), (128 + 128, 256), (256 + 256, 512), (512 + 512, 1024)]
FUSION = sum(conv_bn(a, b) + conv_bn(b, b) for a, b in FUSION_IO)
AUX = sum(2 * conv_bn(c, c) for c in (64, 128, 256))        # interaction-loss double convs, levels 3-5
HEADS = head(1024) + head(512) + head(256) + head(256) + head(128) + head(64)
FIL_TRAINABLE = 2 * TOWER + INTERACTION + FUSION + AUX + HEADS
BN_CHANNELS = 2 * (2 * 32 + sum(4 * b for b in LEVELS[1:])) + 4 * sum(LEVELS) \
    + 2 * sum(b for _, b in FUSION_IO) + 2 * (64 + 128 + 256)
# Keras' model.summary() total also counts each BN layer's moving mean and variance
FIL_KERAS_TOTAL = FIL_TRAINABLE + 2 * BN_CHANNELS


def test_expected_counts_spelled_out():
    assert TOWER == 2_022_496
    assert (FIL_TRAINABLE, BN_CHANNELS, FIL_KERAS_TOTAL) == (33_046_982, 10_880, 33_068_742)
    # the published 33.07 M is Keras' total (trainable + BN moving statistics): 33,068,742 -> 33.07 M;
    # the trainable count alone would round to 33.05 M (21,760 BN statistics below).
    assert round(FIL_KERAS_TOTAL / 1e6, 2) == PAPER_MILLIONS
    assert round(FIL_TRAINABLE / 1e6, 2) == 33.05


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("fil_net").eval()


def test_parameter_count_exact(model):
    assert count_parameters(model) == FIL_TRAINABLE
    assert count_parameters(model.tower_vis) == count_parameters(model.tower_other) == TOWER
    n_bn = sum(m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert n_bn == BN_CHANNELS
    buffers = sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))
    assert count_parameters(model) + buffers == FIL_KERAS_TOTAL


def test_tower_levels_and_separate_weights(model):
    assert model.tower_vis.stem[0][0].weight.data_ptr() != model.tower_other.stem[0][0].weight.data_ptr()
    with torch.no_grad():
        levels = model.tower_vis(torch.rand(2, 1, 64, 64))
    assert [tuple(f.shape) for f in levels] == [(2, 32, 64, 64), (2, 32, 32, 32), (2, 64, 16, 16),
                                                (2, 128, 8, 8), (2, 256, 4, 4)]


def test_keras_settings(model):
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(m.eps == 1e-3 and m.momentum == 0.01 for m in bns)
    assert all(m.negative_slope == 0.1 for m in model.modules() if isinstance(m, nn.LeakyReLU))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.bias is not None and m.padding == (m.kernel_size[0] // 2,) * 2 for m in convs)


def test_feature_interaction_formula():
    torch.manual_seed(2)
    block = fil_net.FeatureInteraction(8).eval()
    fv, fo = torch.randn(2, 8, 5, 5), torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        r_vis, r_other, p_vis, p_other = block(fv, fo)
        a_vis, a_other = block.feat_vis(fv), block.feat_other(fo)
        g_vis, g_other = torch.sigmoid(block.gate_vis(fv)), torch.sigmoid(block.gate_other(fo))
    assert torch.allclose(p_vis, a_vis * g_other) and torch.allclose(p_other, a_other * g_vis)
    assert torch.allclose(r_vis, (a_vis * g_other - a_vis).abs())
    assert torch.allclose(r_other, (a_other * g_vis - a_other).abs())


def test_head_order_and_inputs(model):
    """Keras output order: fusion 5, 4, 3, then interaction 5, 4, 3 (p_vis + p_other)."""
    vis, other = pair(1)
    with torch.no_grad():
        fused, inter = model.level_features(vis, other)
        heads = model.head_logits(vis, other)
        assert [tuple(f.shape[1:]) for f in fused] == [(64, 64, 64), (128, 32, 32), (256, 16, 16),
                                                       (512, 8, 8), (1024, 4, 4)]
        assert torch.allclose(heads[1], model.fusion_heads[1](fused[3]).squeeze(1))
        assert torch.allclose(heads[2], model.fusion_heads[2](fused[2]).squeeze(1))
        _, _, p_vis, p_other = inter[2]   # level 3, 64 channels
        assert torch.allclose(heads[5], model.aux_heads[2](model.aux_convs[2](p_vis + p_other)).squeeze(1))
