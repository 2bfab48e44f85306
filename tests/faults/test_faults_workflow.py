"""Issue 8, item 2: an interrupted workflow leaves no partial output that a rerun trusts.

Each row runs the tiny configuration (config/test.yaml) on a copy of the project, kills the whole
process group (the workflow tool and its running ``kglnet train`` job) with SIGKILL while the
model trains, reruns the same command, and compares every metrics file with a clean run's.
SIGKILL leaves Snakemake's lock behind; the rerun follows the recovery Snakemake prints
(``snakemake --unlock``) when, and only when, it refuses to run because of that lock.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from faultkit import subprocess_env, temp_files
from processes import run_group

CATEGORY = "workflow"
REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 600
SNAKEMAKE = ["snakemake", "--cores", "all", "--configfile", "config/test.yaml"]  # as dvc.yaml runs it
TRAINING = "checkpoints/builtin/kglnet/seed0"
METRICS = ["results/metrics/builtin/kglnet/seed0.json", "results/metrics/builtin/ncc.json",
           "results/metrics/builtin/sift.json", "results/metrics/builtin/summary.json",
           "results/training/builtin/kglnet/seed0.json"]

pytestmark = pytest.mark.slow


def _copy_project(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "workflow", "config", "dvc.yaml", ".dvcignore", "src"):  # src: DVC's dependencies
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    shutil.copy(REPO / "config/test.yaml", dest / "params.yaml")  # what `dvc repro` and plain snakemake read
    return dest


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return run_group(cmd, cwd=cwd, env=subprocess_env(), capture_output=True, text=True, timeout=TIMEOUT)


def _ok(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = _run(cmd, cwd)
    assert result.returncode == 0, f"{' '.join(cmd)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _scores(value):
    """A metrics record without what depends on the clock or the folder (speeds, times, paths)."""
    if isinstance(value, dict):
        return {k: _scores(v) for k, v in value.items()
                if not any(t in k for t in ("seconds", "per_s", "file", "checkpoint", "out_dir"))}
    if isinstance(value, list):
        return [_scores(v) for v in value]
    return value


def _kill_during_training(cmd: list[str], cwd: Path, fault) -> None:
    """Start ``cmd``; once the training job has started, SIGKILL its whole process group at a
    random moment of the training."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=subprocess_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (cwd / TRAINING / "config.json").exists():
            assert proc.poll() is None, "the workflow ended before training started"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        delay = random.uniform(0.0, 1.5)
        time.sleep(delay)
        running = proc.poll() is None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert running, "the workflow finished before it could be killed"
    assert not (cwd / "results/metrics/builtin/kglnet/seed0.json").exists()
    fault.note(f"killed {delay:.2f} s into training; run folder then held "
               f"{sorted(p.name for p in (cwd / TRAINING).iterdir())}")


def _rerun(cmd: list[str], cwd: Path, fault) -> None:
    first = _run(cmd, cwd)
    if first.returncode != 0 and "--unlock" in first.stdout + first.stderr:
        fault.note("rerun refused: stale Snakemake lock; recovered with `snakemake --unlock`")
        _ok(SNAKEMAKE + ["--unlock"], cwd)
        first = _run(cmd, cwd)
    assert first.returncode == 0, f"{' '.join(cmd)}:\n{first.stdout[-3000:]}\n{first.stderr[-3000:]}"


def _snakemake(project: Path, fault) -> None:
    _kill_during_training(SNAKEMAKE, project, fault)
    _rerun(SNAKEMAKE, project, fault)


def _dvc(project: Path, fault) -> None:
    _ok(["dvc", "init", "--no-scm", "-q"], project)
    _ok(["dvc", "config", "core.analytics", "false"], project)
    _kill_during_training(["dvc", "repro"], project, fault)
    _rerun(["dvc", "repro"], project, fault)
    status = _ok(["dvc", "status"], project).stdout
    assert "changed" not in status, status  # what DVC recorded is what is on disk


ROWS = {"snakemake-sigkill-training": _snakemake, "dvc-repro-sigkill-training": _dvc}


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """The same configuration run once without interruption."""
    project = _copy_project(tmp_path_factory.mktemp("clean"))
    _ok(SNAKEMAKE, project)
    return project


@pytest.mark.parametrize("name", list(ROWS))
def test_interrupted_workflow_rerun_matches_a_clean_run(name, fault, clean, tmp_path):
    project = _copy_project(tmp_path / "project")
    ROWS[name](project, fault)
    lost = [m for m in METRICS if not (project / m).exists()
            or _scores(json.loads((project / m).read_text())) != _scores(json.loads((clean / m).read_text()))]
    leftovers = [f"{d}/{t}" for d in ("data", "checkpoints", "results") for t in temp_files(project / d)]
    fault.lost(len(lost) + len(leftovers), lost + leftovers)
    assert lost == [] and leftovers == []
    assert "Nothing to be done" in (lambda r: r.stdout + r.stderr)(_ok(SNAKEMAKE + ["-n"], project))
