"""Training objective: hand-built cases for every term of SPEC section 3."""

import math

import pytest
import torch

from kglnet.losses import (
    LossConfig, descriptor_distance, feature_guided_loss, hardest_negatives, hnsm_pairs,
    hybrid_triplet_loss, kglnet_loss, norm_loss,
)
from kglnet.models import create_model


def unit(*degrees):
    """2-D unit descriptors at the given angles: distances follow from the angle alone."""
    rad = torch.tensor(degrees, dtype=torch.float64) * math.pi / 180
    return torch.stack([rad.cos(), rad.sin()], dim=1)


def d(deg):
    return math.sqrt(abs(2 - 2 * math.cos(math.radians(deg))) + 1e-6)


def test_descriptor_distance_formula():
    a, b = unit(0, 90), unit(0, 180)
    assert torch.allclose(descriptor_distance(a, b), torch.tensor([[d(0), d(180)], [d(90), d(90)]], dtype=torch.float64))


def test_hardest_negative_with_false_negative_exclusion():
    # vis at 0, 40, 200 degrees; other at 10, 100 and 0.3 degrees. X_2 is 0.3 degrees from VIS_0:
    # distance 0.0052 <= 0.008, a likely false negative that must never be chosen.
    vis, other = unit(0, 40, 200), unit(10, 100, 0.3)
    hard = hardest_negatives(vis, other)
    # i=0: VV 40, XX 9.7 (X_0-X_2), V0-Xj 100 (X_2 excluded), X0-Vj 30  -> 9.7, X-X
    # i=1: VV 40, XX 90, V1-Xj 30 (X_0), X1-Vj 100                    -> 30, VIS_i-X_j
    # i=2: VV 160, XX 9.7, V2-Xj 100 (X_1), X2-Vj 39.7 (VIS_0 excluded) -> 9.7, X-X
    assert torch.allclose(hard.distance, torch.tensor([d(9.7), d(30), d(9.7)], dtype=torch.float64), atol=1e-9)
    assert hard.source.tolist() == [1, 2, 1]
    assert hard.vis_other_index.tolist() == [1, 0, 1]


def test_hardest_negative_vis_vis_and_other_vis_candidates():
    hard = hardest_negatives(unit(0, 20), unit(90, 200))
    assert hard.source.tolist() == [0, 0]  # the two VIS descriptors are 20 degrees apart
    assert torch.allclose(hard.distance, torch.tensor([d(20), d(20)], dtype=torch.float64))
    hard = hardest_negatives(unit(0, 95), unit(100, 300))
    # i=0: nearest VIS_j to X_0 is VIS_1 (5 degrees); i=1: nearest X_j to VIS_1 is X_0 (5 degrees)
    assert hard.source.tolist() == [3, 2]
    assert torch.allclose(hard.distance, torch.tensor([d(5), d(5)], dtype=torch.float64))


def test_hardest_negative_needs_two_pairs():
    with pytest.raises(ValueError, match="at least 2"):
        hardest_negatives(unit(0), unit(10))


def test_hybrid_triplet_values():
    # g(d) = d + d^2: g(0.5) = 0.75, g(1) = 2, g(0.2) = 0.24
    d_pos = torch.tensor([0.5, 1.0, 0.2])
    d_neg = torch.tensor([1.0, 1.0, 1.5])
    # terms: max(0, 1.2 + 0.75 - 2) = 0; 1.2 + 2 - 2 = 1.2; 1.2 + 0.24 - 3.75 < 0 -> 0
    assert hybrid_triplet_loss(d_pos, d_neg).item() == pytest.approx(1.2)


def test_norm_loss_value():
    raw_vis = torch.tensor([[3.0, 0.0], [0.0, 4.0]])
    raw_x = torch.tensor([[1.0, 0.0], [0.0, -4.0]])
    assert norm_loss(raw_vis, raw_x).item() == pytest.approx(0.1 * (2.0**2 + 0.0))


def test_hnsm_pairs_take_the_mined_negative():
    diff_vis = torch.arange(3.0).view(3, 1)
    diff_x = 10 + torch.arange(3.0).view(3, 1)
    vis, other, labels = hnsm_pairs(diff_vis, diff_x, torch.tensor([2, 0, 0]))
    assert labels.tolist() == [1, 1, 1, 0, 0, 0]
    assert vis.flatten().tolist() == [0, 1, 2, 0, 1, 2]
    assert other.flatten().tolist() == [10, 11, 12, 12, 10, 10]


def test_feature_guided_loss_reaches_both_maps():
    common = torch.zeros(2, 3, 2, 2, requires_grad=True)
    diff = torch.ones(2, 3, 2, 2, requires_grad=True)
    loss = feature_guided_loss(common, common, diff, diff)
    assert loss.item() == pytest.approx(2.0)
    loss.backward()
    assert common.grad.abs().sum() > 0 and diff.grad.abs().sum() > 0


def test_full_objective_trains_every_parameter():
    torch.manual_seed(0)
    model = create_model("kglnet").train()
    vis, other = torch.rand(4, 1, 64, 64), torch.rand(4, 1, 64, 64)
    terms = kglnet_loss(model, vis, other, LossConfig())
    total = terms["triplet"] + terms["norm"] + terms["bce"] + terms["feature"]
    assert torch.allclose(terms["total"], total)
    terms["total"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


# -- ablation switches (LossConfig) ---------------------------------------------------------------

@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    model = create_model("kglnet").train()
    return model, torch.rand(4, 1, 64, 64), torch.rand(4, 1, 64, 64)


def grads_after(model, terms):
    model.zero_grad(set_to_none=True)
    terms["total"].backward()
    return {n: p.grad for n, p in model.named_parameters()}


@pytest.mark.parametrize("switch, off", [
    ({"bce_weight": 0.0}, {"bce"}),
    ({"triplet_weight": 0.0, "norm_weight": 0.0}, {"triplet", "norm"}),
    ({"feature_weight": 0.0}, {"feature"}),
    ({"triplet_weight": 0.0}, {"triplet"}),
])
def test_each_switch_removes_exactly_its_terms(batch, switch, off):
    model, vis, other = batch
    full = kglnet_loss(model, vis, other, LossConfig())
    ablated = kglnet_loss(model, vis, other, LossConfig(**switch))
    kept = {"triplet", "norm", "bce", "feature"} - off
    for k in off:
        assert ablated[k].item() == 0.0
    for k in kept | {"d_pos", "d_neg"}:
        assert torch.equal(ablated[k], full[k]), k  # every other term is untouched, bit for bit
    assert torch.equal(ablated["total"], sum((ablated[k] for k in sorted(kept)), torch.zeros(())))


def test_default_weights_reproduce_the_paper_objective(batch):
    model, vis, other = batch
    explicit = LossConfig(triplet_weight=1.0, norm_weight=0.1, bce_weight=1.0, feature_weight=1.0, negatives="hardest")
    assert explicit == LossConfig()
    terms = kglnet_loss(model, vis, other)
    f = model.features(vis, other)
    hard = hardest_negatives(f.desc_vis, f.desc_other)
    from kglnet.losses import pair_distance
    triplet = hybrid_triplet_loss(pair_distance(f.desc_vis, f.desc_other), hard.distance)
    m_vis, m_other, labels = hnsm_pairs(f.diff_vis, f.diff_other, hard.vis_other_index)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(model.metric_logits(m_vis, m_other), labels)
    expected = triplet + norm_loss(f.raw_vis, f.raw_other) + bce + feature_guided_loss(
        f.common_vis, f.common_other, f.diff_vis, f.diff_other)
    assert torch.equal(terms["total"], expected)


def test_descriptor_alone_leaves_the_metric_head_without_gradient(batch):
    model, vis, other = batch
    grads = grads_after(model, kglnet_loss(model, vis, other, LossConfig(bce_weight=0.0)))
    assert all(grads[n] is None for n in grads if n.startswith("metric_head."))
    # the difference maps still learn through the feature-guided loss, the descriptor through the triplet
    assert grads["metric_high_vis.0.0.weight"].abs().sum() > 0 and grads["desc_proj.weight"].abs().sum() > 0


def test_metric_alone_trains_no_descriptor_projection(batch):
    model, vis, other = batch
    terms = kglnet_loss(model, vis, other, LossConfig(triplet_weight=0.0, norm_weight=0.0))
    assert torch.equal(terms["total"], terms["bce"] + terms["feature"])
    grads = grads_after(model, terms)
    assert grads["desc_proj.weight"] is None and grads["desc_bn.weight"] is None
    assert grads["metric_head.conv.weight"].abs().sum() > 0


def test_no_feature_loss_total(batch):
    model, vis, other = batch
    terms = kglnet_loss(model, vis, other, LossConfig(feature_weight=0.0))
    assert torch.equal(terms["total"], terms["triplet"] + terms["norm"] + terms["bce"])


def test_random_negatives_are_never_the_positive_and_are_seeded():
    from kglnet.losses import random_negative_index
    g = torch.Generator().manual_seed(5)
    draws = torch.stack([random_negative_index(7, "cpu", g) for _ in range(300)])  # [300, 7]
    assert draws.dtype == torch.int64 and draws.device.type == "cpu"
    assert not (draws == torch.arange(7)).any()
    for i in range(7):  # every other index is drawn, about uniformly (300 / 6 = 50 expected)
        counts = torch.bincount(draws[:, i], minlength=7)
        assert counts[i] == 0 and (counts[torch.arange(7) != i] > 20).all()
    assert torch.equal(random_negative_index(7, "cpu", torch.Generator().manual_seed(5)), draws[0])  # seeded
    with pytest.raises(ValueError, match="at least 2"):
        random_negative_index(1, "cpu", g)


def test_random_negatives_replace_the_hardest_ones():
    from kglnet.losses import random_negative_index
    # VIS_i sits 3 degrees from X_{i+1}: the hardest X_j for VIS_i is always j = i + 1 (mod 8).
    angles = [45.0 * i for i in range(8)]
    vis, other = unit(*angles), unit(*[a - 42.0 for a in angles])
    hardest = hardest_negatives(vis, other).vis_other_index
    assert hardest.tolist() == [(i + 1) % 8 for i in range(8)]
    rand = random_negative_index(8, "cpu", torch.Generator().manual_seed(0))
    assert not torch.equal(rand, hardest) and not (rand == torch.arange(8)).any()


def test_random_negatives_feed_the_metric_head(batch):
    from kglnet.losses import random_negative_index
    model, vis, other = batch
    terms = kglnet_loss(model, vis, other, LossConfig(negatives="random"), generator=torch.Generator().manual_seed(9))
    f = model.features(vis, other)
    idx = random_negative_index(4, "cpu", torch.Generator().manual_seed(9))
    m_vis, m_other, labels = hnsm_pairs(f.diff_vis, f.diff_other, idx)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(model.metric_logits(m_vis, m_other), labels)
    assert torch.allclose(terms["bce"], expected)
    full = kglnet_loss(model, vis, other)
    for k in ("triplet", "norm", "feature"):
        assert torch.equal(terms[k], full[k])


@pytest.mark.parametrize("bad, match", [
    ({"negatives": "easy"}, r"negatives.*hardest, random"),
    ({"bce_weight": -1.0}, "bce_weight"),
    ({"feature_weight": float("nan")}, "feature_weight"),
    ({"triplet_weight": "1"}, "triplet_weight"),
    ({"triplet_weight": 0, "norm_weight": 0, "bce_weight": 0, "feature_weight": 0}, "at least one"),
])
def test_bad_loss_settings(bad, match):
    with pytest.raises(ValueError, match=match):
        LossConfig(**bad)


def test_unknown_loss_setting_is_named():
    with pytest.raises(ValueError, match="bce_wieght"):
        LossConfig.from_dict({"bce_wieght": 0.0})
