"""Baseline models of the paper's tables: contract, shapes, exact parameter counts, input checks."""

import pytest
import torch
import torch.nn.functional as F

import kglnet.models.descriptors as descriptors  # noqa: F401  (registers the descriptor baselines)
import kglnet.models.metric_nets as metric_nets  # noqa: F401  (registers the metric baselines)
from kglnet.models import count_parameters, create_model, list_models
from kglnet.objectives import OBJECTIVES
from model_counts import conv, linear, pair

DESCRIPTOR_MODELS = ["l2net", "hardnet", "sosnet", "hynet", "tfeat"]
METRIC_MODELS = ["siamese", "pseudo_siamese", "two_channel", "matchnet"]
ALL = DESCRIPTOR_MODELS + METRIC_MODELS


# L2-Net tower: 6 conv3x3 + conv8x8, no bias, BatchNorm without affine parameters (0 parameters).
L2NET = conv(1, 32, 3, False) + conv(32, 32, 3, False) + conv(32, 64, 3, False) + conv(64, 64, 3, False) \
    + conv(64, 128, 3, False) + conv(128, 128, 3, False) + conv(128, 128, 8, False)
# HyNet: FRN(1)+TLU(1) = 3; each conv3x3 has bias and FRN (gamma, beta) + TLU (tau) = 3 per channel.
HYNET = 3 + sum(conv(a, b, 3) + 3 * b for a, b in [(1, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128)]) \
    + conv(128, 128, 8, False)
# TFeat: conv7x7 1->32, conv6x6 32->64, FC 64*8*8 -> 128.
TFEAT = conv(1, 32, 7) + conv(32, 64, 6) + linear(64 * 8 * 8, 128)
# Aguilera et al. tower: C(96,7,3) C(192,5,1) C(256,3,1).
TOWER_1CH = conv(1, 96, 7) + conv(96, 192, 5) + conv(192, 256, 3)
SIAMESE = TOWER_1CH + linear(512, 512) + linear(512, 1)
PSEUDO_SIAMESE = 2 * TOWER_1CH + linear(512, 512) + linear(512, 1)
TWO_CHANNEL = conv(2, 96, 7) + conv(96, 192, 5) + conv(192, 256, 3) + linear(256, 1)
# MatchNet: conv0..conv4, bottleneck 4096->256, FC1 512->1024, FC2 1024->1024, FC3 1024->2.
MATCHNET = conv(1, 24, 7) + conv(24, 64, 5) + conv(64, 96, 3) + conv(96, 96, 3) + conv(96, 64, 3) \
    + linear(64 * 8 * 8, 256) + linear(2 * 256, 1024) + linear(1024, 1024) + linear(1024, 2)

EXPECTED_PARAMETERS = {
    "l2net": L2NET, "hardnet": L2NET, "sosnet": L2NET, "hynet": HYNET, "tfeat": TFEAT,
    "siamese": SIAMESE, "pseudo_siamese": PSEUDO_SIAMESE, "two_channel": TWO_CHANNEL, "matchnet": MATCHNET,
}


def test_expected_counts_spelled_out():
    # the arithmetic above, as numbers (also quoted in the docstrings)
    assert (L2NET, HYNET, TFEAT) == (1_334_560, 1_336_355, 599_808)
    assert (SIAMESE, PSEUDO_SIAMESE, TWO_CHANNEL, MATCHNET) == (1_171_585, 2_080_001, 913_377, 2_859_250)


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {name: create_model(name).eval() for name in ALL}


def test_all_registered():
    assert set(ALL) <= set(list_models())


@pytest.mark.parametrize("name", ALL)
def test_class_attributes(models, name):
    model = models[name]
    assert model.objective in OBJECTIVES
    assert model.input_size in (32, 64)
    assert isinstance(model.paper, str) and len(model.paper) > 20
    assert model.reported_branch == ("descriptor" if name in DESCRIPTOR_MODELS else "metric")
    assert "choice" in type(model).__doc__ or name in ("siamese", "pseudo_siamese", "hardnet")


@pytest.mark.parametrize("name", ALL)
def test_parameter_count_exact(models, name):
    assert count_parameters(models[name]) == EXPECTED_PARAMETERS[name]


def test_matchnet_without_bottleneck():
    # the released MatchNet: no bottleneck, metric network on 2 x 4096 features
    model = metric_nets.MatchNet(bottleneck=None)
    expected = conv(1, 24, 7) + conv(24, 64, 5) + conv(64, 96, 3) + conv(96, 96, 3) + conv(96, 64, 3) \
        + linear(2 * 4096, 1024) + linear(1024, 1024) + linear(1024, 2)
    assert count_parameters(model) == expected


@pytest.mark.parametrize("name", DESCRIPTOR_MODELS)
@pytest.mark.parametrize("batch", [1, 3])
def test_descriptor_outputs(models, name, batch):
    vis, other = pair(batch)
    with torch.no_grad():
        desc_vis, desc_other, prob = models[name](vis, other)
    assert prob is None
    assert desc_vis.shape == desc_other.shape == (batch, 128)
    assert torch.allclose(desc_vis.norm(dim=1), torch.ones(batch), atol=1e-4)
    assert torch.allclose(desc_other.norm(dim=1), torch.ones(batch), atol=1e-4)
    raw_vis, raw_other = models[name].raw_descriptors(vis, other)
    assert raw_vis.shape == raw_other.shape == (batch, 128)


@pytest.mark.parametrize("name", DESCRIPTOR_MODELS)
def test_descriptor_models_are_siamese(models, name):
    """One set of weights for both spectra: swapping the inputs swaps the descriptors (eval mode)."""
    vis, other = pair(2)
    with torch.no_grad():
        a_vis, a_other, _ = models[name](vis, other)
        b_vis, b_other, _ = models[name](other, vis)
    assert torch.allclose(a_vis, b_other, atol=1e-6) and torch.allclose(a_other, b_vis, atol=1e-6)


@pytest.mark.parametrize("name", METRIC_MODELS)
@pytest.mark.parametrize("batch", [1, 3])
def test_metric_outputs(models, name, batch):
    vis, other = pair(batch)
    with torch.no_grad():
        desc_vis, desc_other, prob = models[name](vis, other)
        logits = models[name].logits(vis, other)
    assert desc_vis is None and desc_other is None
    assert prob.shape == logits.shape == (batch,)
    assert ((prob >= 0) & (prob <= 1)).all()
    assert torch.allclose(prob, torch.sigmoid(logits))


def test_pseudo_siamese_towers_start_equal_and_train_apart():
    """As the authors' ``rama:clone()``: the second tower is a copy of the first, not a shared one."""
    torch.manual_seed(0)
    model = create_model("pseudo_siamese")
    vis_params, other_params = list(model.tower_vis.parameters()), list(model.tower_other.parameters())
    assert all(torch.equal(a, b) and a.data_ptr() != b.data_ptr() for a, b in zip(vis_params, other_params))
    torch.manual_seed(1)
    assert not torch.equal(create_model("pseudo_siamese").tower_vis[0].weight, vis_params[0])  # seeded, not fixed
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    out = OBJECTIVES[model.objective](model, *pair(4), generator=torch.Generator().manual_seed(0))
    out["total"].backward()
    optimizer.step()
    assert not torch.equal(model.tower_vis[0].weight, model.tower_other[0].weight)
    assert not hasattr(create_model("siamese"), "tower_vis")


def test_aguilera_networks_train_with_their_hinge_loss_matchnet_with_cross_entropy():
    assert {name: create_model(name).objective for name in METRIC_MODELS} == {
        "siamese": "hinge_random_negatives", "pseudo_siamese": "hinge_random_negatives",
        "two_channel": "hinge_random_negatives", "matchnet": "bce_random_negatives"}


def test_matchnet_logit_is_softmax_match_probability(models):
    model = models["matchnet"]
    vis, other = pair(3)
    with torch.no_grad():
        x = (torch.cat([vis, other]) * 255 - 128) / 160
        f = model.tower(x)
        z = model.metric(torch.cat([f[:3], f[3:]], dim=1))
        _, _, prob = model(vis, other)
    assert torch.allclose(prob, torch.softmax(z, dim=1)[:, 1], atol=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_bad_inputs_raise(models, name):
    model = models[name]
    for shape in [(2, 64, 64), (2, 1, 32, 32), (2, 3, 64, 64), (0, 1, 64, 64)]:
        with pytest.raises(ValueError, match="expected shape"):
            model(torch.rand(*shape), torch.rand(*shape))
    with pytest.raises(ValueError, match="floating-point"):
        model(torch.zeros(2, 1, 64, 64, dtype=torch.uint8), torch.rand(2, 1, 64, 64))
    with pytest.raises(ValueError, match="differ"):
        model(torch.rand(2, 1, 64, 64), torch.rand(3, 1, 64, 64))
    entry = model.raw_descriptors if name in DESCRIPTOR_MODELS else model.logits
    with pytest.raises(ValueError, match="expected shape"):
        entry(torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32))


@pytest.mark.parametrize("name", ALL)
def test_input_size_resize_path(models, name):
    """The tower sees input_size x input_size patches; the 32x32 models resize inside forward."""
    model = models[name]
    seen = []
    towers = [model.tower_vis, model.tower_other] if name == "pseudo_siamese" else [model.tower]
    hooks = [t.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape[-2:]))) for t in towers]
    try:
        with torch.no_grad():
            model(*pair(2))
    finally:
        for h in hooks:
            h.remove()
    assert seen and all(s == (model.input_size, model.input_size) for s in seen)
    assert model.input_size == (32 if name in DESCRIPTOR_MODELS else 64)


def test_resize_patches_is_antialiased_bilinear():
    x = torch.rand(2, 1, 64, 64)
    expected = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
    assert torch.equal(descriptors.resize_patches(x, 32), expected)
    assert descriptors.resize_patches(x, 64) is x
    # a constant patch stays constant
    flat = descriptors.resize_patches(torch.full((1, 1, 64, 64), 0.3), 32)
    assert torch.allclose(flat, torch.full((1, 1, 32, 32), 0.3))

# Training-mode forward + backward of every model: tests/test_objectives.py
# (test_objective_finite_scalar_with_gradients checks every parameter gets a finite gradient).


class _TwoHeads(metric_nets.MetricModel):
    """A deeply supervised metric net in miniature: two heads on one shared feature."""

    def __init__(self):
        super().__init__()
        self.feature = torch.nn.Linear(2, 4)
        self.main = torch.nn.Linear(4, 1)
        self.aux = torch.nn.Linear(4, 1)

    def _feature(self, vis, other):
        return self.feature(torch.stack([vis.mean(dim=(1, 2, 3)), other.mean(dim=(1, 2, 3))], dim=1))

    def pair_logits(self, vis, other):
        return self.main(self._feature(vis, other)).squeeze(1)

    def pair_head_logits(self, vis, other):
        f = self._feature(vis, other)
        return [self.main(f).squeeze(1), self.aux(f).squeeze(1)]


def test_metric_objective_sums_the_bce_of_every_head():
    """Deep supervision: the loss is the sum of each head's mean BCE (Keras' multi-output sum),
    the reported probability is the first head's, and the auxiliary head gets gradients."""
    torch.manual_seed(0)
    model = _TwoHeads()
    vis, other = torch.rand(4, 1, 64, 64), torch.rand(4, 1, 64, 64)
    out = OBJECTIVES["bce_random_negatives"](model, vis, other, generator=torch.Generator().manual_seed(3))
    j = __import__("kglnet.losses", fromlist=["x"]).random_negative_index(4, vis.device, torch.Generator().manual_seed(3))
    both_vis, both_other = torch.cat([vis, vis]), torch.cat([other, other[j]])
    labels = torch.cat([torch.ones(4), torch.zeros(4)])
    main, aux = model.pair_head_logits(both_vis, both_other)
    expected_main = F.binary_cross_entropy_with_logits(main, labels)
    expected_aux = F.binary_cross_entropy_with_logits(aux, labels)
    assert torch.allclose(out["bce"], expected_main) and torch.allclose(out["bce_head1"], expected_aux)
    assert torch.allclose(out["total"], expected_main + expected_aux)
    out["total"].backward()
    assert model.aux.weight.grad is not None and model.aux.weight.grad.abs().sum() > 0
    with torch.no_grad():
        _, _, prob = model(vis, other)
    assert torch.allclose(prob, torch.sigmoid(model.pair_logits(vis, other)))
    with pytest.raises(ValueError, match="expected shape"):
        model.head_logits(torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32))
