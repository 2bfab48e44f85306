"""MFD-Net (Quan et al., TGRS 2022): exact parameter counts, variants, shapes, heads, Keras settings.

The eight-branch model (151 M parameters, ~0.6 GB) is built once, in a module-scoped fixture;
the parameter counts of all variants (and of the 12-branch network the paper's largest count
corresponds to) are also checked on the meta device, which allocates nothing. The contract
shared with the other cross-spectral models (registration, outputs, input checks, batch
independence, gradients) is in test_cross_spectral_contract.py, for mfd_net2 and mfd_net4.
"""

import math

import pytest
import torch
import torch.nn as nn

import kglnet.models.mfd_net as mfd_net  # noqa: F401  (registers mfd_net2 / 4 / 6 / 8)
from kglnet.models import count_parameters, create_model, list_models
from model_counts import bn, linear, pair
from model_counts import conv as conv2d

NAMES = {2: "mfd_net2", 4: "mfd_net4", 6: "mfd_net6", 8: "mfd_net8"}
PAPER_SMALLEST_MILLIONS = 34.71   # published parameter counts (Keras model.summary() totals)
PAPER_LARGEST_MILLIONS = 221.17


def head(n_in):
    widths = [n_in, 2048, 1024, 512, 512, 128, 128, 64, 1]
    return sum(linear(a, b) for a, b in zip(widths, widths[1:]))


# one branch: conv3x3 1-32-64-128-256-512, each with BN
TOWER_WIDTHS = [1, 32, 64, 128, 256, 512]
TOWER = sum(conv2d(a, b, 3) + bn(b) for a, b in zip(TOWER_WIDTHS, TOWER_WIDTHS[1:]))
TOWER_BN = sum(TOWER_WIDTHS[1:])
# difference stream stages: 1x1 convs 32, 96 (=64+32), 160 (=64+96), 288 (=128+160), 544 (=256+288),
# then conv3x3 1056 (=512+544), each with BN; both towers of the stream included
STREAM_WIDTHS = [32, 96, 160, 288, 544, 1056]
STREAM = 2 * TOWER + sum(conv2d(c, c, 3 if c == 1056 else 1) + bn(c) for c in STREAM_WIDTHS)
STREAM_BN = 2 * TOWER_BN + sum(STREAM_WIDTHS)
STREAM_HEAD = head(1056 * 2 * 2)  # max-pooled 1056 x 2 x 2


def fusion(n):
    """conv3x3 (1056 n -> 1024) + BN, max-pool, head on 1024 x 2 x 2."""
    return conv2d(1056 * n, 1024, 3) + bn(1024) + head(1024 * 2 * 2)


def trainable(branches):
    n = branches // 2
    return n * STREAM + (n * STREAM_HEAD if n >= 2 else 0) + fusion(n)


def bn_channels(branches):
    return branches // 2 * STREAM_BN + 1024


def keras_total(branches):
    return trainable(branches) + 2 * bn_channels(branches)


def test_expected_counts_spelled_out():
    assert TOWER == 1_569_984 and STREAM_HEAD == 11_628_929 and head(4096) == 11_366_785
    assert [trainable(b) for b in (2, 4, 6, 8)] == [34_699_393, 81_286_787, 116_245_252, 151_203_717]
    assert [keras_total(b) for b in (2, 4, 6, 8)] == [34_709_761, 81_305_475, 116_272_260, 151_239_045]
    # the paper's smallest count is the two-branch model (Keras total, BN moving statistics
    # included): 34,709,761 -> 34.71 M; trainable only it would read 34.70 M
    assert round(keras_total(2) / 1e6, 2) == PAPER_SMALLEST_MILLIONS
    assert round(trainable(2) / 1e6, 2) == 34.70
    # the paper's largest count is NOT the eight-branch model of the public code (151.24 M,
    # 69.93 M fewer) but this family at twelve branches (six difference streams)
    assert round(keras_total(8) / 1e6, 2) == 151.24
    assert round(PAPER_LARGEST_MILLIONS - keras_total(8) / 1e6, 2) == 69.93
    assert keras_total(12) == 221_172_615 and round(keras_total(12) / 1e6, 2) == PAPER_LARGEST_MILLIONS


@pytest.mark.parametrize("branches", [2, 4, 6, 8, 12])
def test_parameter_count_exact_on_meta_device(branches):
    """Layer-by-layer counts of every variant, without allocating any weight."""
    with torch.device("meta"):
        model = create_model(NAMES[branches]) if branches in NAMES else mfd_net.MFDNet(branches)
    assert count_parameters(model) == trainable(branches)
    n_bn = sum(m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert n_bn == bn_channels(branches)
    stats = sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))
    assert count_parameters(model) + stats == keras_total(branches)
    assert model.num_heads == (1 if branches == 2 else branches // 2 + 1)
    assert len(model.streams) == branches // 2


@pytest.fixture(scope="module")
def model8():
    torch.manual_seed(0)
    return create_model("mfd_net8").eval()


@pytest.fixture(scope="module")
def model2():
    torch.manual_seed(0)
    return create_model("mfd_net2").eval()


def test_registered_variants(model8, model2):
    assert set(NAMES.values()) <= set(list_models())
    for model, branches in [(model8, 8), (model2, 2)]:
        assert type(model) is mfd_net.MFDNet and model.branches == branches
        assert model.model_name == NAMES[branches]


def test_real_parameter_count(model8):
    assert count_parameters(model8) == trainable(8) == 151_203_717


@pytest.mark.parametrize("branches", [0, 1, 3, 7, -2, 2.0, True])
def test_bad_branch_count_raises(branches):
    with pytest.raises(ValueError, match="branches"):
        mfd_net.MFDNet(branches)


def test_towers_are_separate(model8):
    towers = [t for s in model8.streams for t in (s.tower_vis, s.tower_other)]
    assert len(towers) == 8
    assert len({t.layers[0].conv.weight.data_ptr() for t in towers}) == 8
    assert all(count_parameters(t) == TOWER for t in towers)
    assert all(s.head is not None for s in model8.streams)
    assert model8.fusion[0].conv.in_channels == 4 * 1056 and model8.fusion[0].conv.out_channels == 1024


def test_keras_settings(model2):
    bns = [m for m in model2.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(m.eps == 1e-3 and m.momentum == 0.01 for m in bns)
    convs = [m for m in model2.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.bias is not None and m.padding == (m.kernel_size[0] // 2,) * 2 for m in convs)
    assert sorted({m.kernel_size[0] for m in model2.streams[0].stages.modules() if isinstance(m, nn.Conv2d)}) == [1, 3]


def test_keras_init(model2):
    w = model2.streams[0].stages[5].conv.weight          # conv3x3 1056 -> 1056, he_normal
    std = math.sqrt(2 / (1056 * 9))
    assert torch.allclose(w.std(), torch.tensor(std), rtol=0.02)
    assert w.abs().max() <= 2 * std / 0.87962566103423978 + 1e-7
    lin = model2.fusion_head[1]                           # Dense 4096 -> 2048, glorot_uniform
    assert lin.in_features == 4096 and lin.weight.abs().max() <= math.sqrt(6 / (4096 + 2048)) + 1e-7
    biases = [m.bias for m in model2.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert all(torch.count_nonzero(b) == 0 for b in biases)


def test_eight_branch_outputs_and_batch_independence(model8):
    """Five heads for B = 3; in eval mode the first sample alone (B = 1) gets the same reported
    probability as inside the batch."""
    vis, other = pair(3)
    with torch.no_grad():
        heads = model8.head_logits(vis, other)
        desc_vis, desc_other, prob = model8(vis[:1], other[:1])
    assert len(heads) == model8.num_heads == 5
    assert all(h.shape == (3,) and torch.isfinite(h).all() for h in heads)
    assert desc_vis is None and desc_other is None
    assert prob.shape == (1,) and 0 <= prob.item() <= 1
    assert torch.allclose(prob, torch.sigmoid(heads[0][:1]), atol=1e-5)  # the fusion head is reported


def test_two_branch_model_has_one_head(model2):
    vis, other = pair(2)
    with torch.no_grad():
        heads = model2.head_logits(vis, other)
        logits = model2.logits(vis, other)
    assert model2.num_heads == 1 and model2.streams[0].head is None
    assert len(heads) == 1 and torch.allclose(heads[0], logits)


def test_difference_stream_taps(model2):
    """Stage 0 sees |raw conv1 difference|, stage 1 [|raw conv2 difference|, stage 0], stage 2 the
    pool1 difference first; the stream ends at [B,1056,4,4]."""
    stream = model2.streams[0]
    seen = {}
    hooks = [stage.register_forward_pre_hook(lambda _m, args, k=k: seen.__setitem__(k, args[0]))
             for k, stage in enumerate(stream.stages)]
    vis, other = pair(2)
    try:
        with torch.no_grad():
            out = stream(vis, other)
            taps_v, taps_o = stream.tower_vis(vis), stream.tower_other(other)
            raw1 = stream.tower_vis.layers[0].conv(vis) - stream.tower_other.layers[0].conv(other)
    finally:
        for h in hooks:
            h.remove()
    assert [tuple(t.shape[1:]) for t in taps_v] == [(32, 64, 64), (64, 64, 64), (64, 32, 32), (128, 16, 16),
                                                    (256, 8, 8), (512, 4, 4)]
    assert torch.allclose(seen[0], raw1.abs(), atol=1e-5)
    assert torch.allclose(seen[1][:, :64], (taps_v[1] - taps_o[1]).abs(), atol=1e-5)
    assert [tuple(seen[k].shape[1:]) for k in range(6)] == [(32, 64, 64), (96, 64, 64), (160, 32, 32),
                                                            (288, 16, 16), (544, 8, 8), (1056, 4, 4)]
    assert torch.allclose(seen[2][:, :64], (taps_v[2] - taps_o[2]).abs(), atol=1e-5)
    assert out.shape == (2, 1056, 4, 4)
