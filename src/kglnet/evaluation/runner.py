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

from ..data import read_pairs
from ..utils.io import atomic_write_json
from .fpr95 import fpr95_descriptor, fpr95_metric, roc_points
from .handcrafted import HANDCRAFTED
from .paper import load_paper_results
from .plots import (
    operating_threshold,
    plot_fpr95_vs_parameters,
    plot_match_grid,
    plot_roc,
    plot_seed_spread,
    plot_training_curves,
)
from .summary import summarize, write_summary_tables
from .tables import load_records, markdown_table, mean_over_test_sets

Results = dict[str, dict[str, Any]]
Rocs = dict[str, dict[str, dict[str, list[float]]]]


def _curve(scores: np.ndarray, labels: np.ndarray) -> dict[str, list[float]]:
    fpr, tpr = roc_points(scores, labels)
    return {"fpr": [round(float(v), 6) for v in fpr], "tpr": [round(float(v), 6) for v in tpr]}


def _score_file(name: str, path: str, labels: np.ndarray, distance: np.ndarray | None,
                probability: np.ndarray | None, seconds: float,
                ) -> tuple[dict[str, Any], dict[str, dict[str, list[float]]]]:
    """Both FPR95 definitions for one file: descriptor on distances, metric on probabilities
    (for a method without a metric branch, on ``-distance``, i.e. the same ranking; a metric-only
    model has no descriptor FPR95)."""
    scores = probability if probability is not None else -distance
    result = {
        "file": str(path), "test_set": name, "pairs": int(len(labels)),
        "positives": int(labels.sum()), "negatives": int(len(labels) - labels.sum()),
        "fpr95_descriptor": fpr95_descriptor(distance, labels) if distance is not None else None,
        "fpr95_metric": fpr95_metric(scores, labels),
        "pairs_per_s": len(labels) / seconds if seconds > 0 else None,
    }
    roc = {}
    if distance is not None:
        roc["descriptor"] = _curve(-distance, labels)
    if probability is not None:
        roc["metric"] = _curve(probability, labels)
    return result, roc


def evaluate_checkpoint(checkpoint: str | os.PathLike, files: Sequence[str], names: Sequence[str],
                        batch_size: int = 512, device: str = "auto",
                        grid_dir: str | os.PathLike | None = None) -> tuple[Results, Rocs]:
    """Score a trained checkpoint on each pair file.

    With ``grid_dir``, also draw the paper's qualitative figure per test set,
    ``<grid_dir>/matches_<test set>.png``: pairs correctly matched, correctly rejected, falsely
    matched and missed at the 95 %-TPR operating point of the branch the run is reported on.
    """
    # Imported here: the hand-crafted baselines and the reports need no torch (2.5 s to import).
    from ..checkpoint import load_model
    from ..inference import resolve_device, score_pairs

    dev = resolve_device(device)
    model, state = load_model(checkpoint, device=dev)
    branch = (state.get("config") or {}).get("select_on", "metric")
    pair_sets = [read_pairs(f, require_both_labels=True) for f in files]  # all validated before any work
    results: Results = {}
    rocs: Rocs = {}
    for name, path, pairs in zip(names, files, pair_sets):
        t0 = time.perf_counter()
        scores = score_pairs(model, pairs.left, pairs.right, batch_size=batch_size, device=dev)
        seconds = time.perf_counter() - t0
        results[name], rocs[name] = _score_file(name, path, pairs.label, scores["distance"], scores["probability"], seconds)
        results[name]["device"] = str(dev)
        if grid_dir is not None:
            if scores["probability"] is not None and (branch == "metric" or scores["distance"] is None):
                score, higher = scores["probability"], True
            else:
                score, higher = scores["distance"], False
            threshold = operating_threshold(score, pairs.label, higher_is_match=higher)
            counts = plot_match_grid(
                pairs.left, pairs.right, pairs.label, score, threshold,
                Path(grid_dir) / f"matches_{name}.png",
                title=f"{state['model_name']} ({'metric' if higher else 'descriptor'} branch) on {name} at 95% TPR",
                higher_is_match=higher,
            )
            results[name]["operating_point"] = {"branch": "metric" if higher else "descriptor",
                                                "threshold": float(threshold), **counts}
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


def checkpoint_facts(checkpoint: str | os.PathLike) -> dict[str, Any]:
    """What a metrics record says about the run behind a checkpoint: its path, architecture,
    parameter count, training seed, selected epoch and the branch it is selected (and reported)
    on, so tables can group seeds and report each model on its own branch."""
    from ..checkpoint import read_checkpoint
    from ..models import count_parameters, create_model

    state = read_checkpoint(checkpoint)
    config = state.get("config") or {}
    model = create_model(state["model_name"], **state.get("model_kwargs", {}))
    return {
        "checkpoint": str(checkpoint),
        "architecture": state["model_name"],
        "parameters": count_parameters(model),
        "seed": config.get("seed"),
        "epoch": state.get("epoch"),
        # A two-branch model reports the branch it was selected on; a single-branch model its own.
        "reported": ("descriptor" if config.get("select_on") == "descriptor"
                     else getattr(model, "reported_branch", "metric")),
    }


def write_outputs(results: Results, rocs: Rocs, *, metrics_out: str | os.PathLike, dataset: str, model: str,
                  label: str | None, selection: str, roc_out: str | os.PathLike | None = None,
                  roc_descriptor_out: str | os.PathLike | None = None,
                  checkpoint: str | os.PathLike | None = None) -> dict[str, Any]:
    """Write the metrics record (``results/metrics/<dataset>/<model>.json``) and ROC points.

    ``roc_out`` gets the reported curve: the metric branch where the method has one, else the
    descriptor distance; ``roc_descriptor_out`` the descriptor-branch curve of a two-branch model
    (an empty list for a model with one branch).
    """
    test_sets = {name: {k: v for k, v in r.items() if k != "test_set"} for name, r in results.items()}
    record = {
        "dataset": dataset, "model": model, "label": label or model, "selection": selection,
        "test_sets": test_sets, "mean": mean_over_test_sets(test_sets),
    }
    if checkpoint is not None:
        record.update(checkpoint_facts(checkpoint))
    atomic_write_json(metrics_out, record)
    has_metric = all("metric" in branches for branches in rocs.values())
    has_descriptor = all("descriptor" in branches for branches in rocs.values())
    if roc_out is not None:
        _write_roc(roc_out, model, rocs, "metric" if has_metric else "descriptor")
    if roc_descriptor_out is not None:
        # The second curve exists only for a two-branch model; a single-branch model gets an empty
        # list, so a workflow can declare the file for every model.
        if has_metric and has_descriptor:
            _write_roc(roc_descriptor_out, model, rocs, "descriptor")
        else:
            atomic_write_json(roc_descriptor_out, [])
    return record


def _run_of(path: str | os.PathLike) -> tuple[str, int]:
    """(model, seed) of a run file laid out as ``.../<model>/seed<N>.json`` (the workflow's
    layout for training histories, metrics and ROC points of a run)."""
    path = Path(path)
    stem = path.name.split(".")[0]
    if not stem.startswith("seed") or not stem[4:].isdigit():
        raise ValueError(f"{path}: a run file must be named <model>/seed<N>.json")
    return path.parent.name, int(stem[4:])


def report_roc_curves(summary: dict, records: Sequence[dict], roc: Sequence[Path]
                      ) -> tuple[dict[str, dict[str, tuple[np.ndarray, np.ndarray, float | None]]], dict[str, set[str]]]:
    """The ROC figures' curves: each method's first seed (every branch its ROC files hold) and the
    hand-crafted methods, per test set.

    Args:
        summary: :func:`~kglnet.evaluation.summary.summarize`'s output for ``records``.
        records: the metrics records (``load_records``).
        roc: ROC point files (``[{"model", "test_set", "branch", "fpr", "tpr"}, ...]``).

    Returns:
        ``(curves, dashed)``: test set -> label -> ``(fpr, tpr, fpr95)`` for
        :func:`~kglnet.evaluation.plots.plot_roc`, and test set -> the labels to dash (the
        descriptor branch of a model with two). A model with one curve is labelled by its name
        and shows the FPR95 of the branch the tables report: a hand-crafted method's one distance
        is stored as its descriptor ROC, while the tables report its FPR95 interpolated on that
        same curve (the metric column), so the legend and the table give one number.

    Raises:
        ValueError: a ROC file names a model without a metrics record.
    """
    grouped: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for path in roc:
        for point in json.loads(Path(path).read_text()):
            if point["model"] not in summary["methods"]:
                raise ValueError(f"{path}: no metrics record for model {point['model']!r} among {sorted(summary['methods'])}")
            key = (point["test_set"], point["model"], point["branch"])
            grouped.setdefault(key, []).append((point["fpr"], point["tpr"]))
    branches_of: dict[str, set[str]] = {}
    for _, model, branch in grouped:
        branches_of.setdefault(model, set()).add(branch)
    first_seed = {}
    for rec in records:
        first_seed.setdefault(rec["model"], rec)
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray, float | None]]] = {}
    dashed: dict[str, set[str]] = {}
    for (test_set, model, branch), pts in grouped.items():
        record = first_seed[model]
        fpr, tpr = np.asarray(pts).T
        two_branches = len(branches_of[model]) > 1
        label = f"{record['label']} ({branch})" if two_branches else record["label"]
        if record.get("seed") is not None:
            label += f", seed {record['seed']}"
        shown = branch if two_branches else summary["methods"][model]["branch"]
        curves.setdefault(test_set, {})[label] = (fpr, tpr, record["test_sets"][test_set][f"fpr95_{shown}"])
        if two_branches and branch == "descriptor":
            dashed.setdefault(test_set, set()).add(label)
    return curves, dashed


def make_report(dataset: str, *, metrics: Sequence[Path], roc: Sequence[Path], histories: Sequence[Path],
                table_md: Path, table_csv: Path, figures_dir: Path, summary_out: Path | None = None,
                paper_table: str | None = None, paper_methods: dict[str, str] | None = None) -> dict:
    """Tables, summary and figures of one dataset.

    Writes ``table_md`` / ``table_csv`` (:func:`~kglnet.evaluation.summary.write_summary_tables`:
    both protocols, mean ± std over seeds, the paper's numbers beside ours, then both branches of
    every run), ``summary_out`` (the JSON DVC tracks as metrics) and, in ``figures_dir``, one ROC
    figure per test set (:func:`report_roc_curves`), one training-curve figure per run, FPR95
    against parameter count and, where a method has several seeds, FPR95 per seed
    (``fpr95_seeds.png``).
    Histories are ``<model>/seed<N>.json`` files; ROC files hold their model in every point.
    """
    records = load_records(metrics)
    histories_by_run = {_run_of(path): json.loads(Path(path).read_text()) for path in histories}
    summary = summarize(dataset, records, histories_by_run, paper_table=paper_table,
                        paper_methods=paper_methods)
    # Both branches of every run below the summary (the CSV holds the summary only).
    by_run = []
    for rec in records:
        row = dict(rec)
        if rec.get("seed") is not None:
            row["label"] = f"{rec['label']} (seed {rec['seed']})"
            row["model"] = f"{rec['model']}/seed{rec['seed']}"
        by_run.append(row)
    write_summary_tables(summary, table_md, table_csv, title=f"FPR95 on `{dataset}` (%, lower is better)",
                         appendix="## Every run, both branches\n\n" + markdown_table(by_run))
    if summary_out is not None:
        atomic_write_json(summary_out, summary)

    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    curves_by_set, dashed_by_set = report_roc_curves(summary, records, roc)
    for test_set, curves in curves_by_set.items():
        plot_roc(curves, figures_dir / f"roc_{test_set}.png", title=f"ROC on {dataset} / {test_set}",
                 dashed=dashed_by_set.get(test_set, ()))
    for (model, seed), history in histories_by_run.items():
        plot_training_curves(history, figures_dir / f"training_{model}_seed{seed}.png",
                             title=f"{model}, seed {seed}, on {dataset}")
    # Seed spread (validation protocol, reported branch, mean over the test sets) where a method
    # has several seeds: the tables give mean ± std, the dots show each run.
    per_seed: dict[str, list[float]] = {}
    for rec in records:
        method = summary["methods"][rec["model"]]
        if method["kind"] == "trained" and rec.get("seed") is not None:
            value = mean_over_test_sets(rec["test_sets"]).get(f"fpr95_{method['branch']}")
            if value is not None:
                per_seed.setdefault(f"{method['label']} [{method['branch']}]", []).append(value)
    if any(len(v) > 1 for v in per_seed.values()):
        plot_seed_spread(per_seed, figures_dir / "fpr95_seeds.png",
                         title=f"FPR95 per seed on {dataset}\n(reported branch, validation protocol, mean over test sets)")
    points = []
    for model, method in summary["methods"].items():
        params = next((r.get("parameters") for r in records if r["model"] == model), None)
        if method["kind"] == "trained" and params:
            points.append({"label": method["label"], "params": params, "kind": "ours",
                           "fpr95": method["validation"]["mean"]["mean"]})
    if paper_table == "visnir":
        points += [{"label": p["method"], "params": p["parameters_m"] * 1e6, "kind": "paper",
                    "fpr95": p["fpr95"]} for p in load_paper_results()["chart_visnir_mean"]]
    if points:
        plot_fpr95_vs_parameters(points, figures_dir / "fpr95_vs_parameters.png",
                                 title=f"Mean FPR95 against size on {dataset}")
    return summary
