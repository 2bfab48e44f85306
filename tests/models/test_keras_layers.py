"""Keras conventions shared by the cross-spectral baselines (kglnet.models.keras_layers).

Padding, normalisation layers, initialisers and output conversions, each checked once against
the Keras / TensorFlow formula; the models' own tests check which of them each model uses.
"""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from kglnet.models import keras_layers as kl


def tf_same_pads(size, k, s):
    """TensorFlow's 'same' padding of one axis: (before, after), the odd pixel after."""
    total = max((math.ceil(size / s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize("size,k,s,pads", [
    (64, 3, 1, (1, 1)), (64, 3, 2, (0, 1)), (7, 3, 2, (1, 1)), (8, 3, 1, (1, 1)),   # SCFDM / AFD-Net
    (64, 5, 2, (1, 2)), (64, 4, 2, (1, 1)), (64, 1, 1, (0, 0)), (9, 4, 1, (1, 2)),   # SPIMNet, 1x1, even
])
def test_keras_conv_same_padding(size, k, s, pads):
    """TF 'same': output ceil(size / stride); the odd padding row / column goes bottom / right."""
    assert tf_same_pads(size, k, s) == pads
    torch.manual_seed(1)
    layer = kl.KerasConv2d(2, 3, k, stride=s)
    x = torch.randn(2, 2, size, size)
    expected = F.conv2d(F.pad(x, pads + pads), layer.weight, layer.bias, stride=s)
    got = layer(x)
    assert got.shape == (2, 3, math.ceil(size / s), math.ceil(size / s))
    assert torch.allclose(got, expected, atol=1e-6)
    # stride 1 with an odd kernel: the split is symmetric for every size, PyTorch pads it itself
    static = s == 1 and k % 2 == 1
    assert layer.dynamic_padding is not static
    assert layer.padding == ((k // 2, k // 2) if static else (0, 0))


def test_keras_conv_bias_switch():
    assert kl.KerasConv2d(3, 4, 5, stride=2, bias=False).bias is None
    assert kl.KerasConv2d(3, 4).bias is not None


def test_batch_norm_and_conv_blocks():
    bn = kl.keras_batch_norm(7)
    assert bn.eps == 1e-3 and bn.momentum == 0.01 and bn.num_features == 7
    plain = kl.conv_bn(4, 8, 1)
    assert [type(m) for m in plain] == [kl.KerasConv2d, nn.BatchNorm2d] and plain[0].kernel_size == (1, 1)
    relu = kl.conv_bn_relu(4, 8, 2)
    assert [type(m) for m in relu] == [kl.KerasConv2d, nn.BatchNorm2d, nn.ReLU]
    assert relu[0].kernel_size == (3, 3) and relu[0].stride == (2, 2)
    lrelu = kl.conv_bn_lrelu(4, 8, 3)
    assert type(lrelu[2]) is nn.LeakyReLU and lrelu[2].negative_slope == 0.1
    assert relu(torch.rand(2, 4, 9, 9)).shape == (2, 8, 5, 5)


def test_dense_head_layout():
    head = kl.dense_head(12, (6, 5), outputs=2, pool=nn.AdaptiveAvgPool2d(1))
    assert [type(m) for m in head] == [nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear, nn.ReLU, nn.Linear, nn.ReLU,
                                       nn.Linear]
    assert [(m.in_features, m.out_features) for m in head if isinstance(m, nn.Linear)] == [(12, 6), (6, 5), (5, 2)]
    assert head(torch.rand(3, 12, 4, 4)).shape == (3, 2)
    bare = kl.dense_head(8, ())
    assert [type(m) for m in bare] == [nn.Flatten, nn.Linear] and bare(torch.rand(3, 8)).shape == (3, 1)


@pytest.mark.parametrize("sampler", kl.SAMPLERS)
def test_truncated_normal(sampler):
    torch.manual_seed(0)
    w = kl.truncated_normal_(torch.empty(200_000), 0.5, sampler)
    assert w.abs().max() <= 1.0
    # a normal cut at 2 std has std 0.87962566... x the nominal one
    assert abs(w.std().item() - 0.5 * kl.TRUNCATED_NORMAL_STD) < 0.005
    assert abs(w.mean().item()) < 0.005
    meta = torch.empty(10, device="meta")
    assert kl.truncated_normal_(meta, 1.0, sampler) is meta


def test_truncated_normal_unknown_sampler():
    with pytest.raises(ValueError, match="sampler"):
        kl.truncated_normal_(torch.empty(3), 1.0, "box_muller")


@pytest.mark.parametrize("sampler", kl.SAMPLERS)
def test_keras_init_fan_in(sampler):
    """he_normal for convolutions (Keras' fan-in of a transposed conv: kernel area x its filters),
    glorot_uniform for dense layers and 1-D convolutions, zero biases, BatchNorm gamma 1 / beta 0."""
    torch.manual_seed(0)
    convt = nn.ConvTranspose2d(8, 64, 4)
    conv2 = nn.Conv2d(64, 8, 4)
    conv1 = nn.Conv1d(1, 1, 5)
    dense = nn.Linear(300, 200)
    bn = nn.BatchNorm2d(8)
    with torch.no_grad():
        bn.weight.fill_(3.0)
        bn.bias.fill_(2.0)
    kl.keras_init_(nn.Sequential(convt, conv2, conv1, dense, bn, nn.BatchNorm2d(8, affine=False)), sampler)
    for layer, fan_in in ((convt, 4 * 4 * 64), (conv2, 64 * 4 * 4)):
        std = (2.0 / fan_in) ** 0.5 / kl.TRUNCATED_NORMAL_STD
        assert layer.weight.abs().max() <= 2 * std + 1e-7 and torch.all(layer.bias == 0)
    assert abs(conv2.weight.std().item() - (2.0 / (64 * 16)) ** 0.5) < 0.05 * (2.0 / (64 * 16)) ** 0.5
    assert dense.weight.abs().max() <= (6 / 500) ** 0.5 and torch.all(dense.bias == 0)
    assert conv1.weight.abs().max() <= (6 / 10) ** 0.5 and torch.all(conv1.bias == 0)
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)


def test_global_instance_norm_matches_keras_formula():
    """keras-contrib InstanceNormalization(axis=None): per sample over (C, H, W), eps on the std."""
    norm = kl.GlobalInstanceNorm()
    with torch.no_grad():
        norm.gamma.fill_(1.5)
        norm.beta.fill_(-0.25)
    x = torch.randn(3, 4, 5, 5) * 3 + 2
    flat = x.flatten(1)
    mean = flat.mean(dim=1)[:, None, None, None]
    std = ((flat - flat.mean(dim=1, keepdim=True)) ** 2).mean(dim=1).sqrt()[:, None, None, None]
    expected = (x - mean) / (std + 1e-3) * 1.5 - 0.25
    assert torch.allclose(norm(x), expected, atol=1e-5)
    assert sum(p.numel() for p in norm.parameters()) == 2
    # per sample: scaling one sample does not change the others
    y = x.clone()
    y[0] *= 10
    assert torch.allclose(norm(y)[1:], norm(x)[1:])


def test_keras_instance_norm_is_tfas():
    """TensorFlow-Addons InstanceNormalization: PyTorch's InstanceNorm2d(affine, eps 1e-3), and beta on 1x1 maps."""
    torch.manual_seed(0)
    norm = kl.KerasInstanceNorm(5)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    reference = nn.InstanceNorm2d(5, affine=True, eps=1e-3)
    reference.load_state_dict(norm.state_dict())
    x = torch.randn(3, 5, 4, 4)
    assert torch.allclose(norm(x), reference(x), atol=1e-5)
    # a 1x1 map (SPIMNet's translators' bottleneck): the offset, whatever the input
    assert torch.allclose(norm(torch.randn(3, 5, 1, 1)), norm.bias[None, :, None, None].expand(3, 5, 1, 1))


def test_two_way_logit_is_the_softmax_match_probability():
    z = torch.randn(6, 2) * 4
    logit = kl.two_way_logit(z)
    assert logit.shape == (6,)
    assert torch.allclose(torch.sigmoid(logit), torch.softmax(z, dim=1)[:, 1], atol=1e-6)
    labels = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    assert torch.allclose(F.binary_cross_entropy_with_logits(logit, labels), F.cross_entropy(z, labels.long()),
                          atol=1e-6)


def test_probability_to_logit_clips_like_keras():
    p = torch.tensor([0.0, 1e-9, 0.25, 0.5, 0.9, 1.0])
    logit = kl.probability_to_logit(p)
    low = math.log(1e-7 / (1 - 1e-7))
    # in float32 (as in Keras) 1 - 1e-7 rounds to 1 - 2**-23, so the upper bound is 15.94, not 16.12
    hi = 1 - 2.0 ** -23
    high = math.log(hi / (1 - hi))
    assert torch.allclose(logit, torch.tensor([low, low, math.log(1 / 3), 0.0, math.log(9.0), high]), atol=1e-3)
    assert torch.isfinite(logit).all()


def test_keras_l2_normalize_zero_vector():
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    y = kl.keras_l2_normalize(x)
    assert torch.allclose(y, torch.tensor([[0.6, 0.8], [0.0, 0.0]]))
