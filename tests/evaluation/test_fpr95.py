"""FPR95, both definitions, on hand-computed cases."""

import numpy as np
import pytest

from kglnet.evaluation import fpr95_descriptor, fpr95_metric, roc_points


# ---------------------------------------------------------------- descriptor definition

def test_descriptor_20_positives_k_of_10_negatives():
    # 20 positives at 0.0, 0.1, ..., 1.9 -> index ceil(0.95 * 20) = 19 -> threshold 1.9.
    pos = [round(0.1 * i, 1) for i in range(20)]
    # Negatives: 0.5, 1.0 and 1.9 (a tie counts: distance <= threshold) are accepted, the other 7
    # are above 1.9 -> 3 of 10 -> 30%.
    neg = [0.5, 1.0, 1.9, 1.95, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0]
    d = np.array(pos + neg)
    y = np.array([1] * 20 + [0] * 10, dtype=np.uint8)
    assert fpr95_descriptor(d, y) == pytest.approx(30.0)


@pytest.mark.parametrize("k", [0, 1, 5, 10])
def test_descriptor_exactly_k_below(k):
    # Same positives (threshold 1.9); k negatives at 1.0, the rest at 5.0 -> 10k %.
    d = np.array([0.1 * i for i in range(20)] + [1.0] * k + [5.0] * (10 - k))
    y = np.array([1] * 20 + [0] * 10)
    assert fpr95_descriptor(d, y) == pytest.approx(10.0 * k)


def test_descriptor_index_is_ceil_not_floor():
    # 100 positives 0..99 -> index ceil(95.0) = 95 -> threshold 95 (the 96th smallest), as the
    # reference does. Negatives 94.5 and 95 are <= 95, 95.5 and the rest are not -> 2/10 = 20%.
    # (Index 94, threshold 94, would give 0%.)
    d = np.concatenate([np.arange(100.0), [94.5, 95.0, 95.5] + [200.0] * 7])
    y = np.array([1] * 100 + [0] * 10)
    assert fpr95_descriptor(d, y) == pytest.approx(20.0)


def test_descriptor_index_clamped_for_few_positives():
    # 10 positives 0..9 -> ceil(9.5) = 10 is out of range -> clamped to 9 -> threshold 9 (largest).
    # Negatives 8.5 and 9 are <= 9, 9.5 and 10 are not -> 2/4 = 50%.
    d = np.array(list(range(10)) + [8.5, 9.0, 9.5, 10.0], dtype=float)
    y = np.array([1] * 10 + [0] * 4)
    assert fpr95_descriptor(d, y) == pytest.approx(50.0)
    # A single positive: threshold is that positive's distance.
    assert fpr95_descriptor([1.0, 0.5, 2.0], [1, 0, 0]) == pytest.approx(50.0)


def test_descriptor_order_independent():
    rng = np.random.default_rng(0)
    d = np.concatenate([rng.random(50), rng.random(50) + 0.5])
    y = np.array([1] * 50 + [0] * 50)
    perm = rng.permutation(100)
    assert fpr95_descriptor(d[perm], y[perm]) == fpr95_descriptor(d, y)


def test_descriptor_perfect_and_reversed():
    y = np.array([1] * 30 + [0] * 30)
    separated = np.concatenate([np.linspace(0, 1, 30), np.linspace(2, 3, 30)])
    assert fpr95_descriptor(separated, y) == 0.0
    reversed_ = np.concatenate([np.linspace(2, 3, 30), np.linspace(0, 1, 30)])
    assert fpr95_descriptor(reversed_, y) == 100.0


# ---------------------------------------------------------------- metric definition

def test_metric_interpolates_across_a_tpr_jump():
    # 20 positives, 10 negatives. Scores (higher = match):
    #   18 positives at 0.9                      -> ROC point (fpr 0.0, tpr 0.9)
    #   2 positives and 4 negatives tied at 0.5  -> ROC point (fpr 0.4, tpr 1.0)
    #   6 negatives at 0.1                       -> ROC point (fpr 1.0, tpr 1.0)
    # TPR 0.95 lies halfway between 0.9 and 1.0 on the segment (0.0, 0.9)-(0.4, 1.0), so
    # FPR = 0.0 + 0.5 * 0.4 = 0.2 -> 20%.
    s = np.array([0.9] * 18 + [0.5] * 2 + [0.5] * 4 + [0.1] * 6)
    y = np.array([1] * 18 + [1] * 2 + [0] * 4 + [0] * 6)
    assert fpr95_metric(s, y) == pytest.approx(20.0)


def test_metric_interpolation_quarter_point():
    # 10 positives, 10 negatives: 9 positives at 0.9 -> (0, 0.9); 1 positive tied with 2 negatives
    # at 0.5 -> (0.2, 1.0); 8 negatives at 0.1 -> (1, 1). TPR 0.95 is halfway along the jump:
    # FPR = 0.5 * 0.2 = 0.1 -> 10%.
    s = np.array([0.9] * 9 + [0.5] * 3 + [0.1] * 8)
    y = np.array([1] * 9 + [1, 0, 0] + [0] * 8)
    assert fpr95_metric(s, y) == pytest.approx(10.0)


def test_metric_step_without_ties():
    # 10 positives, 10 negatives, no ties: 9 positives (0.9..0.99), then 3 negatives (0.8), then
    # 1 positive (0.7), then 7 negatives. ROC: (0, 0.9) -> (0.3, 0.9) -> (0.3, 1.0): at TPR 0.95 the
    # FPR is 0.3 -> 30%.
    s = np.array([0.99, 0.98, 0.97, 0.96, 0.95, 0.94, 0.93, 0.92, 0.91,
                  0.83, 0.82, 0.81, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    y = np.array([1] * 9 + [0] * 3 + [1] + [0] * 7)
    assert fpr95_metric(s, y) == pytest.approx(30.0)


def test_metric_perfect_and_reversed():
    y = np.array([1] * 30 + [0] * 30)
    good = np.concatenate([np.linspace(0.6, 1.0, 30), np.linspace(0.0, 0.4, 30)])
    assert fpr95_metric(good, y) == 0.0
    assert fpr95_metric(-good, y) == 100.0


def test_metric_accepts_bool_and_float_labels():
    s = np.array([0.9] * 9 + [0.5] * 3 + [0.1] * 8)
    y = np.array([1] * 9 + [1, 0, 0] + [0] * 8)
    assert fpr95_metric(s, y.astype(bool)) == pytest.approx(10.0)
    assert fpr95_metric(s, y.astype(np.float32)) == pytest.approx(10.0)


# ---------------------------------------------------------------- ROC points

def test_roc_points_downsampled_keeps_ends():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 5000)
    s = rng.normal(size=5000) + y
    fpr, tpr = roc_points(s, y, max_points=50)
    assert fpr.shape == tpr.shape and 2 <= fpr.shape[0] <= 50
    assert (fpr[0], tpr[0]) == (0.0, 0.0)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)


def test_roc_points_small_input_not_downsampled():
    s = np.array([0.9] * 18 + [0.5] * 6 + [0.1] * 6)
    y = np.array([1] * 20 + [0] * 10)
    fpr, tpr = roc_points(s, y)
    np.testing.assert_allclose(fpr, [0.0, 0.0, 0.4, 1.0])
    np.testing.assert_allclose(tpr, [0.0, 0.9, 1.0, 1.0])
    with pytest.raises(ValueError, match="max_points"):
        roc_points(s, y, max_points=1)


# ---------------------------------------------------------------- bad input

GOOD_Y = np.array([1, 1, 0, 0])
GOOD_S = np.array([0.1, 0.2, 0.3, 0.4])


@pytest.mark.parametrize("fn", [fpr95_descriptor, fpr95_metric, roc_points])
@pytest.mark.parametrize(
    "scores, labels, match",
    [
        (GOOD_S.reshape(2, 2), GOOD_Y, "1-D"),
        (GOOD_S, GOOD_Y.reshape(2, 2), "1-D"),
        (GOOD_S[:3], GOOD_Y, "length"),
        (GOOD_S, np.array([1, 2, 0, 0]), "0 or 1"),
        (GOOD_S, np.array([1, 0.5, 0, 0]), "0 or 1"),
        (GOOD_S, np.array([1, np.nan, 0, 0]), "0 or 1"),
        (GOOD_S, np.zeros(4), "no positives"),
        (GOOD_S, np.ones(4), "no negatives"),
        (np.array([0.1, np.nan, 0.3, 0.4]), GOOD_Y, "NaN/inf"),
        (np.array([0.1, np.inf, 0.3, 0.4]), GOOD_Y, "NaN/inf"),
        (np.array(["a", "b", "c", "d"]), GOOD_Y, "real numbers"),
    ],
)
def test_bad_input_raises(fn, scores, labels, match):
    with pytest.raises(ValueError, match=match):
        fn(scores, labels)
