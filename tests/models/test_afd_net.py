"""AFD-Net (Quan et al., ICCV 2019): exact parameter count, feature levels, both heads, Keras settings.

The contract shared with the other cross-spectral models (registration, outputs, input checks,
batch independence, gradients) is in test_cross_spectral_contract.py; the instance normalisation
and the other Keras layers in test_keras_layers.py.
"""

import copy

import pytest
import torch

import kglnet.models.afd_net as afd_net  # noqa: F401  (registers "afd_net")
from kglnet.models import count_parameters, create_model
from kglnet.models.keras_layers import GlobalInstanceNorm
from model_counts import bn, conv, conv_bn, linear, pair


IN = 2   # Keras InstanceNormalization(axis=None): one scalar gamma and one scalar beta
# One feature network: C32 | C32-s2, IN | C64, C64-s2, IN | C128, C128-s2 | C256, C256-s2.
FEATURE_NET = sum(conv_bn(a, b) for a, b in [(1, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128),
                                              (128, 256), (256, 256)]) + 2 * IN
# Aggregation: C32, C32-s2 on d1; C64, C64-s2 on [a1,d2]; C128 x2 on [a2,d3]; C256 x2 on [a3,d4];
# C512 on [a4,d5] (512 channels in).
AGGREGATION = sum(conv_bn(a, b) for a, b in [(32, 32), (32, 32), (64, 64), (64, 64), (128, 128), (128, 128),
                                              (256, 256), (256, 256), (512, 512)])
SINGLE_CONV = conv_bn(256, 512)
HEAD = linear(512, 512) + linear(512, 256) + linear(256, 2)
AFD_PARAMS = 2 * FEATURE_NET + AGGREGATION + SINGLE_CONV + 2 * HEAD


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("afd_net").eval()


def test_parameter_count_exact(model):
    # no published count (the paper gives none); the arithmetic above, as numbers
    assert FEATURE_NET == 1_171_680 + 1_920 + 4
    assert (AGGREGATION, SINGLE_CONV, HEAD) == (3_927_488 + 2_944, 1_180_160 + 1_024, 394_498)
    assert AFD_PARAMS == 8_247_820
    assert count_parameters(model) == AFD_PARAMS
    assert count_parameters(model.features_vis) == count_parameters(model.features_other) == FEATURE_NET
    assert "8,247,820" in type(model).__doc__


def test_feature_levels_and_differences(model):
    vis, other = pair(2)
    with torch.no_grad():
        f_vis = model.features_vis(vis)
        f_other = model.features_other(other)
        diffs = model.differences(vis, other)
    shapes = [(2, 32, 64, 64), (2, 32, 32, 32), (2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4)]
    assert [tuple(f.shape) for f in f_vis] == shapes
    for d, a, b in zip(diffs, f_vis, f_other):
        assert torch.allclose(d, (a - b).abs())


def test_feature_networks_are_separate(model):
    a = model.features_vis.levels[0][0].weight
    b = model.features_other.levels[0][0].weight
    assert a.data_ptr() != b.data_ptr() and not torch.equal(a, b)


def test_heads_are_softmax_match_probabilities(model):
    vis, other = pair(3)
    with torch.no_grad():
        d = model.differences(vis, other)
        x = model.aggregate[0](d[0])
        for stage, dk in zip(model.aggregate[1:], d[1:]):
            x = stage(torch.cat([x, dk], dim=1))
        z_agg = model.aggregated_head(x)
        z_single = model.single_head(model.single_conv(d[4]))
        heads = model.head_logits(vis, other)
    assert x.shape == (3, 512, 4, 4)
    assert torch.allclose(torch.sigmoid(heads[0]), torch.softmax(z_agg, dim=1)[:, 1], atol=1e-6)
    assert torch.allclose(torch.sigmoid(heads[1]), torch.softmax(z_single, dim=1)[:, 1], atol=1e-6)


def test_instance_norm_ends_levels_2_and_3(model):
    """Keras' InstanceNormalization (axis=None) then ReLU close levels 2 and 3 of each feature network."""
    for net in (model.features_vis, model.features_other):
        norms = [[type(m) for m in level].count(GlobalInstanceNorm) for level in net.levels[1:]]
        assert norms == [1, 1, 0, 0]
        assert isinstance(net.levels[1][-2], GlobalInstanceNorm) and isinstance(net.levels[2][-2], GlobalInstanceNorm)


def test_keras_settings(model):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert m.eps == 1e-3 and m.momentum == 0.01
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            assert m.bias is not None


def test_single_pair_runs_in_training_mode(model):
    """BatchNorm has spatial values to average even for one pair."""
    trained = copy.deepcopy(model).train()
    with torch.no_grad():
        heads = trained.head_logits(*pair(1))
    assert len(heads) == 2 and all(torch.isfinite(h).all() for h in heads)
