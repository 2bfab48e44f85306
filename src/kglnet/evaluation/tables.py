"""Results tables from per-(dataset, model) metrics records.

A metrics record is the content of ``results/metrics/<dataset>/<model>.json``::

    {"dataset": "builtin", "model": "kglnet", "label": "KGL-Net", "selection": "validation",
     "test_sets": {"test": {"file": "data/builtin/test.h5", "pairs": 2000,
                            "fpr95_descriptor": 12.3, "fpr95_metric": 8.1}},
     "mean": {"fpr95_descriptor": 12.3, "fpr95_metric": 8.1}}

All FPR95 values are percentages; ``null`` means "not available" (e.g. a model without a metric
branch). One table covers one dataset; rows are models in the order given, columns are the method
label, then both FPR95 definitions per test set, then their means over the test sets.
"""

from __future__ import annotations

import csv
import json
import math
import os
from typing import Any, Iterable

from kglnet.utils.io import atomic_path, atomic_write_text

__all__ = [
    "FPR95_KEYS",
    "build_table",
    "load_records",
    "markdown_table",
    "mean_over_test_sets",
    "validate_record",
    "write_tables",
]

FPR95_KEYS = ("fpr95_descriptor", "fpr95_metric")
_SHORT = {"fpr95_descriptor": "descriptor", "fpr95_metric": "metric"}
_REQUIRED = ("dataset", "model", "label", "selection", "test_sets")
_MEAN_TOL = 1e-6  # stored means must agree with the recomputed ones (percent units)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def mean_over_test_sets(test_sets: dict) -> dict:
    """Mean of each FPR95 key over the test sets.

    Args:
        test_sets: name -> ``{"fpr95_descriptor": float | None, "fpr95_metric": float | None, ...}``.

    Returns:
        ``{"fpr95_descriptor": mean | None, "fpr95_metric": mean | None}`` (plus any other key
        starting with ``fpr95`` found in the test sets); a mean is None when any test set lacks the
        value or has None, so a partial mean is never passed off as a full one.
    """
    if not test_sets:
        raise ValueError("test_sets is empty; nothing to average")
    keys = list(FPR95_KEYS)
    for entry in test_sets.values():
        keys += [k for k in entry if k.startswith("fpr95") and k not in keys]
    out: dict[str, float | None] = {}
    for key in keys:
        vals = [entry.get(key) for entry in test_sets.values()]
        if all(_is_number(v) for v in vals):
            out[key] = math.fsum(float(v) for v in vals) / len(vals)
        else:
            out[key] = None
    return out


def validate_record(record: Any, source: str = "record") -> None:
    """Check one metrics record; raise ValueError prefixed with ``source`` on any problem.

    Required: ``dataset``, ``model``, ``label``, ``selection`` (non-empty strings) and a non-empty
    ``test_sets`` mapping whose entries carry ``fpr95_descriptor`` and ``fpr95_metric`` (a finite
    number in [0, 100] or null). ``pairs``, when present, must be a positive integer. ``mean``, when
    present, must agree with :func:`mean_over_test_sets`.
    """
    if not isinstance(record, dict):
        raise ValueError(f"{source}: a metrics record must be a JSON object, got "
                         f"{type(record).__name__}")
    missing = [k for k in _REQUIRED if k not in record]
    if missing:
        raise ValueError(f"{source}: missing required key(s) {missing}")
    for k in ("dataset", "model", "label", "selection"):
        if not isinstance(record[k], str) or not record[k]:
            raise ValueError(f"{source}: {k!r} must be a non-empty string, got {record[k]!r}")
    test_sets = record["test_sets"]
    if not isinstance(test_sets, dict) or not test_sets:
        raise ValueError(f"{source}: 'test_sets' must be a non-empty object")
    for name, entry in test_sets.items():
        if not isinstance(entry, dict):
            raise ValueError(f"{source}: test set {name!r} must be an object")
        for key in FPR95_KEYS:
            if key not in entry:
                raise ValueError(f"{source}: test set {name!r} lacks {key!r} (use null if n/a)")
            v = entry[key]
            if v is not None and not (_is_number(v) and 0.0 <= v <= 100.0):
                raise ValueError(f"{source}: test set {name!r} {key} must be a percentage in "
                                 f"[0, 100] or null, got {v!r}")
        if "pairs" in entry and not (isinstance(entry["pairs"], int)
                                     and not isinstance(entry["pairs"], bool)
                                     and entry["pairs"] > 0):
            raise ValueError(f"{source}: test set {name!r} 'pairs' must be a positive integer, "
                             f"got {entry['pairs']!r}")
    if "mean" in record:
        stored = record["mean"]
        if not isinstance(stored, dict):
            raise ValueError(f"{source}: 'mean' must be an object")
        expected = mean_over_test_sets(test_sets)
        for key in FPR95_KEYS:
            got, want = stored.get(key), expected[key]
            ok = (got is None and want is None) or (
                _is_number(got) and want is not None and abs(got - want) <= _MEAN_TOL)
            if not ok:
                raise ValueError(f"{source}: mean {key} is {got!r} but the test sets give {want!r}")


def load_records(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """Read and validate metrics records, in the given order.

    Raises:
        ValueError: naming the file, when it is not valid JSON or not a valid record.
    """
    records = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                record = json.load(handle)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{os.fspath(path)}: not valid JSON ({exc})") from exc
        validate_record(record, source=os.fspath(path))
        records.append(record)
    return records


def _column(test_set: str, key: str) -> str:
    return f"{test_set} {_SHORT[key]}"


def _test_set_names(records: list[dict]) -> list[str]:
    # Union in order of first appearance: records normally share the same test sets, and keeping the
    # producer's order (e.g. the paper's scene order) beats sorting.
    names: list[str] = []
    for rec in records:
        names += [n for n in rec["test_sets"] if n not in names]
    return names


def build_table(records: list[dict]) -> list[dict]:
    """One row per record (model), in the given order.

    Args:
        records: validated metrics records, all of one dataset.

    Returns:
        Rows as ordered dicts: ``method`` (the label), ``model``, ``selection``, then
        ``"<test set> descriptor"`` and ``"<test set> metric"`` per test set, then
        ``"mean descriptor"`` and ``"mean metric"``. Values are floats or None (a test set missing
        from a record gives None, and then its mean is None too). The mean is recomputed from the
        test sets, not copied, so it cannot disagree with the row.
    """
    if not records:
        raise ValueError("build_table needs at least one record")
    for i, rec in enumerate(records):
        validate_record(rec, source=f"record {i}")
    datasets = sorted({rec["dataset"] for rec in records})
    if len(datasets) > 1:
        raise ValueError(f"one table covers one dataset; records mix {datasets}")
    seen: set[tuple[str, str]] = set()
    for rec in records:
        key = (rec["model"], rec["selection"])
        if key in seen:
            raise ValueError(f"duplicate record for model {key[0]!r} with selection {key[1]!r}")
        seen.add(key)
    names = _test_set_names(records)
    rows = []
    for rec in records:
        row: dict[str, Any] = {"method": rec["label"], "model": rec["model"],
                               "selection": rec["selection"]}
        full = {n: rec["test_sets"].get(n, {}) for n in names}
        for n in names:
            for key in FPR95_KEYS:
                row[_column(n, key)] = full[n].get(key)
        mean = mean_over_test_sets(full)
        for key in FPR95_KEYS:
            row[f"mean {_SHORT[key]}"] = mean[key]
        rows.append(row)
    return rows


def _fmt(v: Any) -> str:
    return "—" if v is None else f"{v:.2f}"


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _legend(records: list[dict]) -> list[str]:
    lines = [
        "FPR95 in %: the false-positive rate at the threshold that accepts 95% of the true matches; "
        "lower is better. \"—\" = not available.",
        "",
        "- *descriptor*: Euclidean distance between L2-normalised descriptors; threshold = sorted "
        "positive distance at index ceil(0.95 * n_pos) (as the reference code).",
        "- *metric*: metric-branch match probability; FPR linearly interpolated at TPR = 0.95 on the "
        "ROC curve (the number the paper reports).",
        "- Hand-crafted methods (NCC, SIFT) have no metric branch: both columns come from the same "
        "distance (metric column on score = -distance).",
        "- *mean*: mean over the test sets.",
    ]
    selections = sorted({rec["selection"] for rec in records})
    lines.append(f"- Checkpoint selection: {', '.join(selections)}.")
    sizes = []
    for name in _test_set_names(records):
        pairs = {rec["test_sets"][name].get("pairs") for rec in records if name in rec["test_sets"]}
        if len(pairs) == 1 and None not in pairs:
            sizes.append(f"{name} {pairs.pop()}")
    if sizes:
        lines.append(f"- Pairs per test set: {', '.join(sizes)}.")
    return lines


def markdown_table(records: list[dict]) -> str:
    """The :func:`build_table` rows as a Markdown table (2 decimals, "—" for None) and its legend."""
    rows = build_table(records)
    numeric = [c for c in rows[0] if c not in ("method", "model", "selection")]
    lines = ["| " + " | ".join(_md_cell(c) for c in ["method"] + numeric) + " |"]
    lines.append("|" + "---|" + "---:|" * len(numeric))
    for row in rows:
        cells = [_md_cell(row["method"])] + [_fmt(row[c]) for c in numeric]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += _legend(records)
    return "\n".join(lines) + "\n"


def write_tables(records: list[dict], md_path, csv_path, title: str) -> None:
    """Write the results table as Markdown (2 decimals, "—" for None, legend) and CSV.

    The CSV has the same columns as :func:`build_table` (``method``, ``model``, ``selection``, then
    the numbers) at full precision (``repr`` of the float, exact round trip; empty cell for None).
    Both files are written atomically.
    """
    rows = build_table(records)
    columns = list(rows[0].keys())
    numeric = [c for c in columns if c not in ("method", "model", "selection")]
    atomic_write_text(md_path, f"# {title}\n\n" + markdown_table(records))

    with atomic_path(csv_path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            for row in rows:
                writer.writerow(["" if row[c] is None else
                                 (repr(float(row[c])) if c in numeric else row[c])
                                 for c in columns])
