"""The paper's published numbers (``paper_results.yaml``), as data the tables compare against.

``load_paper_results()`` returns::

    {"source": str,
     "tables": {"visnir": {"test_sets": [...], "methods": {"KGL-Net": {"field": 1.0, ...,
                                                                       "mean": 0.54}, ...}},
                "vislwir": {...}, "os": {...}},
     "chart_visnir_mean": [{"method", "parameters_m", "fpr95"}, ...]}

A table that ``reports_mean`` has one more number per method than test sets: the paper's own mean,
kept as printed (it is not recomputed, so a rounding difference in the paper stays visible).
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

__all__ = ["PAPER_TABLES", "load_paper_results", "paper_numbers"]

PAPER_TABLES = ("visnir", "vislwir", "os")
_FILE = "paper_results.yaml"


def _check(raw: Any) -> dict:
    where = f"kglnet/evaluation/{_FILE}"
    if not isinstance(raw, dict) or not isinstance(raw.get("tables"), dict):
        raise ValueError(f"{where}: expected a mapping with 'source' and 'tables'")
    tables = {}
    for name, table in raw["tables"].items():
        test_sets = list(table["test_sets"])
        width = len(test_sets) + (1 if table.get("reports_mean") else 0)
        methods = {}
        for method, values in table["methods"].items():
            if len(values) != width or not all(
                isinstance(v, (int, float)) and math.isfinite(v) and 0 <= v <= 100 for v in values
            ):
                raise ValueError(f"{where}: table {name!r} method {method!r} needs {width} "
                                 f"percentages ({test_sets}{' + mean' if width > len(test_sets) else ''}), "
                                 f"got {values!r}")
            keys = test_sets + (["mean"] if width > len(test_sets) else [])
            methods[method] = {k: float(v) for k, v in zip(keys, values)}
        tables[name] = {"test_sets": test_sets, "methods": methods}
    return {"source": str(raw["source"]), "tables": tables,
            "chart_visnir_mean": list(raw.get("chart_visnir_mean", []))}


@lru_cache(maxsize=1)
def _cached() -> dict:
    text = resources.files("kglnet.evaluation").joinpath(_FILE).read_text(encoding="utf-8")
    return _check(yaml.safe_load(text))


def load_paper_results() -> dict:
    """The published numbers (a fresh copy; the file is parsed and checked once)."""
    import copy

    return copy.deepcopy(_cached())


def paper_numbers(table: str, method: str) -> dict[str, float] | None:
    """``{test set (and "mean" where printed): FPR95}`` of ``method`` in paper table ``table``;
    None when the paper has no such row. An unknown table is an error naming the known ones."""
    tables = _cached()["tables"]
    if table not in tables:
        raise ValueError(f"unknown paper table {table!r}; the paper has {', '.join(tables)}")
    row = tables[table]["methods"].get(method)
    return dict(row) if row is not None else None
