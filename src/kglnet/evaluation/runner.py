"""Evaluation runs: a checkpoint or a hand-crafted method on pair files -> metrics, ROC, report.

Any HDF5 file of the pair-file contract is accepted, whoever made it; it is validated before use
and must hold both positives and negatives.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..checkpoint import load_model
from ..data import read_pairs
from ..inference import resolve_device, score_pairs
from ..utils.io import atomic_write_json
from .fpr95 import fpr95_descriptor, fpr95_metric, roc_points
from .handcrafted import HANDCRAFTED
from .plots import plot_roc, plot_training_curves
from .tables import load_records, mean_over_test_sets, write_tables

Results = dict[str, dict[str, Any]]
Rocs = dict[str, dict[str, dict[str, list[float]]]]


def _curve(scores: np.ndarray, labels: np.ndarray) -> dict[str, list[float]]:
    fpr, tpr = roc_points(scores, labels)
    return {"fpr": [round(float(v), 6) for v in fpr], "tpr": [round(float(v), 6) for v in tpr]}


def _score_file(name: str, path: str, labels: np.ndarray, distance: np.ndarray, probability: np.ndarray | None,
                seconds: float) -> tuple[dict[str, Any], dict[str, dict[str, list[float]]]]:
    """Both FPR95 definitions for one file: descriptor on distances, metric on probabilities
    (for a method without a metric branch, on ``-distance``, i.e. the same ranking)."""
    scores = probability if probability is not None else -distance
    result = {
        "file": str(path), "test_set": name, "pairs": int(len(labels)),
        "positives": int(labels.sum()), "negatives": int(len(labels) - labels.sum()),
        "fpr95_descriptor": fpr95_descriptor(distance, labels),
        "fpr95_metric": fpr95_metric(scores, labels),
        "pairs_per_s": len(labels) / seconds if seconds > 0 else None,
    }
    roc = {"descriptor": _curve(-distance, labels)}
    if probability is not None:
        roc["metric"] = _curve(probability, labels)
    return result, roc


def evaluate_checkpoint(checkpoint: str | os.PathLike, files: Sequence[str], names: Sequence[str],
                        batch_size: int = 512, device: str = "auto") -> tuple[Results, Rocs]:
    """Score a trained checkpoint on each pair file."""
    dev = resolve_device(device)
    model, _ = load_model(checkpoint, device=dev)
    pair_sets = [read_pairs(f, require_both_labels=True) for f in files]  # all validated before any work
    results: Results = {}
    rocs: Rocs = {}
    for name, path, pairs in zip(names, files, pair_sets):
        t0 = time.perf_counter()
        scores = score_pairs(model, pairs.left, pairs.right, batch_size=batch_size, device=dev)
        seconds = time.perf_counter() - t0
        results[name], rocs[name] = _score_file(name, path, pairs.label, scores["distance"], scores["probability"], seconds)
        results[name]["device"] = str(dev)
    return results, rocs


def evaluate_handcrafted(method: str, files: Sequence[str], names: Sequence[str]) -> tuple[Results, Rocs]:
    """Score a hand-crafted method (``ncc`` or ``sift``) on each pair file."""
    if method not in HANDCRAFTED:
        raise ValueError(f"unknown hand-crafted method {method!r}; allowed: {sorted(HANDCRAFTED)}")
    distance_fn = HANDCRAFTED[method]
    pair_sets = [read_pairs(f, require_both_labels=True) for f in files]
    results: Results = {}
    rocs: Rocs = {}
    for name, path, pairs in zip(names, files, pair_sets):
        t0 = time.perf_counter()
        distance = np.asarray(distance_fn(pairs.left, pairs.right), dtype=np.float64)
        seconds = time.perf_counter() - t0
        results[name], rocs[name] = _score_file(name, path, pairs.label, distance, None, seconds)
    return results, rocs


def _write_roc(path: str | os.PathLike, model: str, rocs: Rocs, branch: str) -> None:
    # A flat list of points per file and branch: the form `dvc plots` renders directly (x: fpr, y: tpr).
    points = [
        {"model": model, "test_set": name, "branch": branch, "fpr": fpr, "tpr": tpr}
        for name, branches in rocs.items()
        for fpr, tpr in zip(branches[branch]["fpr"], branches[branch]["tpr"])
    ]
    atomic_write_json(path, points)


def write_outputs(results: Results, rocs: Rocs, *, metrics_out: str | os.PathLike, dataset: str, model: str,
                  label: str | None, selection: str, roc_out: str | os.PathLike | None = None,
                  roc_descriptor_out: str | os.PathLike | None = None,
                  checkpoint: str | os.PathLike | None = None) -> dict[str, Any]:
    """Write the metrics record (``results/metrics/<dataset>/<model>.json``) and ROC points.

    ``roc_out`` gets the reported curve: the metric branch where the method has one, else the
    descriptor distance; ``roc_descriptor_out`` the descriptor-branch curve of a two-branch model.
    """
    test_sets = {name: {k: v for k, v in r.items() if k != "test_set"} for name, r in results.items()}
    record = {
        "dataset": dataset, "model": model, "label": label or model, "selection": selection,
        "test_sets": test_sets, "mean": mean_over_test_sets(test_sets),
    }
    if checkpoint is not None:
        record["checkpoint"] = str(checkpoint)
    atomic_write_json(metrics_out, record)
    has_metric = all("metric" in branches for branches in rocs.values())
    if roc_out is not None:
        _write_roc(roc_out, model, rocs, "metric" if has_metric else "descriptor")
    if roc_descriptor_out is not None:
        if not has_metric:
            raise ValueError(f"{model} has no metric branch: its only ROC curve goes to roc_out")
        _write_roc(roc_descriptor_out, model, rocs, "descriptor")
    return record


def make_report(dataset: str, *, metrics: Sequence[Path], roc: Sequence[Path], histories: Sequence[Path],
                table_md: Path, table_csv: Path, figures_dir: Path) -> None:
    """Tables for one dataset, one ROC figure per test set, one training-curve figure per model."""

    records = load_records(metrics)
    write_tables(records, table_md, table_csv, title=f"FPR95 on `{dataset}` (%, lower is better)")
    figures_dir = Path(figures_dir)
    curves_by_set: dict[str, dict[str, tuple[np.ndarray, np.ndarray, float | None]]] = {}
    records_by_model = {r["model"]: r for r in records}
    grouped: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for path in roc:
        for point in json.loads(Path(path).read_text()):
            if point["model"] not in records_by_model:
                raise ValueError(f"{path}: no metrics record for model {point['model']!r} among {sorted(records_by_model)}")
            key = (point["test_set"], point["model"], point["branch"])
            grouped.setdefault(key, []).append((point["fpr"], point["tpr"]))
    branches_of: dict[str, set[str]] = {}
    for _, model, branch in grouped:
        branches_of.setdefault(model, set()).add(branch)
    for (test_set, model, branch), pts in grouped.items():
        record = records_by_model[model]
        fpr, tpr = np.asarray(pts).T
        label = record["label"] if len(branches_of[model]) == 1 else f"{record['label']} ({branch})"
        curves_by_set.setdefault(test_set, {})[label] = (fpr, tpr, record["test_sets"][test_set][f"fpr95_{branch}"])
    for test_set, curves in curves_by_set.items():
        plot_roc(curves, figures_dir / f"roc_{test_set}.png", title=f"ROC on {dataset} / {test_set}")
    for path in histories:
        history = json.loads(Path(path).read_text())
        plot_training_curves(history, figures_dir / f"training_{Path(path).stem}.png", title=f"{Path(path).stem} on {dataset}")
