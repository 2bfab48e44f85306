"""Figures: ROC curves with their FPR95, and per-epoch training curves.

Figures are built on a bare :class:`matplotlib.figure.Figure` (Agg canvas) instead of ``pyplot``, so
no display or global backend switch is needed and nothing leaks between calls. Every PNG is written
to a temporary file beside its target and renamed when complete (``kglnet.utils.io.atomic_path``).
"""

from __future__ import annotations

import math
import os
from typing import Mapping

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from kglnet.utils.io import atomic_path

__all__ = ["plot_roc", "plot_training_curves"]

_DPI = 120


def _new_figure(width: float, height: float, ncols: int = 1):
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)  # attaches itself to the figure
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _save_png(fig: Figure, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        # The temp name ends in ".png.tmp", so the format must be given explicitly.
        fig.savefig(tmp, format="png")


def plot_roc(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], path, title: str) -> None:
    """Plot ROC curves into one PNG.

    Args:
        curves: label -> ``(fpr [K], tpr [K], fpr95_percent)``; ``fpr``/``tpr`` as fractions in
            [0, 1] (e.g. from :func:`kglnet.evaluation.fpr95.roc_points`), FPR95 in percent (may be
            None/NaN if unknown).
        path: output PNG path.
        title: figure title.
    """
    if not curves:
        raise ValueError("plot_roc needs at least one curve")
    fig, (ax,) = _new_figure(6.0, 5.0)
    for label, (fpr, tpr, f95) in curves.items():
        fpr = np.asarray(fpr, dtype=np.float64)
        tpr = np.asarray(tpr, dtype=np.float64)
        if fpr.shape != tpr.shape or fpr.ndim != 1:
            raise ValueError(f"curve {label!r}: fpr and tpr must be 1-D of equal length, "
                             f"got {fpr.shape} and {tpr.shape}")
        if f95 is None or not math.isfinite(float(f95)):
            legend = f"{label} (FPR95 n/a)"
        else:
            legend = f"{label} (FPR95 {float(f95):.2f}%)"
        (line,) = ax.plot(fpr, tpr, linewidth=1.5, label=legend)
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
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    _save_png(fig, path)


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
