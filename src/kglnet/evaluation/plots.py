"""Figures: ROC curves with their FPR95, per-epoch training curves, the qualitative match grid
(correct / wrong matches at the FPR95 operating point), FPR95 against parameter count and the
spread of FPR95 over seeds.

Figures are built on a bare :class:`matplotlib.figure.Figure` (Agg canvas) instead of ``pyplot``, so
no display or global backend switch is needed and nothing leaks between calls. Every PNG is written
to a temporary file beside its target and renamed when complete (``kglnet.utils.io.atomic_path``).
"""

from __future__ import annotations

import logging
import math
import os
import textwrap
from fractions import Fraction
from typing import Collection, Mapping, Sequence

import numpy as np
from matplotlib import colormaps, rcParams
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kglnet.evaluation.fpr95 import validate_scores_labels
from kglnet.utils.io import atomic_path

try:
    from adjustText import adjust_text
except ImportError:  # a machine with the other packages only (workflow/scripts/device_run.py's GPU slots)
    adjust_text = None

log = logging.getLogger(__name__)

__all__ = [
    "MATCH_GROUPS",
    "operating_threshold",
    "plot_fpr95_vs_parameters",
    "plot_match_grid",
    "plot_roc",
    "plot_seed_spread",
    "plot_training_curves",
    "roc_figure",
    "seed_spread_figure",
    "select_match_examples",
]

_DPI = 120
_ADJUST_TEXT_ITERATIONS = 1000


def _new_figure(width: float, height: float, ncols: int = 1):
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)  # attaches itself to the figure
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _save_png(fig: Figure, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        # The temp name ends in ".png.tmp", so the format must be given explicitly.
        fig.savefig(tmp, format="png")


# Up to this many curves the legend fits inside the axes (the built-in ablation table's figure has
# 14 curves, the zoo's more); beyond it the legend moves beside the axes.
_ROC_INLINE_LEGEND = 6


def roc_figure(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], title: str,
               dashed: Collection[str] = ()) -> Figure:
    """Draw ROC curves on a new figure (see :func:`plot_roc` for ``curves``).

    Args:
        dashed: labels whose curve is drawn dashed (the report dashes the descriptor branch of
            networks that have two, so the two branches of one model read apart).

    Returns:
        The figure; its first axes hold one line per curve, in the order of ``curves``.
    """
    if not curves:
        raise ValueError("plot_roc needs at least one curve")
    unknown = set(dashed) - set(curves)
    if unknown:
        raise ValueError(f"dashed names labels that are not curves: {sorted(unknown)}")
    many = len(curves) > _ROC_INLINE_LEGEND
    fig, (ax,) = _new_figure(9.5 if many else 6.0, 5.0)
    # More curves than the colour cycle has colours (10 by default): a 20-colour map, so no two of
    # up to 20 curves share one.
    colours = None
    if len(curves) > len(rcParams["axes.prop_cycle"]):
        cmap = colormaps["tab20"]
        colours = [cmap(i % cmap.N) for i in range(len(curves))]
    for i, (label, (fpr, tpr, f95)) in enumerate(curves.items()):
        fpr = np.asarray(fpr, dtype=np.float64)
        tpr = np.asarray(tpr, dtype=np.float64)
        if fpr.shape != tpr.shape or fpr.ndim != 1:
            raise ValueError(f"curve {label!r}: fpr and tpr must be 1-D of equal length, "
                             f"got {fpr.shape} and {tpr.shape}")
        if f95 is None or not math.isfinite(float(f95)):
            legend = f"{label} (FPR95 n/a)"
        else:
            legend = f"{label} (FPR95 {float(f95):.2f}%)"
        style = {"color": colours[i]} if colours else {}
        (line,) = ax.plot(fpr, tpr, linewidth=1.5, linestyle="--" if label in dashed else "-",
                          label=legend, **style)
        if f95 is not None and math.isfinite(float(f95)) and 0.0 <= float(f95) <= 100.0:
            # Vertical guide at this curve's FPR95, in its colour, down from the TPR = 0.95 line.
            ax.vlines(float(f95) / 100.0, 0.0, 0.95, colors=line.get_color(), linestyles=":",
                      linewidth=0.8)
    # Guides at the operating point: every curve's FPR95 is where it crosses TPR = 0.95.
    ax.axhline(0.95, color="0.5", linestyle="--", linewidth=0.8, label="TPR = 0.95")
    ax.plot([0, 1], [0, 1], color="0.8", linestyle=":", linewidth=0.8)  # chance diagonal
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if many:
        # Beside the axes: inside, a long legend hides the curves it names.
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="x-small", borderaxespad=0.0)
    else:
        ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


def plot_roc(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], path, title: str,
             dashed: Collection[str] = ()) -> None:
    """Plot ROC curves into one PNG.

    Args:
        curves: label -> ``(fpr [K], tpr [K], fpr95_percent)``; ``fpr``/``tpr`` as fractions in
            [0, 1] (e.g. from :func:`kglnet.evaluation.fpr95.roc_points`), FPR95 in percent (may be
            None/NaN if unknown).
        path: output PNG path.
        title: figure title.
        dashed: labels whose curve is drawn dashed.
    """
    _save_png(roc_figure(curves, title, dashed), path)


def _series(history: list[dict], key: str) -> np.ndarray:
    # Missing keys / None become NaN so a metric logged only in some epochs leaves gaps.
    vals = []
    for row in history:
        v = row.get(key)
        vals.append(float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan)
    return np.asarray(vals, dtype=np.float64)


def plot_training_curves(history: list[dict], path, title: str) -> None:
    """Plot per-epoch training curves into one PNG.

    Args:
        history: one dict per epoch, e.g. ``{"epoch": 3, "loss_total": .., "loss_triplet": ..,
            "val_fpr95_metric": .., "val_fpr95_descriptor": ..}``. Every numeric key besides
            ``epoch`` is plotted: keys starting with ``loss`` in a "losses" panel, keys containing
            ``fpr95`` in an "FPR95 (%)" panel, any other numeric key (for example the mean positive and
            hardest-negative distances) in a third panel; timings (``*_seconds``, ``*_per_s``) are left out. Without an
            ``epoch`` key the x axis is 1..len(history).
        path: output PNG path.
        title: figure title.
    """
    if not history:
        raise ValueError("plot_training_curves needs at least one epoch of history")
    keys: list[str] = []
    for row in history:
        for k, v in row.items():
            if k != "epoch" and k not in keys and isinstance(v, (int, float)) \
                    and not isinstance(v, bool):
                keys.append(k)
    groups = {
        "losses": [k for k in keys if k.startswith("loss")],
        "FPR95 (%)": [k for k in keys if "fpr95" in k and not k.startswith("loss")],
    }
    # Timings and throughput are bookkeeping, not learning curves: leave them out.
    bookkeeping = {k for k in keys if k.endswith("_seconds") or k.endswith("_per_s")}
    used = set(groups["losses"]) | set(groups["FPR95 (%)"]) | bookkeeping
    groups["other"] = [k for k in keys if k not in used]
    panels = [(name, ks) for name, ks in groups.items() if ks]
    if not panels:
        raise ValueError("history has no numeric keys besides 'epoch' to plot")
    epochs = _series(history, "epoch")
    if np.isnan(epochs).any():
        epochs = np.arange(1, len(history) + 1, dtype=np.float64)
    fig, axes = _new_figure(5.0 * len(panels), 4.0, ncols=len(panels))
    for ax, (name, ks) in zip(axes, panels):
        for k in ks:
            # A marker keeps single-epoch or gappy series visible.
            ax.plot(epochs, _series(history, k), marker="o", markersize=3, linewidth=1.2, label=k)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    _save_png(fig, path)


# ---------------------------------------------------------------- qualitative match grid

#: The four outcome groups of :func:`plot_match_grid`, in display order.
MATCH_GROUPS = ("correctly matched", "correctly rejected", "false match", "missed match")


def _check_score_label(score, label) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(score float64 [N], label bool [N])``; ValueError naming the bad argument. One
    class alone is allowed here (a grid can show it); callers that need both check it."""
    return validate_scores_labels(score, label, "score", labels_name="label", require_both=False)


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def operating_threshold(score, label, tpr: float = 0.95, higher_is_match: bool = True) -> float:
    """Decision threshold at which ``tpr`` of the matching pairs are accepted.

    The two cases follow the two FPR95 definitions of :mod:`kglnet.evaluation.fpr95`:

    * ``higher_is_match=False`` (distances, lower = match; the *descriptor* definition): the
      positive distances sorted ascending, at 0-based index ``ceil(tpr * n_pos)`` clamped to
      ``n_pos - 1`` -- exactly the threshold of :func:`~kglnet.evaluation.fpr95.fpr95_descriptor`
      (for ``tpr=0.95``), including its "one past the 95% rank" quirk. A pair is predicted a match
      when ``distance <= threshold``, as there.
    * ``higher_is_match=True`` (scores/probabilities, higher = match; the *metric* side): the largest
      threshold with at least ``tpr`` of the positives at ``score >= threshold``, i.e. the positive
      scores sorted descending at 0-based index ``ceil(tpr * n_pos) - 1``. A pair is predicted a
      match when ``score >= threshold``. This is the first ROC point (``sklearn.metrics.roc_curve``)
      whose TPR reaches ``tpr``; :func:`~kglnet.evaluation.fpr95.fpr95_metric` interpolates between
      that point and the one before it, so its FPR95 can be slightly lower than the FPR at this
      threshold.

    ``ceil(tpr * n_pos)`` is computed exactly (``tpr`` as the decimal it prints as, e.g. 0.95 ->
    19/20), so float rounding cannot move the index.

    Args:
        score: [N] finite values: match scores (``higher_is_match=True``) or distances (False).
        label: [N], 1 = matching pair, 0 = non-matching; negatives are not needed.
        tpr: target true-positive rate in (0, 1].
        higher_is_match: see above.

    Returns:
        The threshold (one of the positive pairs' values) as a float.

    Raises:
        ValueError: bad shapes/lengths, non-finite values, labels outside {0, 1}, no positives, or
            ``tpr`` outside (0, 1].
    """
    higher_is_match = _check_bool(higher_is_match, "higher_is_match")
    try:
        tpr_f = float(tpr)
    except (TypeError, ValueError):
        raise ValueError(f"tpr must be a number in (0, 1], got {tpr!r}") from None
    if not (math.isfinite(tpr_f) and 0.0 < tpr_f <= 1.0):
        raise ValueError(f"tpr must be in (0, 1], got {tpr!r}")
    s, y = _check_score_label(score, label)
    pos = s[y]
    n_pos = pos.shape[0]
    if n_pos == 0:
        raise ValueError("label contains no positives (1 = match); the threshold is undefined")
    k = math.ceil(Fraction(repr(tpr_f)) * n_pos)  # exact ceil(tpr * n_pos), >= 1 since tpr > 0
    if higher_is_match:
        return float(np.sort(pos)[::-1][k - 1])
    return float(np.sort(pos)[min(k, n_pos - 1)])


def _predicted_match(s: np.ndarray, threshold: float, higher_is_match: bool) -> np.ndarray:
    return s >= threshold if higher_is_match else s <= threshold


def _check_threshold(threshold) -> float:
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}") from None
    if isinstance(threshold, bool) or not math.isfinite(t):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return t


def _check_per_class(per_class) -> int:
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) \
            or int(per_class) < 1:
        raise ValueError(f"per_class must be an integer >= 1, got {per_class!r}")
    return int(per_class)


def select_match_examples(label, score, threshold, *, per_class: int = 4,
                          higher_is_match: bool = True,
                          seed: int = 0) -> dict[str, tuple[np.ndarray, int]]:
    """Sort pairs into the four outcome groups and pick the examples :func:`plot_match_grid` shows.

    A pair is predicted a match when ``score >= threshold`` (``higher_is_match=True``) or
    ``score <= threshold`` (distances, ``higher_is_match=False``). Groups (:data:`MATCH_GROUPS`):
    ``correctly matched`` (label 1, predicted match), ``correctly rejected`` (label 0, predicted
    non-match), ``false match`` (label 0, predicted match), ``missed match`` (label 1, predicted
    non-match).

    Choice of examples (deterministic):

    * ``false match``: the most confident errors, i.e. the highest scores (lowest distances) first;
    * ``missed match``: the lowest scores (highest distances) first;
      ties in either are broken by the lower pair index (stable sort);
    * the two correct groups: ``min(per_class, count)`` pairs drawn uniformly without replacement
      with ``numpy.random.default_rng([seed, g])`` (``g`` = the group's position in
      :data:`MATCH_GROUPS`, so one group's size does not change another's draw), shown in ascending
      pair index. The choice depends only on ``(label, score, threshold, per_class, seed)``.

    Returns:
        group -> ``(chosen pair indices int64 [<= per_class], group count)`` for every group, in
        :data:`MATCH_GROUPS` order; an empty group gives ``(empty array, 0)``.
    """
    higher_is_match = _check_bool(higher_is_match, "higher_is_match")
    s, y = _check_score_label(score, label)
    t = _check_threshold(threshold)
    per_class = _check_per_class(per_class)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    pred = _predicted_match(s, t, higher_is_match)
    members = {
        "correctly matched": np.flatnonzero(y & pred),
        "correctly rejected": np.flatnonzero(~y & ~pred),
        "false match": np.flatnonzero(~y & pred),
        "missed match": np.flatnonzero(y & ~pred),
    }
    # Match confidence: larger = the model is surer the pair matches.
    confidence = s if higher_is_match else -s
    out: dict[str, tuple[np.ndarray, int]] = {}
    for g, name in enumerate(MATCH_GROUPS):
        idx = members[name]
        if name == "false match":
            chosen = idx[np.argsort(-confidence[idx], kind="stable")[:per_class]]
        elif name == "missed match":
            chosen = idx[np.argsort(confidence[idx], kind="stable")[:per_class]]
        else:
            rng = np.random.default_rng([int(seed), g])
            chosen = np.sort(rng.choice(idx, size=min(per_class, idx.shape[0]), replace=False)) \
                if idx.shape[0] else idx
        out[name] = (chosen.astype(np.int64), int(idx.shape[0]))
    return out


def _check_patches(patches, name: str) -> np.ndarray:
    p = np.asarray(patches)
    if p.ndim != 3 or p.shape[1] < 1 or p.shape[2] < 1:
        raise ValueError(f"{name} must be uint8 [N, H, W] (e.g. [N, 64, 64]), got shape {p.shape}")
    if p.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8, got dtype {p.dtype}")
    return p


def plot_match_grid(left, right, label, score, threshold, path, title: str, *,
                    per_class: int = 4, higher_is_match: bool = True,
                    seed: int = 0) -> dict[str, int]:
    """The qualitative figure: example pairs of each outcome at a decision threshold.

    Pairs are classified with ``threshold`` (normally the FPR95 operating point, see
    :func:`operating_threshold`) into ``correctly matched``, ``correctly rejected``, ``false match``
    and ``missed match`` (see :func:`select_match_examples`, which also documents how the examples
    are chosen: the most confident errors, seeded random picks for the correct groups). The figure
    has one row per group, headed by the group name and its count; each of up to ``per_class``
    cells shows the pair as ``VIS patch | other patch`` in grey (0..255, no contrast stretch) with
    its score underneath. An empty group shows "none".

    Args:
        left: uint8 [N, H, W] visible patches (``PairSet.left``).
        right: uint8 [N, H, W] other-spectrum patches (``PairSet.right``), same shape as ``left``.
        label: [N], 1 = matching pair, 0 = non-matching.
        score: [N] finite: match score/probability (``higher_is_match=True``) or distance (False).
        threshold: finite decision threshold, in the units of ``score``.
        path: output PNG path (written atomically).
        title: figure title.
        per_class: examples per group, >= 1.
        higher_is_match: whether a higher ``score`` means a more likely match.
        seed: seed of the random picks in the correct groups.

    Returns:
        group -> number of pairs in it, for every group of :data:`MATCH_GROUPS` (they sum to N).

    Raises:
        ValueError: naming the argument, for bad shapes/dtypes, mismatched lengths, labels outside
            {0, 1}, non-finite scores or threshold, ``N == 0`` or ``per_class < 1``.
    """
    lp = _check_patches(left, "left")
    rp = _check_patches(right, "right")
    if lp.shape != rp.shape:
        raise ValueError(f"left and right must have the same shape, got {lp.shape} and {rp.shape}")
    if lp.shape[0] == 0:
        raise ValueError("left/right hold no pairs (N == 0); nothing to plot")
    s = np.asarray(score)
    y = np.asarray(label)
    if y.ndim == 1 and y.shape[0] != lp.shape[0]:
        raise ValueError(f"label has {y.shape[0]} entries but left/right hold {lp.shape[0]} pairs")
    if s.ndim == 1 and s.shape[0] != lp.shape[0]:
        raise ValueError(f"score has {s.shape[0]} entries but left/right hold {lp.shape[0]} pairs")
    chosen = select_match_examples(label, score, threshold, per_class=per_class,
                                   higher_is_match=higher_is_match, seed=seed)
    s = np.asarray(score, dtype=np.float64)
    per_class = int(per_class)
    h, w = lp.shape[1:]
    gap = max(1, w // 32)
    sep = np.full((h, gap), 255, dtype=np.uint8)  # thin white line between the two patches
    symbol = "p" if higher_is_match else "d"
    rule = f"{'score >=' if higher_is_match else 'distance <='} {float(threshold):.4g}"

    fig = Figure(figsize=(0.6 + 1.7 * per_class, 1.9 * len(MATCH_GROUPS) + 0.5), dpi=_DPI,
                 layout="constrained")
    FigureCanvasAgg(fig)
    subfigs = fig.subfigures(len(MATCH_GROUPS), 1, squeeze=False)[:, 0]
    for sub, name in zip(subfigs, MATCH_GROUPS):
        idx, count = chosen[name]
        sub.suptitle(f"{name} ({count})", fontsize="medium", fontweight="bold")
        axes = sub.subplots(1, per_class, squeeze=False)[0]
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
        if idx.shape[0] == 0:
            axes[0].text(0.5, 0.5, "none", ha="center", va="center", fontsize="large",
                         color="0.4", transform=axes[0].transAxes)
            continue
        for ax, i in zip(axes, idx):
            ax.imshow(np.concatenate([lp[i], sep, rp[i]], axis=1), cmap="gray", vmin=0, vmax=255,
                      interpolation="nearest")
            ax.set_xlabel(f"{symbol}={s[i]:.3g}  (#{int(i)})", fontsize="small")
    fig.suptitle(f"{title}\nVIS | other; predicted match: {rule}", fontsize="medium")
    _save_png(fig, path)
    return {name: chosen[name][1] for name in MATCH_GROUPS}


# ---------------------------------------------------------------- FPR95 vs parameters

# Known kinds get fixed styles; any other kind takes the next style of _EXTRA_STYLES, in order of
# first appearance in ``points``.
_KIND_STYLES = {"paper": ("o", "tab:blue"), "ours": ("*", "tab:red")}
_EXTRA_STYLES = [("s", "tab:green"), ("^", "tab:purple"), ("D", "tab:orange"), ("v", "tab:brown"),
                 ("P", "tab:pink"), ("X", "tab:olive"), ("h", "tab:cyan"), ("<", "tab:gray")]


def _finite_number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


_SEED_LABEL_WIDTH = 52  # characters per line of a method's name in the seed-spread figure


def seed_spread_figure(values: Mapping[str, Sequence[float]], title: str,
                       xlabel: str = "FPR95 (%), lower is better") -> Figure:
    """Each method's FPR95 per seed as dots, with the mean (tick) and ± one standard deviation
    (bar, the sample std the tables give), methods sorted by mean, best at the top: where the
    tables' mean ± std leave open whether two rows differ, the dots show it.

    Args:
        values: method label -> its per-seed FPR95 in percent (finite; at least one value).
        title: figure title.
        xlabel: the x axis' label.

    Returns:
        The figure; its first axes hold one row per method.

    Raises:
        ValueError: no method, a method without values, or a value that is not a finite number
            (the message names the method).
    """
    if not values:
        raise ValueError("seed_spread_figure needs at least one method")
    rows = []
    for label, vals in values.items():
        arr = np.asarray(list(vals), dtype=np.float64)
        if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
            raise ValueError(f"method {label!r}: needs one or more finite FPR95 values, got {list(vals)!r}")
        rows.append((float(arr.mean()), label, arr))
    rows.sort(key=lambda row: row[0], reverse=True)  # best (lowest) ends at the top
    # Long method names (the study variants' labels run past 90 characters) are wrapped, or
    # tight_layout gives them the figure's width and leaves the axes a sliver.
    ticks = [textwrap.fill(f"{label} (n={arr.size})", _SEED_LABEL_WIDTH) for _, label, arr in rows]
    lines = sum(tick.count("\n") + 1 for tick in ticks)
    fig, (ax,) = _new_figure(7.5, 1.4 + 0.3 * lines + 0.12 * len(rows))
    for y, (mean, label, arr) in enumerate(rows):
        std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
        ax.hlines(y, mean - std, mean + std, color="0.35", linewidth=2.0)
        ax.plot([mean], [y], marker="|", markersize=14, color="black")
        # Seeds side by side, a little apart vertically so equal values stay countable.
        offsets = np.linspace(-0.15, 0.15, arr.size) if arr.size > 1 else np.zeros(1)
        ax.scatter(arr, y + offsets, s=18, color="tab:red", zorder=3)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(ticks, fontsize="small")
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel(f"{xlabel}\n(dots: seeds; tick: mean; bar: ± 1 standard deviation)")
    # Over the whole figure, not the axes: the long method names leave the axes narrow.
    fig.suptitle(title, fontsize="medium")
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_seed_spread(values: Mapping[str, Sequence[float]], path, title: str,
                     xlabel: str = "FPR95 (%), lower is better") -> None:
    """Write :func:`seed_spread_figure` to a PNG (atomically)."""
    _save_png(seed_spread_figure(values, title, xlabel), path)


def plot_fpr95_vs_parameters(points: Sequence[Mapping], path, title: str) -> list[str]:
    """The summary chart: FPR95 (%, lower is better) against parameter count (millions, log x).

    Args:
        points: one mapping per method with keys ``label`` (method name, str, written near its
            point: adjustText moves labels apart, with a leader line to one moved far), ``params`` (the *raw* number of parameters, e.g. ``1_234_567``; plotted in
            millions; must be > 0 for the log axis; ``None`` = unknown, the point is skipped),
            ``fpr95`` (percent, finite, >= 0) and ``kind`` (str, e.g. ``"paper"`` for a number
            published in the paper or ``"ours"`` for one measured here). Each kind gets its own
            marker and colour and one legend entry.
        path: output PNG path (written atomically).
        title: figure title.

    Returns:
        The labels of the points skipped because their ``params`` is None, in input order.

    Raises:
        ValueError: a point is not a mapping or lacks a key, has a bad value (message names the
            point and key), or no point is left after skipping.
    """
    if isinstance(points, (str, bytes, Mapping)) or not isinstance(points, Sequence):
        raise ValueError(f"points must be a list of dicts, got {type(points).__name__}")
    kept: list[tuple[str, float, float, str]] = []
    skipped: list[str] = []
    for n, pt in enumerate(points):
        if not isinstance(pt, Mapping):
            raise ValueError(f"points[{n}] must be a dict, got {type(pt).__name__}")
        missing = [k for k in ("label", "params", "fpr95", "kind") if k not in pt]
        if missing:
            raise ValueError(f"points[{n}] lacks key(s) {missing}")
        label, kind = pt["label"], pt["kind"]
        if not isinstance(label, str) or not label:
            raise ValueError(f"points[{n}]['label'] must be a non-empty string, got {label!r}")
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"points[{n}] ({label!r}) 'kind' must be a non-empty string, "
                             f"got {kind!r}")
        if pt["params"] is None:
            skipped.append(label)
            continue
        params = _finite_number(pt["params"], f"points[{n}] ({label!r}) 'params'")
        if params <= 0:
            raise ValueError(f"points[{n}] ({label!r}) 'params' must be > 0 for the log axis, "
                             f"got {pt['params']!r}")
        fpr95 = _finite_number(pt["fpr95"], f"points[{n}] ({label!r}) 'fpr95'")
        if fpr95 < 0:
            raise ValueError(f"points[{n}] ({label!r}) 'fpr95' must be >= 0 (percent), got {fpr95}")
        kept.append((label, params / 1e6, fpr95, kind))
    if not kept:
        raise ValueError("plot_fpr95_vs_parameters: no point with a known 'params' to plot"
                         + (f" (skipped: {skipped})" if skipped else ""))

    kinds: list[str] = []
    for _, _, _, kind in kept:
        if kind not in kinds:
            kinds.append(kind)
    styles, extra = {}, iter(_EXTRA_STYLES * (1 + len(kinds) // len(_EXTRA_STYLES)))
    for kind in kinds:
        styles[kind] = _KIND_STYLES.get(kind) or next(extra)

    fig, (ax,) = _new_figure(6.5, 4.8)
    for kind in kinds:
        xs = [x for _, x, _, k in kept if k == kind]
        ys = [v for _, _, v, k in kept if k == kind]
        marker, colour = styles[kind]
        ax.scatter(xs, ys, marker=marker, color=colour, s=110 if marker == "*" else 50,
                   label=kind, zorder=3, edgecolors="black", linewidths=0.5)
    ax.set_xscale("log")
    xs = np.array([x for _, x, _, _ in kept])
    ax.set_xlim(xs.min() / 2.0, xs.max() * 2.5)  # room for the labels on the right
    ax.set_ylim(0.0, max(v for _, _, v, _ in kept) * 1.15 + 0.5)
    ax.set_xlabel("parameters (millions, log scale)")
    ax.set_ylabel("FPR95 (%), lower is better")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    if adjust_text is None:
        log.warning("adjustText is not installed: %s has each label at its point (they may overlap)", path)
        for label, x, v, _ in kept:
            ax.annotate(label, (x, v), xytext=(5, 4), textcoords="offset points", fontsize="small")
    else:
        texts = [ax.text(x, v, label, fontsize="small") for label, x, v, _ in kept]
        # Methods of similar size and score sit on top of each other (the small descriptor
        # networks near 1 M parameters): adjustText moves the labels apart and off the points,
        # with a leader line to each label it moved far.
        # A fixed iteration limit, not adjustText's default of 1 s of wall time: with a time limit
        # the layout of a crowded chart depended on the machine's speed (the mini VIS-LWIR chart
        # needed 1,083 iterations and came out different on each rerun); converged layouts take
        # 19-23.
        adjust_text(texts, x=[x for _, x, _, _ in kept], y=[v for _, _, v, _ in kept], ax=ax, expand=(1.3, 1.6),
                    force_static=(0.5, 1.0), force_text=(0.3, 0.5), iter_lim=_ADJUST_TEXT_ITERATIONS,
                    arrowprops={"arrowstyle": "-", "color": "0.4", "lw": 0.5})
    _save_png(fig, path)
    return skipped
