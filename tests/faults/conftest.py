"""Fault-injection suite (issue 8): fixtures, and the registry of every fault tried.

Each test of tests/faults/ is one fault class, parametrized with one row per fault. A row asks
for the ``fault`` fixture, which registers it in :data:`FAULTS` as tried (category, id). The
row counts what the fault destroyed or left behind with ``fault.lost(n)`` *before* asserting
that it is 0, so a failing row still reports its count. It survived when its test passed.

With the environment variable ``KGLNET_FAULT_REPORT`` set, the end of the session writes
``results/faults/summary.json`` (every row, totals per category and overall), the source of the
README's table::

    KGLNET_FAULT_REPORT=1 python -m pytest tests/faults -m "slow or not slow"

Without it nothing is written into results/ (ordinary test runs leave the tree alone).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
REPORT_ENV = "KGLNET_FAULT_REPORT"
REPORT_PATH = REPO / "results" / "faults" / "summary.json"

#: The issue's fault classes, in its order: category -> what the suite checks.
CATEGORIES = {
    "kill": "SIGKILL, or SIGTERM / SIGINT (last.pt written at the next step), during training; rerun resumes, "
            "final weights equal an uninterrupted run",
    "workflow": "interrupted Snakemake / dvc repro; rerun trusts no partial output, same metrics",
    "corrupt-input": "corrupt input detected before use, reported with the file and the problem",
    "divergence": "non-finite loss stops training naming epoch and step; last good checkpoint kept",
    "write-failure": "a write failing part-way (full disk) leaves no partial file",
    "config": "configuration mistake fails before any work, naming the key and allowed values",
}

#: nodeid -> {"id", "category", "survived", "outputs_lost", "test"}: every fault row run.
FAULTS: dict[str, dict] = {}


class FaultRecord:
    """What one fault row did: its id, its class, what it lost; survival comes from the outcome."""

    def __init__(self, entry: dict):
        self.entry = entry

    @property
    def id(self) -> str:
        return self.entry["id"]

    def lost(self, n: int, what: list[str] | None = None) -> int:
        """Record ``n`` outputs lost (destroyed, left partial, or trusted when stale); returns n."""
        self.entry["outputs_lost"] = int(n)
        if what:
            self.entry["lost"] = list(what)
        return n

    def note(self, text: str) -> None:
        self.entry.setdefault("notes", []).append(text)


@pytest.fixture
def fault(request) -> FaultRecord:
    """Register this row; the category is the test module's ``CATEGORY``."""
    category = getattr(request.module, "CATEGORY")
    assert category in CATEGORIES, category
    callspec = getattr(request.node, "callspec", None)
    fault_id = callspec.id if callspec is not None else request.node.name
    entry = {"id": fault_id, "category": category, "survived": False, "outputs_lost": None,
             "test": request.node.nodeid}
    FAULTS[request.node.nodeid] = entry
    return FaultRecord(entry)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    entry = FAULTS.get(item.nodeid)
    if entry is not None and report.when == "call":
        entry["survived"] = report.passed
    elif entry is not None and report.failed:  # an error in setup or teardown
        entry["survived"] = False
    return report


def summary() -> dict:
    """The registry as written to results/faults/summary.json."""
    rows = sorted(FAULTS.values(), key=lambda e: (list(CATEGORIES).index(e["category"]), e["id"]))

    def totals(entries: list[dict]) -> dict:
        return {"tried": len(entries), "survived": sum(e["survived"] for e in entries),
                "outputs_lost": sum(e["outputs_lost"] or 0 for e in entries),
                "unmeasured": sum(e["outputs_lost"] is None for e in entries)}

    return {
        "faults": rows,
        "categories": {c: {"description": d, **totals([e for e in rows if e["category"] == c])}
                       for c, d in CATEGORIES.items() if any(e["category"] == c for e in rows)},
        "total": totals(rows),
    }


def pytest_sessionfinish(session, exitstatus):
    if not os.environ.get(REPORT_ENV) or not FAULTS:
        return
    from kglnet.utils.io import atomic_write_json

    atomic_write_json(REPORT_PATH, summary())


# -- small data shared by the suite ---------------------------------------------------------------

def _subset(source: Path, out: Path, rows: np.ndarray) -> Path:
    """A pair file made of ``rows`` of ``source`` (through the project's own writer)."""
    from kglnet.data.pairfile import read_pairs, write_pairs

    pairs = read_pairs(source)
    write_pairs(out, pairs.left[rows], pairs.right[rows], pairs.label[rows], attrs={"source": "faults-suite"})
    return out


@pytest.fixture(scope="session")
def micro_data(tiny_dataset, tmp_path_factory) -> dict[str, Path]:
    """``{"train", "val"}``: 12 positive training pairs (3 batches of 4) and 32 balanced
    validation pairs cut from the tiny synthetic dataset: an epoch of KGL-Net in about a second."""
    from kglnet.data.pairfile import read_pairs

    folder = tmp_path_factory.mktemp("micro")
    train_label = read_pairs(tiny_dataset / "train.h5").label
    val_label = read_pairs(tiny_dataset / "val.h5").label
    val_rows = np.concatenate([np.flatnonzero(val_label == 1)[:16], np.flatnonzero(val_label == 0)[:16]])
    return {
        "train": _subset(tiny_dataset / "train.h5", folder / "train.h5", np.flatnonzero(train_label == 1)[:12]),
        "val": _subset(tiny_dataset / "val.h5", folder / "val.h5", np.sort(val_rows)),
    }


@pytest.fixture(scope="session")
def clean_micro_run(micro_data, tmp_path_factory) -> Path:
    """A 3-epoch micro run (faultkit.MICRO settings) that never sees a fault: the reference."""
    from faultkit import MICRO
    from kglnet.train import TrainConfig, train

    out = tmp_path_factory.mktemp("clean_micro_run")
    train(micro_data["train"], micro_data["val"], out, TrainConfig(epochs=3, **MICRO), resume=False, progress=False)
    return out
