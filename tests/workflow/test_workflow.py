"""End to end: the real Snakemake workflow and the real DVC pipeline on the tiny config."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kglnet.data.pairfile import read_pairs

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # snakemake, dvc and kglnet of this environment


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _copy_project(dest: Path, params_from: str = "params.yaml") -> Path:
    dest.mkdir(parents=True, exist_ok=True)
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


PAPER_SETS = ["country", "field", "forest", "indoor", "mountain", "oldbuilding", "street", "urban",
              "water", "lwir_train", "lwir_test", "os_train", "os_test"]


def _fake_bundle(root: Path, sets=PAPER_SETS) -> Path:
    """A small bundle in the published format: <set>/<set>_sos.npy uint8 [2M,1,64,64] in VIS/other
    order and <set>_info.txt with one point id per patch (training sets: positives and a few
    negatives; test sets: balanced)."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(sets):
        folder = root / name
        folder.mkdir(parents=True)
        points = 120 if name in ("country", "lwir_train", "os_train") else 24
        ids = []
        for i in range(points):
            ids += [i, i]
            if i % 2:  # a negative: point i against point i - 1
                ids += [i, i - 1]
        base = rng.integers(0, 256, (points, 64, 64), dtype=np.uint8)
        patches = base[np.asarray(ids)]
        patches[1::2] = 255 - patches[1::2]  # the "other spectrum": inverted contrast
        np.save(folder / f"{name}_sos.npy", patches[:, None])
        (folder / f"{name}_info.txt").write_text("".join(f"{i + 1000 * k}\n" for i in ids))
    return root


def test_paper_config_runs_on_a_bundle_and_checkpoints_evaluate(tmp_path):
    project = _copy_project(tmp_path / "project")
    bundle = _fake_bundle(tmp_path / "mydata")
    cmd = ["snakemake", "--cores", "2", "--configfile", "config/paper.yaml", "config/cpu-smoke.yaml",
           "--config", f"bundle={bundle}"]
    run(cmd, project)
    for dataset, tests in (("visnir", PAPER_SETS[1:9]), ("vislwir", ["test"]), ("os", ["test"])):
        train, val = read_pairs(project / f"data/{dataset}/train.h5"), read_pairs(project / f"data/{dataset}/val.h5")
        assert len(train) + len(val) == 180 and 0 < len(val) < len(train)
        record = json.loads((project / f"results/metrics/{dataset}/kglnet.json").read_text())
        assert sorted(record["test_sets"]) == sorted(tests)
        assert all(r["pairs"] == 36 for r in record["test_sets"].values())
    assert read_pairs(project / "data/vislwir/test.h5").scene_names == ["lwir_test"]
    history = json.loads((project / "results/training/os/kglnet.json").read_text())
    assert len(history) == 1  # cpu-smoke's 1 epoch overrides the paper's 200
    # A trained checkpoint works with the stand-alone evaluate command on any pair file.
    out = run(["kglnet", "evaluate", "--checkpoint", "checkpoints/visnir/kglnet/best.pt",
               "--pairs", "data/visnir/field.h5"], project)
    assert json.loads(out.stdout.splitlines()[0])["pairs"] == 36


def test_paper_config_lists_every_missing_bundle_file_before_any_job(tmp_path):
    project = _copy_project(tmp_path / "project")
    bundle = _fake_bundle(tmp_path / "mydata", sets=[s for s in PAPER_SETS if s not in ("urban", "os_test")])
    (bundle / "country" / "country_info.txt").unlink()
    env_free = ["snakemake", "-n", "--configfile", "config/paper.yaml"]
    for cmd, expected in (
        (env_free + ["--config", f"bundle={bundle}"],
         ["5 bundle files missing", "country_info.txt", "urban_sos.npy", "urban_info.txt", "os_test_info.txt", "KGLNET_BUNDLE"]),
        (env_free, ["no bundle path given", "--config bundle="]),
    ):
        env = {k: v for k, v in _env().items() if k != "KGLNET_BUNDLE"}
        result = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
        assert result.returncode != 0
        for fragment in expected:
            assert fragment in result.stdout + result.stderr, fragment
        assert not (project / "data").exists()


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
