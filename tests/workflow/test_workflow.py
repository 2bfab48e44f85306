"""End to end: the real Snakemake workflow and the real DVC pipeline on the tiny config."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # snakemake, dvc and kglnet of this environment


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _copy_project(dest: Path, params_from: str = "params.yaml") -> Path:
    for name in ("Snakefile", "workflow", "config", "dvc.yaml", "src"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    shutil.copy(REPO / params_from, dest / "params.yaml")
    return dest


def run(cmd: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_snakemake_runs_the_tiny_config_end_to_end(tmp_path):
    project = _copy_project(tmp_path)
    run(["snakemake", "--cores", "2", "--configfile", "config/test.yaml"], project)
    for model in ("kglnet", "ncc", "sift"):
        record = json.loads((project / f"results/metrics/builtin/{model}.json").read_text())
        assert record["test_sets"]["test"]["pairs"] > 0
        assert 0 <= record["mean"]["fpr95_metric"] <= 100
    assert (project / "checkpoints/builtin/kglnet/best.pt").stat().st_size > 20_000_000  # 6.4 M float32 weights
    assert (project / "results/figures/builtin/roc_test.png").read_bytes()[:4] == b"\x89PNG"
    assert (project / "results/figures/builtin/training_kglnet.png").exists()
    table = (project / "results/tables/builtin.md").read_text()
    for label in ("KGL-Net", "NCC", "SIFT"):
        assert f"| {label} |" in table
    # Nothing is left to do: a second run is a no-op.
    dry = run(["snakemake", "-n", "--configfile", "config/test.yaml"], project)
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_snakemake_rejects_a_bad_config(tmp_path):
    project = _copy_project(tmp_path)
    bad = project / "config/bad.yaml"
    bad.write_text((project / "config/test.yaml").read_text().replace("baselines:", "baseline_methods:"))
    result = subprocess.run(["snakemake", "-n", "--configfile", str(bad)], cwd=project, env=_env(),
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "baseline_methods" in result.stdout + result.stderr


def test_dvc_repro_then_nothing_to_do_and_diffs(tmp_path):
    project = _copy_project(tmp_path, params_from="config/test.yaml")
    run(["git", "init", "-q"], project)
    run(["git", "config", "user.email", "ci@example.com"], project)
    run(["git", "config", "user.name", "ci"], project)
    run(["dvc", "init", "-q"], project)
    run(["dvc", "config", "core.analytics", "false"], project)
    shutil.copy(REPO / ".dvcignore", project / ".dvcignore")  # __pycache__ must not look like a code change
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "project"], project)

    run(["dvc", "repro"], project)
    assert (project / "dvc.lock").exists()
    assert (project / "results/metrics/builtin/kglnet.json").exists()
    second = run(["dvc", "repro"], project)
    assert "Running stage" not in second.stdout  # every stage is up to date
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "results"], project)

    metrics = json.loads(run(["dvc", "metrics", "show", "--json"], project).stdout)
    shown = json.dumps(metrics)
    for model in ("kglnet", "ncc", "sift"):  # the three metrics files are read, with their FPR95
        assert f"results/metrics/builtin/{model}.json" in shown
    assert "fpr95_metric" in shown
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("epochs: 1\n      batch_size: 16", "epochs: 2\n      batch_size: 16"))
    diff = run(["dvc", "params", "diff"], project).stdout
    assert "datasets.builtin.train.epochs" in diff
    status = run(["dvc", "status"], project).stdout
    assert "train" in status and "data:" not in status  # only training (and what follows) is stale
    run(["dvc", "metrics", "diff"], project)
