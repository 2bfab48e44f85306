"""SCFDM (Quan et al., ACCV 2018): exact parameter count, the side-by-side input, both heads, Keras settings.

The contract shared with the other cross-spectral models (registration, outputs, input checks,
batch independence, gradients) is in test_cross_spectral_contract.py; the Keras layers in
test_keras_layers.py.
"""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

import kglnet.models.scfdm as scfdm  # noqa: F401  (registers "scfdm")
from kglnet.models import count_parameters, create_model
from model_counts import bn, conv, linear, pair


# Trunk on the side-by-side [1,64,128] image: C64, C128, C256, C256, C256, C256 (each + BatchNorm).
TRUNK = sum(conv(a, b) + bn(b) for a, b in [(1, 64), (64, 128), (128, 256), (256, 256), (256, 256), (256, 256)])
# Difference head on |left - right| (256x4x4): Dense 1024, Dense 128, Dense 2; the similarity head
# (max-pool + cosine) has no parameters.
HEAD = linear(256 * 4 * 4, 1024) + linear(1024, 128) + linear(128, 2)
SCFDM_PARAMS = TRUNK + HEAD


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("scfdm").eval()


def test_parameter_count_exact(model):
    # no published count (the paper gives none); the arithmetic above, as a number
    assert TRUNK == 2_139_904 + 2_432
    assert HEAD == 4_326_786
    assert SCFDM_PARAMS == 6_469_122
    assert count_parameters(model) == SCFDM_PARAMS
    assert "6,469,122" in type(model).__doc__


def test_spatially_connected_input(model):
    """One shared trunk sees the pair side by side (VIS left): [B,1,64,128] -> [B,256,4,8]."""
    seen = []
    hook = model.trunk.register_forward_hook(lambda _m, args, out: seen.append((args[0].clone(), out.shape)))
    vis, other = pair(2)
    try:
        with torch.no_grad():
            model.logits(vis, other)
    finally:
        hook.remove()
    x, out_shape = seen[0]
    assert x.shape == (2, 1, 64, 128) and out_shape == (2, 256, 4, 8)
    assert torch.equal(x[..., :64], vis) and torch.equal(x[..., 64:], other)


def test_heads_match_their_definitions(model):
    """Head 0: softmax match probability of the difference head; head 1: (cos + 1) / 2."""
    vis, other = pair(3)
    with torch.no_grad():
        f = model.trunk(torch.cat([vis, other], dim=3))
        left, right = f[..., :4], f[..., 4:]
        z = model.difference_head((left - right).abs())
        cos = F.cosine_similarity(left.amax(dim=(2, 3)), right.amax(dim=(2, 3)), dim=1)
        heads = model.head_logits(vis, other)
    assert torch.allclose(torch.sigmoid(heads[0]), torch.softmax(z, dim=1)[:, 1], atol=1e-6)
    assert torch.allclose(torch.sigmoid(heads[1]), (cos + 1) / 2, atol=1e-5)


def test_keras_settings(model):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert m.eps == 1e-3 and m.momentum == 0.01
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            assert m.bias is not None
    # he_normal: truncated at 2 sd, sd = sqrt(2 / fan_in) / 0.8796; zero biases at init (the
    # fixture is never trained, so its weights are the initial ones)
    first = model.trunk[0][0]
    sd = math.sqrt(2.0 / 9) / 0.87962566103423978
    assert first.weight.abs().max() <= 2 * sd + 1e-6
    assert torch.count_nonzero(first.bias) == 0
    assert torch.count_nonzero(model.difference_head[1].bias) == 0


def test_single_pair_runs_in_training_mode(model):
    """BatchNorm has spatial values to average even for one pair."""
    trained = copy.deepcopy(model).train()
    with torch.no_grad():
        heads = trained.head_logits(*pair(1))
    assert len(heads) == 2 and all(torch.isfinite(h).all() for h in heads)
