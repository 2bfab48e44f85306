"""The CI regression check: rerun a small deterministic pipeline, compare with the committed baseline.

``kglnet regression-check`` (run by ``.ci/run`` after the tests):

1. reruns the whole pipeline of ``config/ci.yaml`` from scratch (``snakemake --forceall``) with
   2 cores and the portable CPU numerics (:mod:`kglnet.utils.numerics`), so training uses the
   same thread count and the same kernels, and gives the same numbers on any x86-64 processor
   with AVX2 (without them, the same data gave HardNet 62.76 % on one machine and 78.65 % on
   another);
2. prints ``dvc metrics diff`` of its metrics files against the committed ones (git ``HEAD``:
   the baseline);
3. fails when an FPR95 is worse than the baseline by more than the tolerance recorded in the
   baseline manifest, when a count that fixes what was measured (pairs, positives, negatives,
   parameters) changes, or when an output the baseline lists is missing or changed shape
   (JSON structure, CSV columns and rows, image size, HDF5 dataset shapes, checkpoint tensors).

``kglnet regression-check --refresh`` reruns the pipeline the same way and rewrites the manifest
(``results/regression/baseline.json``); committing it with the new metrics files is the
deliberate refresh. The manifest also records the versions and the machine that made it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from kglnet.utils.io import atomic_write_json
from kglnet.utils.numerics import PORTABLE_CPU_ENV, portable_cpu_environment

__all__ = [
    "BASELINE",
    "CONFIG",
    "CORES",
    "DEFAULT_TOLERANCE",
    "Finding",
    "PipelineFailed",
    "compare_metrics",
    "compare_shapes",
    "output_shape",
    "regression_check",
]

CONFIG = "config/ci.yaml"
BASELINE = "results/regression/baseline.json"
CORES = 2  # fixed: the thread count is part of what makes the numbers repeat exactly
# FPR95 in percentage points. The rerun is deterministic on a CPU with the same thread count
# (measured: identical numbers); the tolerance absorbs a different CPU's vector instructions
# rounding differently, which moves a handful of the test pairs across the threshold.
DEFAULT_TOLERANCE = 1.0
# Counts that fix what was measured: any change means a different experiment, not noise.
EXACT_KEYS = ("pairs", "positives", "negatives", "parameters")


class PipelineFailed(RuntimeError):
    """A command the check runs (snakemake, dvc) failed; the message names it."""


@dataclass(frozen=True)
class Finding:
    """One difference from the baseline. ``fails``: whether it fails the check."""

    kind: str  # worse | better | count | missing | shape | new
    path: str
    key: str
    message: str

    @property
    def fails(self) -> bool:
        return self.kind in ("worse", "count", "missing", "shape")

    def __str__(self) -> str:
        where = f"{self.path}: {self.key}" if self.key else self.path
        return f"{'FAIL' if self.fails else 'note'} [{self.kind}] {where}: {self.message}"


# ------------------------------------------------------------------------------------ metrics


def _is_fpr95(key: str) -> bool:
    return key.rsplit(".", 1)[-1].startswith("fpr95")


def _is_exact(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in EXACT_KEYS


def compare_metrics(diff: dict[str, dict[str, dict[str, Any]]], tolerance: float) -> list[Finding]:
    """Findings from ``dvc metrics diff --all --json``'s ``{path: {key: {"old", "new"}}}``.

    An FPR95 (key ending in ``fpr95*``; lower is better) fails when ``new - old > tolerance``
    and is noted when it improved by more; a count of :data:`EXACT_KEYS` fails on any change; a
    metric of the baseline missing from the rerun fails. Other numbers (timings) are only shown.
    """
    if not (isinstance(tolerance, (int, float)) and tolerance >= 0 and math.isfinite(tolerance)):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    findings = []
    for path, metrics in sorted(diff.items()):
        for key, change in sorted(metrics.items()):
            if not (_is_fpr95(key) or _is_exact(key)):
                continue
            old, new = change.get("old"), change.get("new")
            if old is None:
                findings.append(Finding("new", path, key, f"not in the baseline (now {new}); refresh it"))
            elif new is None:
                findings.append(Finding("missing", path, key, f"the baseline has {old}, the rerun none"))
            elif _is_exact(key):
                if new != old:
                    findings.append(Finding("count", path, key, f"{old} -> {new}"))
            elif new - old > tolerance:
                findings.append(Finding("worse", path, key, f"FPR95 {old:.2f} -> {new:.2f} "
                                                            f"(+{new - old:.2f} > tolerance {tolerance})"))
            elif old - new > tolerance:
                findings.append(Finding("better", path, key, f"FPR95 {old:.2f} -> {new:.2f}; refresh the "
                                                             "baseline to keep the improvement"))
    return findings


# ------------------------------------------------------------------------------------- shapes


def _json_structure(value: Any) -> Any:
    # Keys and types, not values: lists of records keep their length (epochs of a history),
    # lists of numbers (ROC points, whose count follows the scores) do not.
    if isinstance(value, dict):
        return {k: _json_structure(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            return {"records": len(value), "each": _json_structure(value[0])}
        return "list"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def output_shape(path: str | os.PathLike) -> Any:
    """What the check compares of one output: its structure, not its values.

    JSON: keys and value types; CSV: columns and row count; Markdown: line count; PNG: image
    height, width, channels; HDF5: each dataset's shape and dtype; checkpoint: architecture and
    tensor shapes; anything else: that it exists.

    Raises:
        ValueError: the file cannot be read as its kind, naming it.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return {"json": _json_structure(json.loads(path.read_text(encoding="utf-8")))}
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.reader(handle))
            return {"csv": {"columns": rows[0] if rows else [], "rows": max(len(rows) - 1, 0)}}
        if suffix == ".md":
            return {"lines": len(path.read_text(encoding="utf-8").splitlines())}
        if suffix == ".png":
            import cv2

            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None:
                raise ValueError("not a readable PNG image")
            return {"png": [*image.shape[:2], 1 if image.ndim == 2 else image.shape[2]]}
        if suffix == ".h5":
            import h5py

            with h5py.File(path, "r") as f:
                return {"h5": {name: [list(f[name].shape), str(f[name].dtype)] for name in sorted(f)}}
        if suffix == ".pt":
            from kglnet.checkpoint import read_checkpoint

            ckpt = read_checkpoint(path)
            return {"checkpoint": {"model": ckpt["model_name"],
                                   "tensors": {k: list(v.shape) for k, v in sorted(ckpt["model_state"].items())}}}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: cannot read it: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return {"exists": True}


def _files(outputs: Iterable[str], root: Path) -> list[str]:
    # A directory output stands for every file in it (not Snakemake's .snakemake_timestamp marker).
    files = []
    for out in outputs:
        full = root / out
        if full.is_dir():
            files += [p.relative_to(root).as_posix() for p in sorted(full.rglob("*"))
                      if p.is_file() and not p.name.startswith(".")]
        else:
            files.append(out)
    return sorted(files)


def compare_shapes(expected: dict[str, Any], root: Path) -> list[Finding]:
    """Findings for each output of ``expected`` (path -> :func:`output_shape`) under ``root``
    that is missing or whose shape differs."""
    findings = []
    for rel, shape in sorted(expected.items()):
        path = root / rel
        if not path.is_file():
            findings.append(Finding("missing", rel, "", "the baseline has this output, the rerun did not make it"))
            continue
        try:
            now = output_shape(path)
        except ValueError as exc:
            findings.append(Finding("shape", rel, "", str(exc)))
            continue
        if now != shape:
            findings.append(Finding("shape", rel, "", _shape_difference(shape, now)))
    return findings


def _shape_difference(old: Any, new: Any, where: str = "") -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        gone, added = sorted(set(old) - set(new)), sorted(set(new) - set(old))
        if gone or added:
            parts = ([f"gone {[f'{where}{k}' for k in gone]}"] if gone else []) + \
                    ([f"new {[f'{where}{k}' for k in added]}"] if added else [])
            return "; ".join(parts)
        for key in sorted(old):
            if old[key] != new[key]:
                return _shape_difference(old[key], new[key], f"{where}{key}.")
    return f"{where.rstrip('.') or 'shape'} was {json.dumps(old)}, now {json.dumps(new)}"


# ------------------------------------------------------------------------------------ running


def _run(cmd: Sequence[str], root: Path, capture: bool = False,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    print("+ " + " ".join(cmd), flush=True)
    result = subprocess.run(list(cmd), cwd=root, text=True, capture_output=capture, env=env)
    if result.returncode != 0:
        detail = (result.stderr or "")[-3000:] if capture else ""
        raise PipelineFailed(f"{cmd[0]} failed (exit status {result.returncode}): {' '.join(cmd)}\n{detail}")
    return result


def pipeline_outputs(config: str, root: Path) -> list[str]:
    """Every output file or directory of the pipeline of ``config`` (``snakemake --summary``)."""
    result = _run(["snakemake", "--configfile", config, "--summary"], root, capture=True)
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    header = next((i for i, cells in enumerate(lines) if cells[:1] == ["output_file"]), None)
    if header is None:
        raise PipelineFailed(f"snakemake --summary printed no table for {config}")
    return sorted({cells[0] for cells in lines[header + 1:] if cells and cells[0]})


def metric_files(outputs: Iterable[str]) -> list[str]:
    """The outputs DVC compares: the metrics JSON files (results/metrics/...)."""
    return sorted(o for o in outputs if o.startswith("results/metrics/") and o.endswith(".json"))


def _dvc_metrics_diff(files: Sequence[str], root: Path, fmt: str) -> str:
    return _run(["dvc", "metrics", "diff", "HEAD", "--all", fmt, "--targets", *files], root, capture=True).stdout


def _machine() -> dict[str, Any]:
    import numpy
    import torch

    from kglnet.bench import cpu_model, device_name

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "device": device_name(torch.device("cpu")), "cpu_model": cpu_model(),
            "numerics": "portable: " + " ".join(f"{k}={v}" for k, v in PORTABLE_CPU_ENV.items())}


def regression_check(root: str | os.PathLike = ".", *, config: str = CONFIG, baseline: str = BASELINE,
                     refresh: bool = False, run: bool = True, tolerance: float | None = None,
                     cores: int = CORES) -> int:
    """Run the check (or the refresh) in the project at ``root``; returns the exit status
    (0 = no regression / refreshed, 1 = regression). Prints the diff and every finding."""
    root = Path(root).resolve()
    manifest_path = root / baseline
    if not (root / config).is_file():
        raise FileNotFoundError(f"{root / config}: no such configuration")
    manifest = None
    if manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{manifest_path}: not JSON ({exc})") from None
        missing = [k for k in ("tolerance_fpr95", "outputs") if not isinstance(manifest, dict) or k not in manifest]
        if missing:
            raise ValueError(f"{manifest_path}: not a regression baseline (no {', '.join(missing)})")
    elif not refresh:
        raise FileNotFoundError(f"{manifest_path}: no baseline; make one with "
                                "`kglnet regression-check --refresh` and commit it")
    if tolerance is None:
        tolerance = manifest["tolerance_fpr95"] if manifest else DEFAULT_TOLERANCE

    outputs = pipeline_outputs(config, root)
    if run:
        # From scratch: training resumes from a run folder's last.pt (not a declared output, so
        # --forceall alone keeps it), so the run folders go first; --forceall redoes the rest.
        for run_dir in sorted({(root / o).parent for o in outputs if o.startswith("checkpoints/")}):
            shutil.rmtree(run_dir, ignore_errors=True)
        _run(["snakemake", "--cores", str(cores), "--configfile", config, "--forceall"], root,
             env=portable_cpu_environment())
    files = metric_files(outputs)
    print(f"\n# dvc metrics diff HEAD (baseline) -> this run: {len(files)} metrics files", flush=True)
    print(_dvc_metrics_diff(files, root, "--md"), flush=True)
    diff = json.loads(_dvc_metrics_diff(files, root, "--json") or "{}")
    findings = compare_metrics(diff, tolerance)

    if refresh:
        shapes = {rel: output_shape(root / rel) for rel in _files(outputs, root)}
        atomic_write_json(manifest_path, {
            "config": config,
            "config_sha256": hashlib.sha256((root / config).read_bytes()).hexdigest(),
            "cores": cores,
            "tolerance_fpr95": tolerance,
            "metrics": files,
            "outputs": shapes,
            "made_with": _machine(),
        })
        for finding in findings:
            print(finding)
        print(f"\nbaseline refreshed: {manifest_path.relative_to(root)} ({len(shapes)} outputs) and "
              f"{len(files)} metrics files; commit them with the change that moved the numbers")
        return 0

    assert manifest is not None
    if manifest.get("config") != config:
        findings.append(Finding("shape", baseline, "config", f"made with {manifest.get('config')}, checked with "
                                                              f"{config}"))
    findings += compare_shapes(manifest["outputs"], root)
    failed = [f for f in findings if f.fails]
    for finding in findings:
        print(finding)
    print(f"\nregression check: {len(failed)} failure(s), {len(findings) - len(failed)} note(s); "
          f"{len(manifest['outputs'])} outputs checked, FPR95 tolerance {tolerance} points")
    if failed:
        # The rerun's outputs stay for inspection (`dvc metrics diff`, `git diff results/`).
        print("a deliberate change of the numbers? `kglnet regression-check --refresh`, then commit the "
              "baseline with it", file=sys.stderr)
        return 1
    if run:
        _restore_committed(outputs, root)
    return 0


def _restore_committed(outputs: Iterable[str], root: Path) -> None:
    # A passing rerun differs from the committed files only in timings (pairs/s, seconds): put the
    # committed ones back so that checking leaves the working tree as it was.
    changed = _run(["git", "diff", "--name-only", "HEAD", "--", *outputs], root, capture=True).stdout.split()
    if changed:
        _run(["git", "checkout", "HEAD", "--", *changed], root)
