"""SPIMNet (Information Fusion 2023): exact parameter counts, layer layout, translations.

The full network has ~131 M parameters and ~15 GFLOP per pair, so these tests build it on the meta
device (the translation test with real translators only). The contract shared
with the other cross-spectral models (registration, outputs, input checks, batch independence,
gradients, including the exactly-zero gradient of the translators' bottleneck) is in
test_cross_spectral_contract.py; the Keras layers ('same' padding, InstanceNorm, initialisers) in
test_keras_layers.py.
"""

import pytest
import torch
import torch.nn as nn

import kglnet.models.spimnet as spimnet  # noqa: F401  (registers "spimnet")
from kglnet.models import count_parameters, create_model
from kglnet.models.keras_layers import KerasConv2d, KerasInstanceNorm
from model_counts import linear, pair


def conv(c_in, c_out, k, bias=False):
    return c_in * c_out * k * k + (c_out if bias else 0)


def norms(c):
    """BatchNorm (gamma, beta) + InstanceNorm (gamma, beta): 4 trainable values per channel."""
    return 4 * c


def translator(c_in, c_out):
    enc = [(c_in, 64), (64, 128), (128, 256), (256, 256), (256, 256), (256, 256)]
    total = conv(c_in, 64, 4)                                   # first down block: no normalisation
    total += sum(conv(a, b, 4) + norms(b) for a, b in enc[1:])
    dec = [(256, 256), (512, 256), (512, 256), (512, 128), (256, 64)]
    total += sum(conv(a, b, 4) + norms(b) for a, b in dec)      # transposed convs, same count
    return total + conv(128, c_out, 4, bias=True)               # last transposed conv, with bias


def domain(c_in):
    layers = [(c_in, 32, 3), (32, 64, 3), (64, 128, 3), (128, 128, 5), (128, 256, 3), (256, 256, 5),
              (256, 256, 3), (256, 256, 5)]
    return sum(conv(a, b, k) + norms(b) for a, b, k in layers)


HEAD = linear(98_304, 1024) + linear(1024, 128) + linear(128, 1)


def spimnet_count(vis_channels):
    return translator(vis_channels, 1) + translator(1, vis_channels) + domain(1) + domain(vis_channels) + HEAD


def bn_running_stats(vis_channels):
    """Keras counts BatchNorm's moving mean / variance as (non-trainable) parameters."""
    enc_dec = 2 * (128 + 3 * 256 + 256 + 3 * 256 + 128 + 64) * 2     # two translators, mean + var
    dom = 2 * (32 + 64 + 128 + 128 + 256 * 4) * 2                    # two domain matchers
    return enc_dec + dom


def test_counts_spelled_out():
    assert spimnet_count(3) == 130_872_965
    assert spimnet_count(3) + bn_running_stats(3) == 130_886_917   # the notebook's Keras total
    assert round((spimnet_count(3) + bn_running_stats(3)) / 1e6, 2) == 130.89   # KGL-Net's table
    assert spimnet_count(1) == 130_866_243


@pytest.fixture(scope="module")
def meta_model():
    with torch.device("meta"):
        return create_model("spimnet")


def test_parameter_count_exact(meta_model):
    assert count_parameters(meta_model) == spimnet_count(3)
    running = sum(b.numel() for n, b in meta_model.named_buffers() if n.endswith(("running_mean", "running_var")))
    assert running == bn_running_stats(3)
    with torch.device("meta"):
        assert count_parameters(spimnet.SPIMNet(vis_channels=1)) == spimnet_count(1)
    with pytest.raises(ValueError, match="vis_channels"):
        spimnet.SPIMNet(vis_channels=2)


def test_block_counts_match_the_notebook_summary(meta_model):
    """Per-layer counts printed by the notebook's ``similaritor.summary()`` (Keras counts include
    BatchNorm's 2 moving statistics per channel: + 2c)."""
    def keras(module):
        bn = sum(m.num_features for m in module.modules() if isinstance(m, nn.BatchNorm2d))
        return sum(p.numel() for p in module.parameters()) + 2 * bn

    t = meta_model.vis_to_other
    assert [keras(b) for b in t.down] == [3072, 131_840, 525_824, 1_050_112, 1_050_112, 1_050_112]
    assert [keras(b) for b in t.up] == [1_050_112, 2_098_688, 2_098_688, 1_049_344, 262_528]
    assert keras(t.last) == 2049 and keras(meta_model.other_to_vis.last) == 6147
    assert keras(meta_model.other_to_vis.down[0]) == 1024
    assert [keras(b) for b in meta_model.other_domain.features[:8]] == [
        480, 18_816, 74_496, 410_368, 296_448, 1_639_936, 591_360, 1_639_936]
    assert keras(meta_model.vis_domain.features[0]) == 1056
    assert [keras(m) for m in meta_model.head] == [100_664_320, 131_200, 129]
    # the dense head has no activation between its layers (Keras Dense default)
    assert all(isinstance(m, nn.Linear) for m in meta_model.head)


def test_layer_types(meta_model):
    """TF 'same' convolutions without bias, each followed by BatchNorm, then tfa InstanceNorm, then ReLU
    (the first encoder block: ReLU only); the decoder's transposed convolutions 4x4 / 2 double the size."""
    blocks = list(meta_model.vis_to_other.down[1:]) + list(meta_model.vis_domain.features[:8])
    for block in blocks:
        assert [type(m) for m in block] == [KerasConv2d, nn.BatchNorm2d, KerasInstanceNorm, nn.ReLU]
        assert block[0].bias is None
    assert [type(m) for m in meta_model.vis_to_other.down[0]] == [KerasConv2d, nn.ReLU]
    strided = [b[0] for b in meta_model.vis_domain.features[:8] if b[0].stride == (2, 2)]
    assert [c.kernel_size for c in strided] == [(5, 5)] * 3 and all(c.dynamic_padding for c in strided)
    up = spimnet.up_block(4, 2)[0]
    assert isinstance(up, nn.ConvTranspose2d) and up(torch.randn(1, 4, 8, 8)).shape == (1, 2, 16, 16)


# ------------------------------------------------------------------------ real forward passes --

@pytest.fixture(scope="module")
def model():
    """SPIMNet with real translators and every other layer on the meta device: ``translations`` and
    the L1 term use only the translators (the whole network runs in test_cross_spectral_contract.py)."""
    with torch.device("meta"):
        model = create_model("spimnet")
    torch.manual_seed(0)
    model.vis_to_other, model.other_to_vis = spimnet.Translator(3, 1), spimnet.Translator(1, 3)
    return model.eval()


def test_translations_and_l1_term(model):
    vis, other = pair(2, seed=1)
    with torch.no_grad():
        t = model.translations(vis, other)
        loss = spimnet.translation_l1_loss(model, vis, other)
    assert t["vis"].shape == t["vis_from_other"].shape == (2, 3, 64, 64)
    assert t["other"].shape == t["other_from_vis"].shape == (2, 1, 64, 64)
    assert torch.allclose(t["vis"], (2 * vis - 1).expand(-1, 3, -1, -1))
    assert t["vis_from_other"].abs().max() <= 1 and t["other_from_vis"].abs().max() <= 1   # tanh
    expected = 0.1 * ((t["vis"] - t["vis_from_other"]).abs().mean() + (t["other"] - t["other_from_vis"]).abs().mean())
    assert torch.allclose(loss, expected)


def test_l1_term_checks_its_inputs(meta_model):
    with pytest.raises(ValueError, match="expected shape"):
        spimnet.translation_l1_loss(meta_model, torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32))
