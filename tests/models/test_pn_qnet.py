"""PN-Net and Q-Net (kglnet.models.pn_qnet): exact parameter counts, TFeat's layers, preprocessing, objectives.

The contract shared with the other cross-spectral models (registration, outputs, input checks,
batch independence, gradients) is in test_cross_spectral_contract.py.
"""

import pytest
import torch

import kglnet.models.pn_qnet as pn_qnet  # noqa: F401  (registers "pnnet" and "qnet")
from kglnet.models import count_parameters, create_model
from kglnet.models.descriptors import TFeat
from kglnet.models.metric_nets import zero_mean_patches
from kglnet.objectives import OBJECTIVES
from model_counts import conv, linear, pair

NAMES = ["pnnet", "qnet"]


# conv 7x7 1->32, conv 6x6 32->64, Linear 64*8*8 -> D (all with bias; tanh / max-pool have none)
CONVS = conv(1, 32, 7) + conv(32, 64, 6)
PARAMS_256 = CONVS + linear(64 * 8 * 8, 256)
PARAMS_128 = CONVS + linear(64 * 8 * 8, 128)


def test_expected_counts_spelled_out():
    assert (conv(1, 32, 7), conv(32, 64, 6), linear(4096, 256)) == (1_600, 73_792, 1_048_832)
    assert (PARAMS_256, PARAMS_128) == (1_124_224, 599_808)   # neither paper publishes a count


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {name: create_model(name).eval() for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_descriptor_size_and_objective(models, name):
    assert models[name].descriptor_dim == 256
    assert models[name].objective == {"pnnet": "softpn", "qnet": "quadruplet"}[name]


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_exact(models, name):
    assert count_parameters(models[name]) == PARAMS_256
    assert count_parameters(create_model(name, descriptor_dim=128)) == PARAMS_128


def test_reuses_tfeat_layers():
    """The learned layers are TFeat's (same classes, shapes and parameter names); only the input
    normalisation (InstanceNorm -> per-patch mean subtraction) and the descriptor width differ."""
    tfeat = TFeat()
    narrow = pn_qnet.PNNet(descriptor_dim=128)
    assert isinstance(narrow, TFeat)
    assert {k: v.shape for k, v in narrow.state_dict().items()} == {k: v.shape for k, v in tfeat.state_dict().items()}
    assert count_parameters(narrow) == count_parameters(tfeat)
    assert isinstance(narrow.tower[0], torch.nn.Identity)
    assert [type(m) for m in narrow.tower][1:] == [type(m) for m in tfeat.tower][1:]
    wide = pn_qnet.QNet()
    assert wide.tower[7].in_features == 4096 and wide.tower[7].out_features == 256
    with pytest.raises(ValueError, match="positive"):
        pn_qnet.PNNet(descriptor_dim=0)


@pytest.mark.parametrize("name", NAMES)
def test_descriptors_are_normalised_tanh_outputs(models, name):
    vis, other = pair(3)
    with torch.no_grad():
        desc_vis, desc_other, _ = models[name](vis, other)
        raw_vis, raw_other = models[name].raw_descriptors(vis, other)
    assert raw_vis.shape == raw_other.shape == (3, 256)
    assert raw_vis.abs().max() < 1 and raw_other.abs().max() < 1   # tanh outputs
    assert torch.allclose(desc_vis, raw_vis / raw_vis.norm(dim=1, keepdim=True), atol=1e-6)
    assert torch.allclose(desc_other, raw_other / raw_other.norm(dim=1, keepdim=True), atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_siamese(models, name):
    vis, other = pair(2)
    with torch.no_grad():
        a_vis, a_other, _ = models[name](vis, other)
        b_vis, b_other, _ = models[name](other, vis)
    assert torch.equal(a_vis, b_other) and torch.equal(a_other, b_vis)


@pytest.mark.parametrize("name", NAMES)
def test_preprocessing_subtracts_patch_mean_only(models, name):
    model = models[name]
    vis, other = pair(2)
    with torch.no_grad():
        base, _ = model.raw_descriptors(vis, other)
        shifted, _ = model.raw_descriptors(vis * 0.5 + 0.3, other)   # brightness offset: removed
        scaled, _ = model.raw_descriptors(vis * 0.5, other)          # contrast: kept (no std division)
        centred = zero_mean_patches(pair(2)[0])
    assert torch.allclose(shifted, model.raw_descriptors(vis * 0.5, other)[0], atol=1e-5)
    assert not torch.allclose(base, scaled, atol=1e-3)
    assert torch.allclose(centred.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_tower_sees_32x32(models, name):
    model = models[name]
    seen = []
    hook = model.tower.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape[1:])))
    try:
        with torch.no_grad():
            model(*pair(2))
    finally:
        hook.remove()
    assert seen == [(1, 32, 32), (1, 32, 32)]   # one pass per spectrum


def test_default_init_is_torch7s():
    """PyTorch's default init of conv / linear = Torch7's: uniform in +-1/sqrt(fan_in), biases too."""
    torch.manual_seed(1)
    model = pn_qnet.QNet()
    for layer, fan_in in [(model.tower[1], 49), (model.tower[4], 32 * 36), (model.tower[7], 4096)]:
        bound = fan_in ** -0.5
        assert layer.weight.abs().max() <= bound and layer.bias.abs().max() <= bound
        assert layer.weight.abs().max() > 0.9 * bound


@pytest.mark.parametrize("name", NAMES)
def test_objective_range_and_reproducible(models, name):
    """Half the paper's SoftPN (2 s_pos^2 < 2 per example): in (0, 1); the same generator state gives
    the same value. (Its gradient reaching every parameter: test_cross_spectral_contract.py.)"""
    model = models[name]
    vis, other = pair(4, seed=5)
    with torch.no_grad():
        out = OBJECTIVES[model.objective](model, vis, other, generator=torch.Generator().manual_seed(2))
        again = OBJECTIVES[model.objective](model, vis, other, generator=torch.Generator().manual_seed(2))
    assert out["total"].dim() == 0 and 0 < out["total"].item() < 1
    assert torch.equal(out["total"], again["total"])
