"""The CI regression check (kglnet.regression): what fails it, what does not, and a planted
regression caught end to end through git, DVC and Snakemake on the committed baseline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from kglnet.regression import (
    BASELINE,
    CONFIG,
    Finding,
    compare_metrics,
    compare_shapes,
    output_shape,
)
from processes import run_group

REPO = Path(__file__).resolve().parents[1]
KGLNET = Path(sys.executable).parent / "kglnet"


def _diff(**metrics):
    return {"results/metrics/ci/kglnet/seed0.json": {k: {"old": o, "new": n} for k, (o, n) in metrics.items()}}


# -- metrics -----------------------------------------------------------------------------------

def test_fpr95_worse_beyond_the_tolerance_fails_and_within_it_passes():
    tol = 1.0
    assert compare_metrics(_diff(**{"mean.fpr95_metric": (40.0, 40.99)}), tol) == []
    [finding] = compare_metrics(_diff(**{"mean.fpr95_metric": (40.0, 41.5)}), tol)
    assert finding.fails and finding.kind == "worse" and "40.00 -> 41.50" in str(finding)
    assert "results/metrics/ci/kglnet/seed0.json: mean.fpr95_metric" in str(finding)
    # nested keys as dvc prints them, and the descriptor branch too
    [finding] = compare_metrics(_diff(**{"test_sets.test.fpr95_descriptor": (10.0, 12.0)}), tol)
    assert finding.fails


def test_improvement_is_a_note_and_timings_are_not_checked():
    findings = compare_metrics(_diff(**{"mean.fpr95_metric": (40.0, 30.0),
                                        "test_sets.test.pairs_per_s": (100.0, 1.0), "epoch": (2, 1)}), 1.0)
    assert [(f.kind, f.fails) for f in findings] == [("better", False)]
    assert "refresh" in findings[0].message


def test_missing_metric_and_changed_counts_fail_new_metric_is_noted():
    findings = compare_metrics(_diff(**{"mean.fpr95_metric": (40.0, None), "test_sets.test.pairs": (768, 767),
                                        "parameters": (6409713, 6409713), "mean.fpr95_new": (None, 3.0)}), 1.0)
    kinds = {f.key: (f.kind, f.fails) for f in findings}
    assert kinds == {"mean.fpr95_metric": ("missing", True), "test_sets.test.pairs": ("count", True),
                     "mean.fpr95_new": ("new", False)}


@pytest.mark.parametrize("tolerance", [-0.1, float("nan"), float("inf"), "1"])
def test_bad_tolerance_is_refused(tolerance):
    with pytest.raises(ValueError, match="tolerance must be a finite number >= 0"):
        compare_metrics({}, tolerance)


# -- shapes --------------------------------------------------------------------------------------

def test_output_shape_of_each_kind(tmp_path, untrained_checkpoint):
    from kglnet.data.pairfile import write_pairs

    (tmp_path / "m.json").write_text(json.dumps({"b": [1.0, 2.0], "a": {"x": 1, "y": None, "z": "s", "t": True},
                                                 "h": [{"epoch": 1}, {"epoch": 2}]}))
    assert output_shape(tmp_path / "m.json") == {"json": {
        "a": {"t": "bool", "x": "number", "y": "null", "z": "str"}, "b": "list",
        "h": {"records": 2, "each": {"epoch": "number"}}}}
    (tmp_path / "t.csv").write_text("method,fpr95\nA,1\nB,2\n")
    assert output_shape(tmp_path / "t.csv") == {"csv": {"columns": ["method", "fpr95"], "rows": 2}}
    (tmp_path / "t.md").write_text("| a |\n|---|\n| 1 |\n")
    assert output_shape(tmp_path / "t.md") == {"lines": 3}
    cv2.imwrite(str(tmp_path / "f.png"), np.zeros((30, 40, 3), np.uint8))
    assert output_shape(tmp_path / "f.png") == {"png": [30, 40, 3]}
    patches = np.zeros((3, 64, 64), np.uint8)
    write_pairs(tmp_path / "p.h5", patches, patches, np.array([1, 0, 1]))
    assert output_shape(tmp_path / "p.h5")["h5"]["left"] == [[3, 64, 64], "uint8"]
    shape = output_shape(untrained_checkpoint("hardnet"))["checkpoint"]
    assert shape["model"] == "hardnet" and shape["tensors"]["tower.0.weight"] == [32, 1, 3, 3]
    (tmp_path / "other.bin").write_bytes(b"x")
    assert output_shape(tmp_path / "other.bin") == {"exists": True}


def test_compare_shapes_names_missing_changed_and_unreadable_outputs(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"mean": {"fpr95_metric": 1.0}}))
    (tmp_path / "t.csv").write_text("method,fpr95\nA,1\n")
    expected = {"a.json": output_shape(tmp_path / "a.json"), "t.csv": output_shape(tmp_path / "t.csv"),
                "gone.png": {"png": [1, 1, 1]}}
    (tmp_path / "a.json").write_text(json.dumps({"mean": {"fpr95_metric": 1.0, "extra": 2}}))
    (tmp_path / "t.csv").write_text("method,fpr95\nA,1\nB,2\n")
    findings = {f.path: f for f in compare_shapes(expected, tmp_path)}
    assert findings["gone.png"].kind == "missing"
    assert findings["a.json"].kind == "shape" and "json.mean.extra" in findings["a.json"].message
    assert findings["t.csv"].kind == "shape" and "rows was 1, now 2" in findings["t.csv"].message
    (tmp_path / "a.json").write_text("{not json")
    [bad] = [f for f in compare_shapes({"a.json": expected["a.json"]}, tmp_path)]
    assert bad.fails and "a.json: cannot read it" in bad.message
    assert all(isinstance(f, Finding) for f in findings.values())


# -- end to end, on the committed baseline -------------------------------------------------------

def _git(root: Path, *args: str) -> None:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)


def _make_project(root: Path, results_only: bool, workflow_copy) -> Path:
    """A git + DVC repository at ``root`` holding the workflow and the committed CI baseline
    outputs; with ``results_only``, the manifest lists only results/ (data and checkpoints are
    not in git, so a check without a rerun cannot compare them)."""
    manifest = json.loads((REPO / BASELINE).read_text())
    workflow_copy(root)
    shutil.copytree(REPO / "pipelines", root / "pipelines")
    results = {k: v for k, v in manifest["outputs"].items() if k.startswith("results/")}
    if results_only:
        manifest["outputs"] = results
    (root / BASELINE).parent.mkdir(parents=True)
    (root / BASELINE).write_text(json.dumps(manifest))
    for rel in results:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, root / rel)
    _git(root, "init", "-q")
    subprocess.run(["dvc", "init", "-q"], cwd=root, check=True, env=dict(os.environ, PATH=f"{KGLNET.parent}:{os.environ['PATH']}"))
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "baseline")
    return root


@pytest.fixture(scope="module")
def baseline_project(tmp_path_factory, workflow_copy) -> Path:
    return _make_project(tmp_path_factory.mktemp("ci_project"), results_only=True, workflow_copy=workflow_copy)


def _check(root: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{KGLNET.parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run([str(KGLNET), "regression-check", "--no-run", "--root", str(root), *extra], env=env,
                          capture_output=True, text=True, timeout=900)


def test_unchanged_outputs_pass_and_a_planted_regression_fails(baseline_project):
    root = baseline_project
    ok = _check(root)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "dvc metrics diff HEAD" in ok.stdout and "0 failure(s)" in ok.stdout

    # Planted regression: KGL-Net's test FPR95 2 points worse than the baseline.
    metrics = root / "results/metrics/ci/kglnet/seed0.json"
    good = metrics.read_text()
    record = json.loads(good)
    record["mean"]["fpr95_metric"] += 2.0
    record["test_sets"]["test"]["fpr95_metric"] += 2.0
    metrics.write_text(json.dumps(record))
    bad = _check(root)
    metrics.write_text(good)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAIL [worse] results/metrics/ci/kglnet/seed0.json: mean.fpr95_metric" in bad.stdout
    assert "--refresh" in bad.stderr


def test_a_missing_figure_and_a_reshaped_table_fail(baseline_project):
    root = baseline_project
    figure = next(p for p in sorted((root / "results/figures/ci").iterdir()) if p.suffix == ".png")
    saved = figure.read_bytes()
    table = root / "results/tables/ci.csv"
    rows = table.read_text()
    figure.unlink()
    table.write_text("\n".join(rows.splitlines()[:-1]) + "\n")
    try:
        result = _check(root)
    finally:
        figure.write_bytes(saved)
        table.write_text(rows)
    assert result.returncode == 1
    assert f"FAIL [missing] {figure.relative_to(root).as_posix()}" in result.stdout
    assert "FAIL [shape] results/tables/ci.csv" in result.stdout


def test_no_baseline_is_a_clear_error(tmp_path):
    shutil.copytree(REPO / "config", tmp_path / "config")
    env = dict(os.environ, PATH=f"{KGLNET.parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run([str(KGLNET), "regression-check", "--no-run", "--root", str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"{tmp_path / BASELINE}: no baseline" in result.stderr and "--refresh" in result.stderr


def test_ci_config_is_the_one_checked():
    assert CONFIG == "config/ci.yaml" and (REPO / CONFIG).is_file()
    manifest = json.loads((REPO / BASELINE).read_text())
    assert manifest["config"] == CONFIG and manifest["cores"] == 2 and manifest["tolerance_fpr95"] > 0
    assert any(k.startswith("results/metrics/ci/") for k in manifest["outputs"])


@pytest.mark.slow
def test_full_check_reruns_from_scratch_and_catches_a_training_regression(tmp_path, workflow_copy):
    """The whole check as CI runs it, on a project whose KGL-Net no longer learns (learning rates
    1e-9, planted in its configuration): the rerun's FPR95 is worse than the baseline's."""
    import yaml

    root = _make_project(tmp_path / "project", results_only=False, workflow_copy=workflow_copy)
    ci = yaml.safe_load((root / CONFIG).read_text())
    ci["models"]["kglnet"].update(lr_features=1e-9, lr_head=1e-9)
    (root / CONFIG).write_text(yaml.safe_dump(ci))
    result = _check(root, "--no-run")  # the rerun is what the next call does; this one has no data
    assert result.returncode == 1 and "FAIL [missing] data/ci/train.h5" in result.stdout
    env = dict(os.environ, PATH=f"{KGLNET.parent}{os.pathsep}{os.environ['PATH']}")
    result = run_group([str(KGLNET), "regression-check", "--root", str(root)], env=env, capture_output=True,
                       text=True, timeout=1800)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "FAIL [worse] results/metrics/ci/kglnet/seed0.json: mean.fpr95_metric" in result.stdout
    # HardNet keeps its own optimiser settings (kglnet.zoo): its numbers repeat exactly
    assert "results/metrics/ci/hardnet/seed0.json: mean.fpr95" not in result.stdout


def test_ci_runs_the_readme_test_command_on_every_push_and_pull_request():
    """.ci/run ends with the README's test command, and the GitHub Actions workflow runs .ci/run
    on every push and pull request (validated against GitHub's workflow schema with
    check-jsonschema's vendored copy when it was written)."""
    import re

    import yaml

    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    install, test = blocks[0].strip(), blocks[1].strip()
    assert "pip install -e '.[test]'" in install and test == "python -m pytest && kglnet regression-check"
    script = (REPO / ".ci/run").read_text().strip().splitlines()
    assert script[-1] == test and "pip install -e '.[test]'" in script
    workflow = yaml.safe_load((REPO / ".github/workflows/ci.yml").read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on:` as True
    assert set(triggers) == {"push", "pull_request"}
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    assert [s["run"] for s in steps if "run" in s] == [".ci/run"]
