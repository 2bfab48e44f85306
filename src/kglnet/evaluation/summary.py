"""One dataset's results across seeds and protocols, beside the paper's numbers.

Inputs are the metrics records of ``kglnet evaluate`` / ``kglnet baseline`` (one per trained run,
i.e. model and seed, and one per hand-crafted method) and the training histories of the runs.

Two protocols (SPEC section 5):

* ``validation`` (honest): the checkpoint selected on the validation split, scored on the test
  sets (the metrics records).
* ``paper``: the reference's protocol, the epoch with the best mean **test** FPR95 over all epochs,
  read from the per-epoch test scores the training history holds when training monitored the test
  sets. It is optimistic by construction and labelled as such. Hand-crafted methods have no epochs:
  both protocols give the same number.

Each method reports one branch: ``metric`` unless its record says otherwise (``reported``), e.g. a
descriptor-only ablation. Across seeds a value is summarised as mean, sample standard deviation
(None for one seed) and the number of seeds.
"""

from __future__ import annotations

import csv
import math
import statistics
from typing import Any, Mapping, Sequence

from ..utils.io import atomic_path, atomic_write_text
from .paper import load_paper_results, paper_numbers

__all__ = ["PROTOCOLS", "paper_protocol_scores", "summarize", "write_summary_tables"]

PROTOCOLS = ("validation", "paper")
_PROTOCOL_LABEL = {
    "validation": "ours, honest protocol (checkpoint chosen on validation)",
    "paper": "ours, paper's protocol (best epoch chosen on the test sets)",
}


def paper_protocol_scores(history: Sequence[Mapping], branch: str) -> dict | None:
    """The epoch with the lowest mean test FPR95 of ``branch`` and its per-test-set values.

    Args:
        history: per-epoch entries; those with a ``"test"`` mapping ``{test set: {"fpr95_metric",
            "fpr95_descriptor"}}`` count (training run with test sets monitored).
        branch: "metric" or "descriptor".

    Returns:
        ``{"epoch": int, "test_sets": {name: value}}`` (ties go to the earliest epoch), or None when
        no epoch has test scores.
    """
    key = f"fpr95_{branch}"
    best = None
    for entry in history:
        tests = entry.get("test")
        if not tests:
            continue
        values = {name: scores.get(key) for name, scores in tests.items()}
        if any(v is None for v in values.values()):
            continue
        mean = math.fsum(values.values()) / len(values)
        if best is None or mean < best[0]:
            best = (mean, {"epoch": int(entry["epoch"]), "test_sets": values})
    return None if best is None else best[1]


def _stats(values: Sequence[float]) -> dict:
    return {
        "mean": math.fsum(values) / len(values),
        "std": statistics.stdev(values) if len(values) > 1 else None,
        "n": len(values),
    }


def _aggregate(per_seed: list[dict[str, float]], test_sets: list[str]) -> dict:
    """Per test set and for the mean over test sets: stats across seeds."""
    out = {name: _stats([run[name] for run in per_seed]) for name in test_sets}
    out["mean"] = _stats([math.fsum(run[n] for n in test_sets) / len(test_sets) for run in per_seed])
    return out


def summarize(dataset: str, records: Sequence[dict], histories: Mapping[tuple[str, int], Sequence],
              *, paper_table: str | None = None, paper_methods: Mapping[str, str] | None = None,
              ) -> dict:
    """Aggregate one dataset's records over seeds, for both protocols, beside the paper.

    Args:
        dataset: the dataset name (every record must be of it).
        records: validated metrics records; trained runs carry ``seed`` (an int), hand-crafted
            methods have none. Methods keep the order of their first record.
        histories: ``(model, seed)`` -> that run's training history.
        paper_table: "visnir", "vislwir" or "os" to compare with; None for none.
        paper_methods: model name -> the paper's method name (e.g. ``{"kglnet": "KGL-Net"}``).

    Returns:
        ``{"dataset", "test_sets", "paper_table", "paper_source", "methods": {model: {"label",
        "kind", "branch", "seeds", "validation": stats, "paper": stats | None, "paper_epochs",
        "published": {test set: value} | None}}}`` where stats maps each test set and ``"mean"``
        to ``{"mean", "std", "n"}``.

    Raises:
        ValueError: records of another dataset, a duplicated (model, seed), records of one model
            with different test sets or branches, a trained run without its history.
    """
    if not records:
        raise ValueError(f"{dataset}: no metrics records to summarise")
    paper_methods = dict(paper_methods or {})
    grouped: dict[str, list[dict]] = {}
    for rec in records:
        if rec["dataset"] != dataset:
            raise ValueError(f"record of model {rec['model']!r} is for dataset {rec['dataset']!r}, not {dataset!r}")
        grouped.setdefault(rec["model"], []).append(rec)
    test_sets = list(records[0]["test_sets"])
    methods: dict[str, dict] = {}
    for model, recs in grouped.items():
        seeds = [r.get("seed") for r in recs]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{dataset}/{model}: more than one record for seed {seeds}")
        trained = seeds[0] is not None
        if any((s is not None) != trained for s in seeds):
            raise ValueError(f"{dataset}/{model}: mixes trained (seeded) and hand-crafted records")
        branches = {r.get("reported", "metric") for r in recs}
        if len(branches) != 1:
            raise ValueError(f"{dataset}/{model}: records report different branches {sorted(branches)}")
        branch = branches.pop()
        key = f"fpr95_{branch}"
        honest, paper, epochs = [], [], []
        for rec in sorted(recs, key=lambda r: (r.get("seed") is None, r.get("seed"))):
            if list(rec["test_sets"]) != test_sets:
                raise ValueError(f"{dataset}/{model}: test sets {list(rec['test_sets'])} differ from {test_sets}")
            values = {n: rec["test_sets"][n][key] for n in test_sets}
            if any(v is None for v in values.values()):
                raise ValueError(f"{dataset}/{model}: no {branch} FPR95 on every test set")
            honest.append(values)
            if not trained:
                paper.append(values)
                continue
            run = (model, int(rec["seed"]))
            if run not in histories:
                raise ValueError(f"{dataset}/{model}: no training history for seed {rec['seed']}")
            best = paper_protocol_scores(histories[run], branch)
            if best is not None:
                if sorted(best["test_sets"]) != sorted(test_sets):
                    raise ValueError(f"{dataset}/{model} seed {rec['seed']}: the history monitored "
                                     f"{sorted(best['test_sets'])}, not the test sets {test_sets}")
                paper.append(best["test_sets"])
                epochs.append(best["epoch"])
        published = None
        if paper_table is not None and model in paper_methods:
            published = paper_numbers(paper_table, paper_methods[model])
        methods[model] = {
            "label": recs[0]["label"],
            "kind": "trained" if trained else "hand-crafted",
            "branch": branch,
            "seeds": sorted(s for s in seeds if s is not None),
            "validation": _aggregate(honest, test_sets),
            # Only when every seed has per-epoch test scores: a partial set would mix protocols.
            "paper": _aggregate(paper, test_sets) if len(paper) == len(honest) else None,
            "paper_epochs": epochs,
            "published": published,
        }
    return {
        "dataset": dataset,
        "test_sets": test_sets,
        "paper_table": paper_table,
        "paper_source": load_paper_results()["source"] if paper_table else None,
        "methods": methods,
    }


def _cell(stats: dict | None) -> str:
    if stats is None:
        return "—"
    text = f"{stats['mean']:.2f}"
    return text + (f" ± {stats['std']:.2f}" if stats["std"] is not None else "")


def _diff(stats: dict | None, published: float | None) -> str:
    if stats is None or published is None:
        return "—"
    return f"{stats['mean'] - published:+.2f}"


def write_summary_tables(summary: dict, md_path, csv_path, title: str, appendix: str = "") -> None:
    """Markdown: the reported FPR95 per method (both protocols), then, per method the paper
    reports, each test set beside the published number with the difference, then ``appendix``.
    CSV: one row per (method, test set, protocol) at full precision. Both written atomically."""
    names = summary["test_sets"] + (["mean"] if len(summary["test_sets"]) > 1 else [])
    methods = summary["methods"]
    lines = [f"# {title}", ""]
    lines.append("FPR95 in % (lower is better) of each method's reported branch, mean ± standard "
                 "deviation over seeds. Protocols:")
    lines += [f"- *{p}*: {_PROTOCOL_LABEL[p]}." for p in PROTOCOLS]
    lines.append("- Hand-crafted methods have no epochs: both protocols give the same number.")
    lines.append("")
    header = ["method", "branch", "seeds", "protocol"] + names
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|---|---|---:|---|" + "---:|" * len(names))
    for model, m in methods.items():
        for protocol in PROTOCOLS:
            stats = m[protocol]
            cells = [m["label"], m["branch"], str(len(m["seeds"]) or "—"), protocol]
            cells += [_cell(stats[n] if stats else None) for n in names]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if summary["paper_table"] is None:
        lines.append("The paper publishes no numbers for this dataset.")
    else:
        lines.append(f"## Beside the paper (table `{summary['paper_table']}`)")
        lines.append("")
        lines.append(f"Published numbers: {summary['paper_source']}. They come from the paper's "
                     "own datasets and its protocol; Δ = ours − paper.")
        compared = [(model, m) for model, m in methods.items() if m["published"]]
        if not compared:
            lines.append("")
            lines.append("None of these methods has a row in the paper's table.")
        for model, m in compared:
            lines += ["", f"### {m['label']}", ""]
            lines.append("| test set | paper | ours, paper's protocol | Δ | ours, honest protocol | Δ |")
            lines.append("|---|---:|---:|---:|---:|---:|")
            for n in names:
                pub = m["published"].get(n)
                paper_stats = m["paper"][n] if m["paper"] else None
                honest = m["validation"][n]
                lines.append(f"| {n} | {'—' if pub is None else f'{pub:.2f}'} | {_cell(paper_stats)} | "
                             f"{_diff(paper_stats, pub)} | {_cell(honest)} | {_diff(honest, pub)} |")
    atomic_write_text(md_path, "\n".join(lines) + "\n" + (f"\n{appendix}" if appendix else ""))

    columns = ["dataset", "method", "model", "branch", "test_set", "protocol", "mean", "std", "seeds",
               "paper", "diff"]
    with atomic_path(csv_path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            for model, m in methods.items():
                for n in names:
                    pub = (m["published"] or {}).get(n)
                    for protocol in PROTOCOLS:
                        stats = m[protocol][n] if m[protocol] else None
                        if stats is None:
                            continue
                        writer.writerow([
                            summary["dataset"], m["label"], model, m["branch"], n, protocol,
                            repr(stats["mean"]), "" if stats["std"] is None else repr(stats["std"]),
                            stats["n"], "" if pub is None else repr(pub),
                            "" if pub is None else repr(stats["mean"] - pub),
                        ])
