"""The GPU-slot scripts: device_plan.py turns Snakemake's own jobs into a plan, device_run.py runs
it without Snakemake within a time budget."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from processes import run_group

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "workflow" / "scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


device_plan = _load("device_plan")

DRY_RUN = """Building DAG of jobs...
Job stats:
job      count
train        1

[Thu Nov 26 13:32:56 2026]
rule train:
    input: data/ci/train.h5, data/ci/val.h5
    output: checkpoints/ci/kglnet/seed0/best.pt, results/training/ci/kglnet/seed0.json
    log: logs/train/ci/kglnet/seed0.log
    jobid: 3
    reason: Forced execution
    wildcards: dataset=ci, model=kglnet, seed=0
    threads: 2
    resources: tmpdir=/tmp
Shell command: kglnet train --train data/ci/train.h5 --config '{"epochs": 4}' > logs/train/ci/kglnet/seed0.log 2>&1

[Thu Nov 26 13:32:56 2026]
localrule report:
    input: results/metrics/ci/kglnet/seed0.json
    output: results/tables/ci.md
    jobid: 1
Shell command: kglnet report --dataset ci
"""


def test_dry_run_jobs_are_parsed_with_their_files_wildcards_and_command():
    jobs = device_plan.parse_dry_run(DRY_RUN)
    assert [j["rule"] for j in jobs] == ["train", "report"]
    train = jobs[0]
    assert train["input"] == ["data/ci/train.h5", "data/ci/val.h5"]
    assert train["output"] == ["checkpoints/ci/kglnet/seed0/best.pt", "results/training/ci/kglnet/seed0.json"]
    assert train["log"] == ["logs/train/ci/kglnet/seed0.log"]
    assert train["wildcards"] == {"dataset": "ci", "model": "kglnet", "seed": "0"}
    assert train["threads"] == 2 and train["resources"] == {"tmpdir": "/tmp"}
    assert train["shell"].startswith("kglnet train ") and train["shell"].endswith("2>&1")
    assert jobs[1]["log"] == [] and jobs[1]["shell"] == "kglnet report --dataset ci"


def test_a_job_without_a_shell_command_is_an_error():
    # a `run:` rule prints no shell command: the plan could not run it, so it must not be made
    text = DRY_RUN.replace("Shell command: kglnet report --dataset ci\n", "")
    with pytest.raises(ValueError, match="report"):
        device_plan.parse_dry_run(text)


def test_plan_of_the_ci_config_holds_snakemakes_own_commands(tmp_path):
    out = tmp_path / "plan.json"
    done = subprocess.run([sys.executable, str(SCRIPTS / "device_plan.py"), "--out", str(out),
                           "--plan", "ci", ".", "config/ci.yaml", "--", "results/tables/ci.md"],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    (plan,) = json.loads(out.read_text())["plans"]
    rules = [j["rule"] for j in plan["jobs"]]
    assert rules.count("train") == 2 and rules.count("evaluate_model") == 2 and "report" in rules
    train = next(j for j in plan["jobs"] if j["rule"] == "train" and j["wildcards"]["model"] == "kglnet")
    settings = json.loads(train["shell"].split("--config '", 1)[1].split("'", 1)[0])
    assert settings["epochs"] == 4 and settings["batch_size"] == 8 and settings["seed"] == 0
    assert plan["snakemake"].startswith("snakemake -n -p --forceall")


def run_ci_plan(project: Path, out: Path, configs: list[str], *runner_args: str) -> tuple[set, dict, str]:
    """Plan config/ci.yaml (plus ``configs``) in ``project`` and run it with device_run.py; returns
    the packed file names, status.json and the table."""
    plan = out.parent / "plan.json"
    subprocess.run([sys.executable, str(SCRIPTS / "device_plan.py"), "--out", str(plan), "--plan", "ci", ".",
                    "config/ci.yaml", *configs, "--", "results/tables/ci.md"],
                   cwd=project, check=True, capture_output=True)
    done = run_group([sys.executable, str(SCRIPTS / "device_run.py"), "--plan", str(plan), "--out", str(out),
                      "--workers", "1", "--bench-compile", *runner_args],
                     cwd=project, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    with tarfile.open(out / "results.tar.gz") as tar:
        return (set(tar.getnames()), json.load(tar.extractfile("status.json")),
                tar.extractfile("ci/results/tables/ci.md").read().decode())


@pytest.mark.slow
def test_runner_keeps_to_its_budget_and_reports_only_what_this_run_made(tmp_path, workflow_copy):
    """A budget too short to train: no training starts, the baselines and the report still run,
    and the committed table of an earlier run is not passed off as this run's."""
    project = workflow_copy(tmp_path / "project")
    (project / "results" / "tables").mkdir(parents=True)
    (project / "results" / "tables" / "ci.md").write_text("an earlier run's table\n")
    out = tmp_path / "out"
    names, status, table = run_ci_plan(project, out, [], "--budget", "1", "--reserve", "0",
                                       "--keep-checkpoint", "ci:checkpoints/ci/kglnet/seed0/best.pt",
                                       # a named bench variant with its own flags, CPU-sized
                                       "--bench-variant", "fused=--device cpu --fused-optimizer --phases --no-reference --eval-batch-size 3",
                                       "--bench-batch", "2", "--bench-steps", "1", "--bench-warmup", "0",
                                       "--bench-eval-pairs", "4")
    bench = json.loads((out / "bench" / "bench_fused.json").read_text())
    assert bench["config"]["fused_optimizer"] is True and "train_phases_ms" in bench
    assert bench["config"]["eval_batch_size"] == 3  # the variant's flags override the shared 2,048
    assert any(n.endswith("bench_fused.json") for n in names)
    assert sorted(status["skipped_training"]) == ["ci:train/dataset=ci/model=hardnet/seed=0",
                                                  "ci:train/dataset=ci/model=kglnet/seed=0"]
    assert "ci/results/metrics/ci/ncc.json" in names and "ci/results/metrics/ci/sift.json" in names
    assert "ci/results/metrics/ci/kglnet/seed0.json" not in names
    assert "NCC" in table and "KGL-Net" not in table and "earlier run" not in table
    assert not list(out.glob("checkpoint.part*"))  # no finished run, no checkpoint brought back


@pytest.mark.slow
def test_a_run_stopped_at_the_budget_is_not_scored(tmp_path, workflow_copy):
    """The first training job starts with no estimate and is stopped at budget - reserve / 2; the
    best.pt its early epochs left behind must not become a row of the table."""
    project = workflow_copy(tmp_path / "project")
    # 50 epochs cannot finish in the budget; the first ends within it, leaving a best.pt
    (project / "config" / "long.yaml").write_text("datasets: {ci: {train: {epochs: 50}}}\n")
    names, status, table = run_ci_plan(project, tmp_path / "out", ["config/long.yaml"],
                                       "--budget", "140", "--reserve", "120")
    stopped = [j for j in status["jobs"] if j["job"].startswith("train/") and j["rc"] != 0]
    assert stopped and stopped[0]["rc"] == -9, status["jobs"]
    assert (project / "checkpoints/ci/kglnet/seed0/best.pt").exists()  # what must not be scored
    assert not any(n.startswith("ci/results/metrics/ci/kglnet") for n in names)
    assert "KGL-Net" not in table and "NCC" in table


@pytest.mark.slow
def test_runs_of_an_earlier_slot_are_reused_and_not_trained_again(tmp_path, workflow_copy):
    """A table bigger than one slot fills up over several: given the first run's unpacked results
    (--reuse), a second run trains nothing, copies the scores and reports every row; a run
    planned with other settings is not taken from it."""
    project = workflow_copy(tmp_path / "project")
    _, first, _ = run_ci_plan(project, tmp_path / "first", [], "--budget", "500", "--reserve", "30")
    assert first["skipped_training"] == [] and first["reused"] == []
    earlier = tmp_path / "earlier"
    with tarfile.open(tmp_path / "first" / "results.tar.gz") as tar:
        tar.extractall(earlier, filter="data")
    runs = ["ci:train/dataset=ci/model=hardnet/seed=0", "ci:train/dataset=ci/model=kglnet/seed=0"]

    names, second, table = run_ci_plan(project, tmp_path / "second", [], "--budget", "1", "--reserve", "0",
                                       "--reuse", f"ci:{earlier / 'ci'}")
    assert sorted(second["reused"]) == runs and second["skipped_training"] == []
    assert not any(j["job"].startswith(("train/", "evaluate_model/")) for j in second["jobs"])
    assert "KGL-Net" in table and "HardNet" in table
    with tarfile.open(tmp_path / "second" / "results.tar.gz") as tar:
        for rel in ("results/metrics/ci/kglnet/seed0.json", "results/training/ci/hardnet/seed0.json",
                    "checkpoints/ci/kglnet/seed0/config.json"):
            assert tar.extractfile(f"ci/{rel}").read() == (earlier / "ci" / rel).read_bytes(), rel

    (project / "config" / "other.yaml").write_text("datasets: {ci: {train: {epochs: 5}}}\n")
    _, third, table = run_ci_plan(project, tmp_path / "third", ["config/other.yaml"], "--budget", "1",
                                  "--reserve", "0", "--reuse", f"ci:{earlier / 'ci'}")
    assert third["reused"] == [] and sorted(third["skipped_training"]) == runs
    assert "KGL-Net" not in table
    assert any("not reused (other settings)" in note for note in third["notes"])

    # a run made by other model code (another objective or initialisation) is not taken either
    config_path = earlier / "ci/checkpoints/ci/hardnet/seed0/config.json"
    recorded = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**recorded, "model_fingerprint": "0" * 64}))
    _, fourth, _ = run_ci_plan(project, tmp_path / "fourth", [], "--budget", "1", "--reserve", "0",
                               "--reuse", f"ci:{earlier / 'ci'}")
    assert fourth["reused"] == ["ci:train/dataset=ci/model=kglnet/seed=0"]
    assert any("not reused (other model code)" in note and "hardnet" in note for note in fourth["notes"])


def test_bench_models_writes_a_record_per_model_and_a_summary(tmp_path):
    """workflow/scripts/bench_models.py: one `kglnet bench` per named model, a summary table with
    each model's rates, fastest first; an unknown model is named before anything runs."""
    out = tmp_path / "models"
    done = subprocess.run([sys.executable, str(SCRIPTS / "bench_models.py"), "--out", str(out),
                           "--models", "tfeat", "hardnet", "--", "--device", "cpu", "--batch-size", "4", "--steps", "1",
                           "--warmup", "0", "--eval-pairs", "4", "--eval-batch-size", "4", "--no-fp32", "--threads", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["models"]
    assert sorted(r["model"] for r in rows) == ["hardnet", "tfeat"]
    assert rows[0]["train_pairs_per_s"] >= rows[1]["train_pairs_per_s"]
    assert {r["model"]: r["parameters"] for r in rows} == {"hardnet": 1_334_560, "tfeat": 599_808}
    table = (out / "summary.md").read_text()
    assert "| hardnet | 1,334,560 |" in table and "--device cpu" in table
    bad = subprocess.run([sys.executable, str(SCRIPTS / "bench_models.py"), "--out", str(tmp_path / "x"),
                          "--models", "nonet"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown model(s) nonet" in bad.stderr and not (tmp_path / "x").exists()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has stopped; only its parent has not collected it yet


def test_runner_stopped_from_outside_takes_its_jobs_down(tmp_path):
    """SIGTERM (a slot's time limit) while a job runs: the job and its children, in their own
    process group, are killed before the driver exits, rather than left running on the GPU."""
    job = {"rule": "make_slow", "wildcards": {}, "input": [], "output": [], "log": [],
           "shell": "sleep 300 & echo $! > child.pid; wait"}
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"plans": [{"name": "p", "workdir": ".", "jobs": [job], "targets": [],
                                           "expected_data": {}}]}))
    driver = subprocess.Popen([sys.executable, str(SCRIPTS / "device_run.py"), "--plan", str(plan),
                               "--out", str(tmp_path / "out"), "--budget", "600", "--bench-compile"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        pid_file = tmp_path / "child.pid"
        deadline = time.monotonic() + 120
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert driver.poll() is None, driver.stdout.read()
            assert time.monotonic() < deadline, "the job did not start"
            time.sleep(0.2)
        child = int(pid_file.read_text())
        assert _alive(child)
        driver.send_signal(signal.SIGTERM)
        assert driver.wait(timeout=60) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the job's child outlived the driver"
    finally:
        driver.kill()
        driver.communicate()
