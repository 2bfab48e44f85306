"""EFR-Net (Yu et al., TGRS 2023): exact parameter count, towers, axis attention, relation branches, Keras settings.

The contract shared with the other cross-spectral models (registration, outputs and head count,
input checks, batch independence, gradients) is in test_cross_spectral_contract.py.
"""

import math

import pytest
import torch
import torch.nn as nn

import kglnet.models.efr_net as efr_net  # noqa: F401  (registers "efr_net")
from kglnet.models import count_parameters, create_model
from model_counts import bn, linear, pair
from model_counts import conv as conv2d

PAPER_MILLIONS = 9.17  # published parameter count of EFR-Net


def conv1d(k):
    return k + 1  # 1 -> 1 channel, bias


# imp_eca kernels (int((log2 n + 1) / 2), made odd) after each pool: (k_h, k_w, k_c)
ECA_KERNELS = [(3, 3, 3), (3, 3, 3), (3, 3, 5), (1, 1, 5)]
# one tower: per stage (conv3x3-BN) x 2 + axis attention
TOWER = sum(conv2d(a, b) + bn(b) + conv2d(b, b) + bn(b) + sum(conv1d(k) for k in ks)
            for (a, b), ks in zip([(1, 32), (32, 64), (64, 128), (128, 256)], ECA_KERNELS))
RELATION = 2 * (conv2d(256, 256) + bn(256)) + conv2d(512, 512) + bn(512)


def head(c):
    return linear(c, 512) + linear(512, 256) + linear(256, 1)


EFR_TRAINABLE = 4 * TOWER + RELATION + head(512) + 2 * head(256)
# BatchNorm channels: 2 x (32 + 64 + 128 + 256) per tower, 256 + 256 + 512 after the towers
BN_CHANNELS = 4 * 2 * (32 + 64 + 128 + 256) + 256 + 256 + 512
# Keras' model.summary() total also counts each BN layer's moving mean and variance
EFR_KERAS_TOTAL = EFR_TRAINABLE + 2 * BN_CHANNELS


def test_expected_counts_spelled_out():
    assert TOWER == 1_173_648
    assert (EFR_TRAINABLE, BN_CHANNELS, EFR_KERAS_TOTAL) == (9_157_187, 4_864, 9_166_915)
    # the published 9.17 M is Keras' total (trainable + BN moving statistics): 9,166,915 -> 9.17 M;
    # the trainable count alone would round to 9.16 M (9,728 BN statistics below).
    assert round(EFR_KERAS_TOTAL / 1e6, 2) == PAPER_MILLIONS
    assert round(EFR_TRAINABLE / 1e6, 2) == 9.16


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("efr_net").eval()


def test_parameter_count_exact(model):
    assert count_parameters(model) == EFR_TRAINABLE
    n_bn = sum(m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert n_bn == BN_CHANNELS
    buffers = sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))
    assert count_parameters(model) + buffers == EFR_KERAS_TOTAL


def test_four_separate_towers(model):
    towers = [model.tower_vis_diff, model.tower_other_diff, model.tower_vis_prod, model.tower_other_prod]
    ptrs = {t[0][0].weight.data_ptr() for t in towers}
    assert len(ptrs) == 4
    assert all(count_parameters(t) == TOWER for t in towers)
    with torch.no_grad():
        assert towers[0](torch.rand(2, 1, 64, 64)).shape == (2, 256, 4, 4)


def test_keras_settings(model):
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(m.eps == 1e-3 and m.momentum == 0.01 for m in bns)
    acts = [m for m in model.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == len(bns) and all(m.negative_slope == 0.1 for m in acts)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.bias is not None and m.padding == (m.kernel_size[0] // 2,) * 2 for m in convs)


def test_axis_eca_kernels_and_formula():
    assert [efr_net.axis_eca_kernel_size(n) for n in (32, 16, 8, 4)] == [3, 3, 3, 1]
    assert [efr_net.axis_eca_kernel_size(n) for n in (32, 64, 128, 256)] == [3, 3, 5, 5]
    torch.manual_seed(1)
    att = efr_net.AxisECA(8, 6, 5)
    x = torch.rand(2, 8, 6, 5)
    with torch.no_grad():
        w_h = torch.sigmoid(att.conv_h(x.mean(dim=(1, 3))[:, None]))[:, 0]
        w_w = torch.sigmoid(att.conv_w(x.mean(dim=(1, 2))[:, None]))[:, 0]
        w_c = torch.sigmoid(att.conv_c(x.mean(dim=(2, 3))[:, None]))[:, 0]
        expected = torch.einsum("bchw,bh,bw,bc->bchw", x, w_h, w_w, w_c)
        assert torch.allclose(att(x), expected, atol=1e-6)


def test_relation_branches(model):
    """diff branch sees |f_vis - f_other|, prod branch f_vis * f_other, fusion their concatenation."""
    vis, other = pair(2)
    with torch.no_grad():
        fused, diff, prod = model.relation_features(vis, other)
        d = model.diff_conv((model.tower_vis_diff(vis) - model.tower_other_diff(other)).abs())
        p = model.prod_conv(model.tower_vis_prod(vis) * model.tower_other_prod(other))
    assert torch.allclose(diff, d) and torch.allclose(prod, p)
    assert fused.shape == (2, 512, 4, 4)
    with torch.no_grad():
        assert torch.allclose(fused, model.fuse_conv(torch.cat([d, p], dim=1)))


def test_keras_init(model):
    m = model   # never trained: its weights are the initial ones
    w = m.tower_vis_diff[9][0].weight  # conv3x3 128 -> 128, he_normal
    assert torch.allclose(w.std(), torch.tensor(math.sqrt(2 / (128 * 9))), rtol=0.05)
    assert w.abs().max() <= 2 * math.sqrt(2 / (128 * 9)) / 0.87962566103423978 + 1e-6
    lin = m.head_fused[2]  # Dense 512 -> 512, glorot_uniform
    assert lin.weight.abs().max() <= math.sqrt(6 / (512 + 512)) + 1e-6
    eca = m.tower_vis_diff[11].conv_c  # attention Conv1d, kernel 5: glorot_uniform (Keras' default)
    assert eca.weight.abs().max() <= math.sqrt(6 / (5 + 5)) + 1e-6
    biases = [mod.bias for mod in m.modules() if isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    assert all(torch.count_nonzero(b) == 0 for b in biases)
