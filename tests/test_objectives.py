"""Baseline objectives (kglnet.objectives): hand-built cases, gradients, reproducible draws."""

import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import kglnet.models.descriptors  # noqa: F401  (registers the descriptor baselines)
import kglnet.models.metric_nets  # noqa: F401  (registers the metric baselines)
import kglnet.models.pn_qnet  # noqa: F401  (registers "pnnet" and "qnet")
from kglnet import objectives
from kglnet.losses import hardest_negatives, hybrid_triplet_loss, norm_loss, pair_distance, random_negative_index
from kglnet.models import create_model
from kglnet.models.layers import l2_normalize
from kglnet.objectives import (
    OBJECTIVES, compactness_loss, euclidean_pair_distance, get_objective, hardest_in_batch, hardnet_triplet_loss,
    objective_for, soft_pn_loss, sos_regularizer,
)

BASELINES = ["l2net", "hardnet", "sosnet", "hynet", "tfeat", "pnnet", "qnet", "siamese", "pseudo_siamese",
             "two_channel", "matchnet"]


def unit(*degrees):
    """2-D unit descriptors at the given angles: distances follow from the angle alone."""
    rad = torch.tensor(degrees, dtype=torch.float64) * math.pi / 180
    return torch.stack([rad.cos(), rad.sin()], dim=1)


def d(deg):
    return math.sqrt(abs(2 - 2 * math.cos(math.radians(deg))) + 1e-6)


def relu(x):
    return max(0.0, x)


class FixedDescriptors(nn.Module):
    """Descriptor 'model' whose descriptors are given: patch i of a batch carries index i in pixel 0."""

    objective = "hardnet"

    def __init__(self, desc_vis, desc_other):
        super().__init__()
        self.desc_vis = nn.Parameter(desc_vis.clone())
        self.desc_other = nn.Parameter(desc_other.clone())

    def forward(self, vis, other):
        iv, io = vis[:, 0, 0, 0].long(), other[:, 0, 0, 0].long()
        return self.desc_vis[iv], self.desc_other[io], None


def index_patches(p):
    x = torch.zeros(p, 1, 64, 64, dtype=torch.float64)
    x[:, 0, 0, 0] = torch.arange(p, dtype=torch.float64)
    return x


class RecordingMetric(nn.Module):
    """Metric 'model' recording the pairs it is asked to score (patch identity = its first pixel)."""

    objective = "bce_random_negatives"

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.5))
        self.seen = []

    def logits(self, vis, other):
        self.seen.append((vis[:, 0, 0, 0].clone(), other[:, 0, 0, 0].clone()))
        return self.w * (vis - other).abs().mean(dim=(1, 2, 3)) - 0.1


# ---------------------------------------------------------------------- hand-built cases --

def test_hardest_in_batch_by_hand():
    # vis at 0, 30, 100 degrees; other at 5, 60, 95. Angles D[i, j] between VIS_i and X_j:
    #   row 0: 5 60 95 | row 1: 25 30 65 | row 2: 95 40 5     positives (diagonal): 5, 30, 5
    # row minima off the diagonal (nearest X_j to VIS_i):   60, 25, 40
    # column minima (nearest VIS_j to X_i, anchor swap):    25, 40, 65
    vis, other = unit(0, 30, 100), unit(5, 60, 95)
    d_pos, d_neg = hardest_in_batch(vis, other, anchor_swap=True)
    assert torch.allclose(d_pos, torch.tensor([d(5), d(30), d(5)], dtype=torch.float64))
    assert torch.allclose(d_neg, torch.tensor([d(25), d(25), d(40)], dtype=torch.float64))
    loss, _, _ = hardnet_triplet_loss(vis, other, margin=1.0, anchor_swap=True)
    expected = (relu(1 + d(5) - d(25)) + relu(1 + d(30) - d(25)) + relu(1 + d(5) - d(40))) / 3
    assert loss.item() == pytest.approx(expected, abs=1e-12)
    loss_no_swap, _, _ = hardnet_triplet_loss(vis, other, margin=1.0, anchor_swap=False)
    expected = (relu(1 + d(5) - d(60)) + relu(1 + d(30) - d(25)) + relu(1 + d(5) - d(40))) / 3
    assert loss_no_swap.item() == pytest.approx(expected, abs=1e-12)


def test_hardest_in_batch_excludes_likely_false_negatives():
    # X_1 is 0.3 degrees from VIS_0 (distance 0.0053 <= 0.008): never a negative of pair 0 or 1.
    vis, other = unit(0, 50), unit(0.2, 0.3)
    _, d_neg = hardest_in_batch(vis, other)
    # pair 0: row -> X_1 excluded; column -> VIS_1 at 49.8 degrees from X_0
    # pair 1: row -> X_0 at 49.8 degrees from VIS_1; column -> VIS_0 excluded
    assert torch.allclose(d_neg, torch.tensor([d(49.8), d(49.8)], dtype=torch.float64), atol=1e-9)


def test_hardnet_objective_uses_the_models_descriptors():
    vis, other = unit(0, 30, 100), unit(5, 60, 95)
    model = FixedDescriptors(vis, other)
    out = OBJECTIVES["hardnet"](model, index_patches(3), index_patches(3))
    expected = (relu(1 + d(5) - d(25)) + relu(1 + d(30) - d(25)) + relu(1 + d(5) - d(40))) / 3
    assert out["total"].item() == pytest.approx(expected, abs=1e-12)
    assert out["d_pos"].item() == pytest.approx((d(5) + d(30) + d(5)) / 3)


def test_sos_zero_when_distance_matrices_are_equal():
    g = torch.Generator().manual_seed(0)
    desc = l2_normalize(torch.randn(12, 16, generator=g, dtype=torch.float64))
    assert sos_regularizer(desc, desc.clone()).item() == 0.0
    # a rotation of the descriptor space keeps every distance: still (numerically) zero. A row whose
    # squared difference is rounding-sized but not exactly 0 is floored at sqrt(1e-12) = 1e-6 by the
    # clamp that keeps the gradient finite, so 1e-6 is reached (it was, run alone, on 2 threads)
    rotation, _ = torch.linalg.qr(torch.randn(16, 16, generator=g, dtype=torch.float64))
    assert sos_regularizer(desc, desc @ rotation).item() <= 1e-6 + 1e-18
    assert sos_regularizer(desc, desc.flip(0)).item() > 1e-3  # and a real difference is not


def test_sos_by_hand():
    # vis at 0, 10, 50 degrees; other at 0, 20, 50; k = 1.
    # VIS neighbours: 0->1 (10), 1->0 (10), 2->1 (40). X neighbours: 0->1 (20), 1->0 (20), 2->1 (30).
    # c_0 = {1}, c_1 = {0}, c_2 = {1}.
    vis, other = unit(0, 10, 50), unit(0, 20, 50)
    value = sos_regularizer(vis, other, k=1)
    expected = (abs(d(10) - d(20)) + abs(d(10) - d(20)) + abs(d(40) - d(30))) / 3
    assert value.item() == pytest.approx(expected, abs=1e-12)


def test_sos_gradient_finite_at_zero():
    desc = l2_normalize(torch.randn(6, 8, dtype=torch.float64)).requires_grad_()
    sos_regularizer(desc, desc.detach().clone()).backward()
    assert torch.isfinite(desc.grad).all()


def test_sosnet_objective_by_hand():
    vis, other = unit(0, 30, 100), unit(5, 60, 95)
    out = OBJECTIVES["sosnet"](FixedDescriptors(vis, other), index_patches(3), index_patches(3))
    # four-candidate hardest negatives: VIS-VIS 30, 30, 70; X-X 55, 35, 35; rows 60, 25, 40; columns 25, 40, 65
    negatives = [25, 25, 35]
    positives = [5, 30, 5]
    fos = sum(relu(1 + d(p) - d(n)) ** 2 for p, n in zip(positives, negatives)) / 3
    assert out["fos"].item() == pytest.approx(fos, abs=1e-12)
    assert out["sos"].item() == pytest.approx(sos_regularizer(vis, other, k=8).item(), abs=1e-12)
    assert out["total"].item() == pytest.approx(out["fos"].item() + out["sos"].item(), abs=1e-12)


def test_tfeat_objective_by_hand_and_reproducible():
    vis, other = unit(0, 30, 100, 200), unit(5, 60, 95, 190)
    model = FixedDescriptors(vis, other)
    out = OBJECTIVES["tfeat"](model, index_patches(4), index_patches(4), generator=torch.Generator().manual_seed(3))
    j = random_negative_index(4, "cpu", torch.Generator().manual_seed(3)).tolist()
    angles_v, angles_x = [0, 30, 100, 200], [5, 60, 95, 190]

    def ang(a, b):
        x = abs(a - b) % 360
        return min(x, 360 - x)

    expected = sum(
        relu(1 + d(ang(angles_v[i], angles_x[i]))
             - min(d(ang(angles_v[i], angles_x[j[i]])), d(ang(angles_x[i], angles_x[j[i]]))))
        for i in range(4)) / 4
    assert out["total"].item() == pytest.approx(expected, abs=1e-9)
    again = OBJECTIVES["tfeat"](model, index_patches(4), index_patches(4), generator=torch.Generator().manual_seed(3))
    assert torch.equal(out["total"], again["total"])


def test_l2net_relative_loss_by_hand():
    # vis at 0, 90 degrees; other at 10, 70: D = [[10, 70], [80, 20]] degrees (rows and columns differ)
    vis, other = unit(0, 90), unit(10, 70)
    out = OBJECTIVES["l2net"](FixedDescriptors(vis, other), index_patches(2), index_patches(2))
    D = [[d(10), d(70)], [d(80), d(20)]]
    s = [[math.exp(2 - x) for x in row] for row in D]
    log_rows = [math.log(s[i][i] / sum(s[i])) for i in range(2)]
    log_cols = [math.log(s[i][i] / (s[0][i] + s[1][i])) for i in range(2)]
    expected = -0.5 * (sum(log_rows) / 2 + sum(log_cols) / 2)
    assert out["relative"].item() == pytest.approx(expected, abs=1e-12)
    assert out["total"].item() == pytest.approx(out["relative"].item() + out["compactness"].item(), abs=1e-12)


def test_compactness_by_hand():
    a = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    b = torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=torch.float64)
    assert compactness_loss(torch.stack([a, b], dim=1)).item() == pytest.approx(0.0, abs=1e-12)   # uncorrelated
    assert compactness_loss(torch.stack([a, 2 * a], dim=1)).item() == pytest.approx(1.0)          # r = 1, twice
    assert compactness_loss(torch.stack([a, -a, b], dim=1)).item() == pytest.approx(1.0)          # r = -1, twice


def test_hynet_objective_matches_kglnet_helpers():
    torch.manual_seed(0)
    model = create_model("hynet").eval()
    g = torch.Generator().manual_seed(0)
    vis, other = torch.rand(6, 1, 64, 64, generator=g), torch.rand(6, 1, 64, 64, generator=g)
    out = OBJECTIVES["hynet"](model, vis, other)
    with torch.no_grad():
        raw_vis, raw_other = model.raw_descriptors(vis, other)
        dv, dx = l2_normalize(raw_vis), l2_normalize(raw_other)
        triplet = hybrid_triplet_loss(pair_distance(dv, dx), hardest_negatives(dv, dx).distance, 1.2, 2.0)
        norm = norm_loss(raw_vis, raw_other, 0.1)
    assert torch.allclose(out["triplet"], triplet, atol=1e-5)
    assert torch.allclose(out["norm"], norm, atol=1e-6)
    assert torch.allclose(out["total"], triplet + norm, atol=1e-5)


# ------------------------------------------------------------------ SoftPN (PN-Net) and Q-Net --

class FixedRawDescriptors(nn.Module):
    """Like FixedDescriptors, but the given (not unit-length) vectors are the RAW descriptors."""

    def __init__(self, raw_vis, raw_other):
        super().__init__()
        self.raw_vis = nn.Parameter(torch.as_tensor(raw_vis, dtype=torch.float64).clone())
        self.raw_other = nn.Parameter(torch.as_tensor(raw_other, dtype=torch.float64).clone())

    def raw_descriptors(self, vis, other):
        return self.raw_vis[vis[:, 0, 0, 0].long()], self.raw_other[other[:, 0, 0, 0].long()]

    def forward(self, vis, other):
        raw_vis, raw_other = self.raw_descriptors(vis, other)
        return l2_normalize(raw_vis), l2_normalize(raw_other), None


def e(x):
    """The objectives' Euclidean distance for a true distance x: sqrt(x^2 + 1e-6)."""
    return math.sqrt(x * x + 1e-6)


def dist(a, b):
    return e(math.dist(a, b))


def softpn_paper(d_pos, d_neg):
    """PN-Net's SoftPN of one triplet, written as in the paper."""
    s_pos = math.exp(d_pos) / (math.exp(d_neg) + math.exp(d_pos))
    s_neg = math.exp(d_neg) / (math.exp(d_neg) + math.exp(d_pos))
    return s_pos ** 2 + (s_neg - 1) ** 2


def reduce_like_torch(values):
    """Torch's MSECriterion averages over the 2P softmax entries: half the mean per-example value."""
    return sum(values) / len(values) / 2


# Two positive pairs in 2-D; with P = 2 the in-batch negative of pair 0 is pair 1 and vice versa.
VIS2, OTHER2 = [(0.0, 0.0), (3.0, 0.0)], [(1.0, 0.0), (3.0, 1.5)]


def test_soft_pn_loss_is_torch_mse_of_softmax():
    d_pos = torch.tensor([0.3, 2.0, 1.0], dtype=torch.float64)
    d_neg = torch.tensor([1.5, 0.5, 1.0], dtype=torch.float64)
    target = torch.tensor([[1.0, 0.0]] * 3, dtype=torch.float64)
    torch_mse = torch.nn.functional.mse_loss(torch.softmax(torch.stack([d_neg, d_pos], dim=1), dim=1), target)
    assert soft_pn_loss(d_pos, d_neg).item() == pytest.approx(torch_mse.item(), abs=1e-15)
    expected = reduce_like_torch([softpn_paper(p, n) for p, n in [(0.3, 1.5), (2.0, 0.5), (1.0, 1.0)]])
    assert soft_pn_loss(d_pos, d_neg).item() == pytest.approx(expected, abs=1e-15)
    assert soft_pn_loss(d_pos, d_neg.new_full((3,), 100.0)).item() < 1e-40   # far negatives: no loss


def test_euclidean_pair_distance_by_hand():
    a = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    b = torch.tensor([[3.0, 4.0], [1.0, 1.0]], dtype=torch.float64)
    assert euclidean_pair_distance(a, b).tolist() == pytest.approx([e(5.0), 1e-3], abs=1e-12)
    u, v = unit(0, 30), unit(40, 100)
    assert torch.allclose(euclidean_pair_distance(u, v), pair_distance(u, v), atol=1e-12)


@pytest.mark.parametrize("negative, expected_neg", [
    # "other": N_0 = X_1 = (3, 1.5): min(D(VIS_0, N_0) = 3.354, D(X_0, N_0) = 2.5) = 2.5
    #          N_1 = X_0 = (1, 0):   min(D(VIS_1, N_1) = 2,     D(X_1, N_1) = 2.5) = 2
    ("other", [2.5, 2.0]),
    # "vis":   N_0 = VIS_1 = (3, 0): min(3, D(X_0, VIS_1) = 2) = 2;  N_1 = VIS_0: min(3, 3.354) = 3
    ("vis", [2.0, 3.0]),
])
def test_softpn_objective_by_hand(negative, expected_neg):
    model = FixedRawDescriptors(VIS2, OTHER2)
    out = OBJECTIVES["softpn"](model, index_patches(2), index_patches(2), negative=negative)
    d_pos = [e(1.0), e(1.5)]
    d_neg = [e(x) for x in expected_neg]
    expected = reduce_like_torch([softpn_paper(p, n) for p, n in zip(d_pos, d_neg)])
    assert out["total"].item() == pytest.approx(expected, abs=1e-12)
    assert out["softpn"].item() == out["total"].item()
    assert out["d_pos"].item() == pytest.approx(sum(d_pos) / 2, abs=1e-12)
    assert out["d_neg"].item() == pytest.approx(sum(d_neg) / 2, abs=1e-12)
    out["total"].backward()
    assert model.raw_vis.grad.abs().sum() > 0 and model.raw_other.grad.abs().sum() > 0


def test_softpn_random_spectrum_by_hand_and_reproducible():
    # P = 4 triplets; j from random_negative_index, then one coin per triplet: 1 -> VIS_j, 0 -> X_j
    vis = [(0.0, 0.0), (3.0, 0.0), (0.0, 2.0), (-1.0, 1.0)]
    other = [(1.0, 0.0), (3.0, 1.5), (0.5, 2.0), (-1.0, -0.5)]
    model = FixedRawDescriptors(vis, other)
    seen_coins = set()
    for seed in range(6):
        out = OBJECTIVES["softpn"](model, index_patches(4), index_patches(4),
                                   generator=torch.Generator().manual_seed(seed))
        g = torch.Generator().manual_seed(seed)
        j = random_negative_index(4, "cpu", g).tolist()
        coins = torch.randint(0, 2, (4,), generator=g).tolist()
        seen_coins.update(coins)
        values = []
        for i in range(4):
            n = vis[j[i]] if coins[i] == 1 else other[j[i]]
            values.append(softpn_paper(dist(vis[i], other[i]), min(dist(vis[i], n), dist(other[i], n))))
        assert out["total"].item() == pytest.approx(reduce_like_torch(values), abs=1e-12)
        again = OBJECTIVES["softpn"](model, index_patches(4), index_patches(4),
                                     generator=torch.Generator().manual_seed(seed))
        assert torch.equal(out["total"], again["total"])
    assert seen_coins == {0, 1}   # both spectra were drawn


def test_softpn_rejects_unknown_negative_spectrum():
    with pytest.raises(ValueError, match="negative"):
        OBJECTIVES["softpn"](FixedRawDescriptors(VIS2, OTHER2), index_patches(2), index_patches(2), negative="nir")


def test_quadruplet_objective_by_hand_two_pairs():
    # One quadruplet per pair: (VIS_0, X_0, VIS_1, X_1) and (VIS_1, X_1, VIS_0, X_0), the same distances.
    # matching: D(VIS_0, X_0) = 1, D(VIS_1, X_1) = 1.5 -> d_pos = max = 1.5
    # non-matching: VIS_0-VIS_1 3, VIS_0-X_1 3.354, X_0-VIS_1 2, X_0-X_1 2.5 -> d_neg = min = 2
    model = FixedRawDescriptors(VIS2, OTHER2)
    out = OBJECTIVES["quadruplet"](model, index_patches(2), index_patches(2))
    expected = reduce_like_torch([softpn_paper(e(1.5), e(2.0))] * 2)
    assert out["total"].item() == pytest.approx(expected, abs=1e-12)
    assert out["quadruplet"].item() == out["total"].item()
    assert out["d_pos"].item() == pytest.approx(e(1.5), abs=1e-12)
    assert out["d_neg"].item() == pytest.approx(e(2.0), abs=1e-12)
    # one positive (the 4n_1p variant): d_pos is each quadruplet's own first pair, 1 and 1.5
    one = OBJECTIVES["quadruplet"](model, index_patches(2), index_patches(2), both_positives=False)
    expected = reduce_like_torch([softpn_paper(e(1.0), e(2.0)), softpn_paper(e(1.5), e(2.0))])
    assert one["total"].item() == pytest.approx(expected, abs=1e-12)
    # only the cross-spectral negatives (VIS_0-X_1 3.354, X_0-VIS_1 2) -> 2; only the same-spectrum
    # ones (VIS_0-VIS_1 3, X_0-X_1 2.5) -> 2.5
    for negatives, d_neg in (("cross", e(2.0)), ("same", e(2.5))):
        probe = OBJECTIVES["quadruplet"](model, index_patches(2), index_patches(2), negatives=negatives)
        assert probe["d_neg"].item() == pytest.approx(d_neg, abs=1e-12)
        assert probe["total"].item() == pytest.approx(reduce_like_torch([softpn_paper(e(1.5), d_neg)] * 2), abs=1e-12)
    with pytest.raises(ValueError, match="negatives must be one of"):
        OBJECTIVES["quadruplet"](model, index_patches(2), index_patches(2), negatives="nearest")
    out["total"].backward()
    assert model.raw_vis.grad.abs().sum() > 0 and model.raw_other.grad.abs().sum() > 0


def test_quadruplet_objective_by_hand_drawn_pairs_and_reproducible():
    vis = [(0.0, 0.0), (3.0, 0.0), (0.0, 2.0), (-1.0, 1.0), (2.0, 2.0)]
    other = [(1.0, 0.0), (3.0, 1.5), (0.5, 2.0), (-1.0, -0.5), (2.0, 3.0)]
    model = FixedRawDescriptors(vis, other)
    patches = index_patches(5)
    out = OBJECTIVES["quadruplet"](model, patches, patches, generator=torch.Generator().manual_seed(4))
    j = random_negative_index(5, "cpu", torch.Generator().manual_seed(4)).tolist()
    values = []
    for i in range(5):
        d_pos = max(dist(vis[i], other[i]), dist(vis[j[i]], other[j[i]]))
        d_neg = min(dist(a, b) for a in (vis[i], other[i]) for b in (vis[j[i]], other[j[i]]))
        values.append(softpn_paper(d_pos, d_neg))
    assert out["total"].item() == pytest.approx(reduce_like_torch(values), abs=1e-12)
    again = OBJECTIVES["quadruplet"](model, patches, patches, generator=torch.Generator().manual_seed(4))
    assert torch.equal(out["total"], again["total"])


def test_softpn_and_quadruplet_normalize_option():
    # normalize=True: the distances are those of the L2-normalised descriptors (unit circle here)
    model = FixedRawDescriptors([(2.0, 0.0), (0.0, 3.0)], [(0.0, 0.5), (-4.0, 0.0)])
    # unit: VIS at 0, 90 degrees; X at 90, 180 degrees
    out = OBJECTIVES["quadruplet"](model, index_patches(2), index_patches(2), normalize=True)
    d_pos = max(d(90), d(90))
    d_neg = min(d(90), d(180), d(0), d(90))        # VIS_0-VIS_1, VIS_0-X_1, X_0-VIS_1, X_0-X_1
    assert out["total"].item() == pytest.approx(reduce_like_torch([softpn_paper(d_pos, d_neg)] * 2), abs=1e-9)
    out = OBJECTIVES["softpn"](model, index_patches(2), index_patches(2), negative="other", normalize=True)
    # N_0 = X_1 (180): min(D(VIS_0, X_1) = 180, D(X_0, X_1) = 90); N_1 = X_0 (90): min(D(VIS_1, X_0) = 0, 90)
    values = [softpn_paper(d(90), min(d(180), d(90))), softpn_paper(d(90), min(d(0), d(90)))]
    assert out["total"].item() == pytest.approx(reduce_like_torch(values), abs=1e-9)


# -------------------------------------------------------------------------- random negatives --

def test_random_negatives_never_pick_the_positive():
    model = RecordingMetric()
    p = 5
    vis = torch.arange(p, dtype=torch.float32)[:, None, None, None].expand(p, 1, 64, 64).contiguous()
    other = vis + 100
    for seed in range(50):
        model.seen.clear()
        OBJECTIVES["bce_random_negatives"](model, vis, other, generator=torch.Generator().manual_seed(seed))
        seen_vis, seen_other = model.seen[0]
        assert seen_vis.tolist() == list(range(p)) * 2
        assert seen_other[:p].tolist() == [100 + i for i in range(p)]     # positives first
        negatives = (seen_other[p:] - 100).long()
        assert (negatives != torch.arange(p)).all()                        # never j == i
        assert ((negatives >= 0) & (negatives < p)).all()


def test_random_negatives_reproducible_with_generator():
    model = RecordingMetric()
    vis = torch.rand(16, 1, 64, 64)
    other = torch.arange(16, dtype=torch.float32)[:, None, None, None].expand(16, 1, 64, 64).contiguous()
    draws = []
    for seed in (7, 7, 8):
        model.seen.clear()
        out = OBJECTIVES["bce_random_negatives"](model, vis, other, generator=torch.Generator().manual_seed(seed))
        draws.append((model.seen[0][1][16:].clone(), out["total"].detach()))
    assert torch.equal(draws[0][0], draws[1][0]) and torch.equal(draws[0][1], draws[1][1])
    assert not torch.equal(draws[0][0], draws[2][0])


def test_bce_labels_and_value():
    model = RecordingMetric()
    vis, other = torch.rand(4, 1, 64, 64), torch.rand(4, 1, 64, 64)
    out = OBJECTIVES["bce_random_negatives"](model, vis, other, generator=torch.Generator().manual_seed(0))
    j = random_negative_index(4, "cpu", torch.Generator().manual_seed(0))
    logits = model.w.detach() * torch.cat([(vis - other).abs(), (vis - other[j]).abs()]).mean(dim=(1, 2, 3)) - 0.1
    labels = torch.tensor([1.0] * 4 + [0.0] * 4)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    assert torch.allclose(out["total"].detach(), expected, atol=1e-6)


def test_hinge_by_hand():
    # Scores s = w |vis - other| - 0.1 with w = 0.5; positives (|d| = 0.2, 1.0) score 0.0 and 0.4,
    # the negatives pair each VIS with the other X (2 pairs: j is forced), |d| = 3.0 and 1.8 -> 1.4, 0.8.
    # MarginCriterion(1): mean of max(0, 1 - y s) = (1.0 + 0.6 + 2.4 + 1.8) / 4 = 1.45.
    model = RecordingMetric()
    vis = torch.tensor([0.0, 2.0])[:, None, None, None].expand(2, 1, 64, 64).contiguous()
    other = torch.tensor([0.2, 3.0])[:, None, None, None].expand(2, 1, 64, 64).contiguous()
    out = OBJECTIVES["hinge_random_negatives"](model, vis, other, generator=torch.Generator().manual_seed(0))
    assert out["total"].item() == pytest.approx(1.45, abs=1e-6)
    assert out["hinge"].item() == pytest.approx(1.45, abs=1e-6)
    assert out["score_pos"].item() == pytest.approx(0.2, abs=1e-6)
    assert out["score_neg"].item() == pytest.approx(1.1, abs=1e-6)
    out["total"].backward()
    # d total / d w = (1/4) sum over violating examples (here all four) of -y |d|
    assert model.w.grad.item() == pytest.approx((-0.2 - 1.0 + 3.0 + 1.8) / 4, abs=1e-6)


def test_hinge_is_zero_beyond_the_margin_and_sums_heads():
    class TwoHeads(nn.Module):
        objective = "hinge_random_negatives"

        def __init__(self, scale):
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(scale))

        def head_logits(self, vis, other):
            # +scale for a positive (same patch), -scale for a negative; second head half as sure
            same = (vis == other).all(dim=(1, 2, 3)).float() * 2 - 1
            return [self.scale * same, 0.5 * self.scale * same]

    vis = torch.arange(4, dtype=torch.float32)[:, None, None, None].expand(4, 1, 64, 64).contiguous()
    out = OBJECTIVES["hinge_random_negatives"](TwoHeads(3.0), vis, vis.clone())
    assert out["total"].item() == 0.0 and out["hinge_head1"].item() == 0.0      # 3 and 1.5 beyond margin 1
    out = OBJECTIVES["hinge_random_negatives"](TwoHeads(1.0), vis, vis.clone())
    assert out["hinge"].item() == 0.0 and out["hinge_head1"].item() == pytest.approx(0.5)
    assert out["total"].item() == pytest.approx(0.5)


# ------------------------------------------------------------------ every model, every objective --

@pytest.mark.parametrize("name", BASELINES)
def test_objective_finite_scalar_with_gradients(name):
    torch.manual_seed(0)
    model = create_model(name).train()
    fn = objective_for(model)
    g = torch.Generator().manual_seed(0)
    vis, other = torch.rand(6, 1, 64, 64, generator=g), torch.rand(6, 1, 64, 64, generator=g)
    out = fn(model, vis, other, generator=torch.Generator().manual_seed(1))
    total = out["total"]
    assert total.dim() == 0 and torch.isfinite(total)
    assert all(torch.isfinite(v).all() for v in out.values())
    total.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert any(gr.abs().sum() > 0 for gr in grads)


def test_objective_lookup_and_misuse():
    assert set(OBJECTIVES) == {"hardnet", "sosnet", "hynet", "tfeat", "l2net", "softpn", "quadruplet",
                               "bce_random_negatives", "hinge_random_negatives"}
    with pytest.raises(KeyError, match="known"):
        get_objective("nope")
    with pytest.raises(TypeError, match="no descriptors"):
        OBJECTIVES["hardnet"](create_model("two_channel"), torch.rand(3, 1, 64, 64), torch.rand(3, 1, 64, 64))
    with pytest.raises(ValueError, match="at least 2"):
        OBJECTIVES["bce_random_negatives"](RecordingMetric(), torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64))
    with pytest.raises(ValueError, match="at least 2"):
        hardest_in_batch(unit(0), unit(10))


def test_no_host_sync_in_objectives():
    source = Path(objectives.__file__).read_text()
    patterns = (r"\.item\(\)", r"\.tolist\(\)", r"\.cpu\(\)", r"\.numpy\(\)", r"\bfloat\(", r"\bint\(", r"\bbool\(")
    for pattern in patterns:
        assert not re.search(pattern, source), pattern
