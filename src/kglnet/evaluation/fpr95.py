"""FPR95: false-positive rate (in %) at the operating point that accepts 95% of the true matches.

Two definitions are used by the project (SPEC section 5), and they do not give identical numbers on
the same data, so every result names the one it used:

* **descriptor** (:func:`fpr95_descriptor`): for distances between L2-normalised descriptors
  (lower = more similar). The positive distances are sorted ascending and the threshold is the one at
  0-based index ``ceil(0.95 * n_pos)``, exactly as the reference code does; FPR95 is the share of
  negatives whose distance is ``<=`` that threshold.
* **metric** (:func:`fpr95_metric`): for match scores/probabilities (higher = more likely a match).
  The ROC curve is computed with scikit-learn's ``roc_curve`` and the FPR is linearly interpolated at
  TPR = 0.95 over the ROC points.

Both return percentages (0..100). Lower is better.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fpr95_descriptor", "fpr95_metric", "roc_points", "validate_scores_labels"]

TARGET_TPR = 0.95


def _roc_curve():
    # scikit-learn (with SciPy) takes about 2 s to import on a 2-core CPU; the commands that only
    # read scores (reports, tables) never call it, so it is imported on first use.
    from sklearn.metrics import roc_curve

    return roc_curve


def validate_scores_labels(values, labels, name: str = "scores", *, labels_name: str = "labels",
                           require_both: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert a (values, labels) pair.

    Args:
        values: array-like [N] of finite real numbers (distances or scores).
        labels: array-like [N] with every entry 0 or 1 (bool, int or float dtypes accepted).
        name: what ``values`` are, used in error messages.
        labels_name: what ``labels`` are called in error messages.
        require_both: demand at least one positive and one negative (FPR95 needs both).

    Returns:
        ``(values float64 [N], labels bool [N])``.

    Raises:
        ValueError: not 1-D, length mismatch, labels outside {0, 1}, no positives or no negatives,
            or non-finite values.
    """
    v = np.asarray(values)
    y = np.asarray(labels)
    if v.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {v.shape}")
    if y.ndim != 1:
        raise ValueError(f"{labels_name} must be 1-D, got shape {y.shape}")
    if v.shape[0] != y.shape[0]:
        raise ValueError(f"{name} and {labels_name} differ in length: {v.shape[0]} vs {y.shape[0]}")
    if v.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be real numbers, got dtype {v.dtype}")
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{labels_name} must be 0/1 numbers or booleans, got dtype {y.dtype}")
    v = v.astype(np.float64, copy=False)
    if not np.all(np.isfinite(v)):
        bad = int(np.count_nonzero(~np.isfinite(v)))
        raise ValueError(f"{name} contain {bad} NaN/inf value(s)")
    # Compare as float so that 1.0/0.0 labels pass but 0.5, 2 or NaN do not.
    yf = y.astype(np.float64, copy=False)
    valid = (yf == 0.0) | (yf == 1.0)
    if not np.all(valid):
        odd = np.unique(y[~valid])[:5]
        raise ValueError(f"{labels_name} must be 0 or 1; found other values such as {odd.tolist()}")
    yb = yf == 1.0
    n_pos = int(np.count_nonzero(yb))
    if require_both and n_pos == 0:
        raise ValueError("labels contain no positives (1 = match); FPR95 is undefined")
    if require_both and n_pos == yb.shape[0]:
        raise ValueError("labels contain no negatives (0 = non-match); FPR95 is undefined")
    return v, yb


def fpr95_descriptor(distances, labels) -> float:
    """Descriptor FPR95 in percent, from distances (lower = more similar).

    Args:
        distances: float [N], e.g. Euclidean distances between L2-normalised descriptors.
        labels: [N] with 1 = matching pair, 0 = non-matching pair.

    Returns:
        ``100 * mean(neg_distances <= threshold)`` where ``threshold`` is the sorted (ascending)
        positive distance at 0-based index ``ceil(0.95 * n_pos)``.

    The index follows the reference code on purpose, so numbers are comparable with it: note that it
    sits one place past the 95% rank for most ``n_pos`` (for 100 positives it is the 96th smallest),
    i.e. the operating point accepts slightly more than 95% of the matches. For ``n_pos < 20`` the
    index ``ceil(0.95 * n_pos)`` equals ``n_pos`` and would be out of range (the reference would
    crash); it is clamped to ``n_pos - 1``, the largest positive distance (TPR = 100%).
    """
    d, y = validate_scores_labels(distances, labels, name="distances")
    pos = np.sort(d[y])
    neg = d[~y]
    n_pos = pos.shape[0]
    # Exact integer ceil(95 * n / 100); it equals the reference's float np.ceil(0.95 * n) for every
    # n_pos checked (1..200000), without relying on float rounding.
    index = -(-95 * n_pos // 100)
    index = min(index, n_pos - 1)  # clamp, see docstring
    threshold = pos[index]
    return float(100.0 * np.count_nonzero(neg <= threshold) / neg.shape[0])


def fpr95_metric(scores, labels) -> float:
    """Metric FPR95 in percent, from match scores (higher = more likely a match).

    Args:
        scores: float [N], e.g. the metric branch's match probability. For distances pass
            ``-distance``.
        labels: [N] with 1 = matching pair, 0 = non-matching pair.

    Returns:
        ``100 * np.interp(0.95, tpr, fpr)`` over the points of ``sklearn.metrics.roc_curve``
        (default ``drop_intermediate=True``, which only drops collinear points and so does not
        change the interpolated value).
    """
    s, y = validate_scores_labels(scores, labels, name="scores")
    fpr, tpr, _ = _roc_curve()(y.astype(np.int8), s)
    return float(100.0 * np.interp(TARGET_TPR, tpr, fpr))


def roc_points(scores, labels, max_points: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """ROC curve points for plotting, downsampled to at most ``max_points``.

    Args:
        scores: float [N], higher = more likely a match (pass ``-distance`` for distances).
        labels: [N] with 1 = match, 0 = non-match.
        max_points: upper bound on the number of returned points (>= 2).

    Returns:
        ``(fpr float64 [K], tpr float64 [K])`` with ``K <= max_points``, in ROC order (both
        non-decreasing). The first point (0, 0) and the last point (1, 1) are always kept.
    """
    if int(max_points) < 2:
        raise ValueError(f"max_points must be >= 2 to keep both end points, got {max_points}")
    s, y = validate_scores_labels(scores, labels, name="scores")
    fpr, tpr, _ = _roc_curve()(y.astype(np.int8), s)
    n = fpr.shape[0]
    if n > max_points:
        # Evenly spaced indices over the curve; linspace includes 0 and n-1, so both ends survive.
        keep = np.unique(np.round(np.linspace(0, n - 1, int(max_points))).astype(np.int64))
        fpr, tpr = fpr[keep], tpr[keep]
    return fpr.astype(np.float64), tpr.astype(np.float64)
