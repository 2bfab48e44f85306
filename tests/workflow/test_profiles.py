"""The cluster profiles (workflow/profiles/slurm, workflow/profiles/kubernetes), by dry run only:
every (dataset, model, seed) training run is its own job with one GPU, the light rules get none,
and every rule the profiles name exists. Nothing is submitted."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kglnet.ablations import ablation_entries
from kglnet.zoo import zoo_entries

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("device_plan", REPO / "workflow" / "scripts" / "device_plan.py")
device_plan = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(device_plan)
BIN = Path(sys.executable).parent  # snakemake of this environment, with the executor plugins

PROFILES = ("slurm", "kubernetes")
GPU_RULES = {"train", "evaluate_model", "qualitative"}
# Site values of the SLURM profile come from these variables (Snakemake expands $VARS in resources).
SITE = {"KGLNET_SLURM_ACCOUNT": "acct-test", "KGLNET_SLURM_PARTITION": "cpu-test",
        "KGLNET_SLURM_GPU_PARTITION": "gpu-test"}

# Two synthetic datasets x two model entries x three seeds: 12 training jobs.
FANOUT = {
    "datasets": {
        name: {"source": "synthetic", "synthetic": {"seed": 0, "image_size": 160,
                                                    "images": {"train": 4, "val": 2, "test": 2},
                                                    "keypoints_per_image": 16},
               "test_sets": ["test"], "models": ["kglnet", "kglnet_b"], "train": {"epochs": 1, "batch_size": 16}}
        for name in ("synth_a", "synth_b")
    },
    "models": {
        "kglnet": {"label": "KGL-Net", "epochs": 1, "batch_size": 16, "seeds": [0, 1, 2]},
        "kglnet_b": {"model": "kglnet", "label": "KGL-Net b", "epochs": 1, "batch_size": 16, "seeds": [0, 1, 2]},
    },
    "baselines": ["ncc", "sift"],
    "evaluation": {"batch_size": 64, "device": "cpu"},
}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGLNET_SLURM_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env | SITE


@pytest.fixture(scope="module")
def project(tmp_path_factory, workflow_copy) -> Path:
    """A copy of the workflow (no data, checkpoints or results); dry runs write only .snakemake/."""
    dest = workflow_copy(tmp_path_factory.mktemp("project"))
    (dest / "config/fanout.yaml").write_text(yaml.safe_dump(FANOUT))
    return dest


_RUNS: dict[tuple, str] = {}


def dry_run(project: Path, profile: str, *configs: str) -> str:
    """Output of one dry run with the profile alone (--workflow-profile none, as docs/cluster.md
    says), printed shell commands included; made once per (profile, configs)."""
    key = (profile, configs)
    if key not in _RUNS:
        cmd = ["snakemake", "--profile", f"workflow/profiles/{profile}", "--workflow-profile", "none",
               "--configfile", *configs, "-n"]
        result = subprocess.run(cmd, cwd=project, env=_env(), capture_output=True, text=True, timeout=300)
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{output[-4000:]}"
        _RUNS[key] = output
    return _RUNS[key]


def jobs(output: str) -> list[dict]:
    """The jobs of a dry run: rule, wildcards, threads, resources and shell command of each (the
    parser device_plan.py makes its plans with; the target rule `all` has no command)."""
    return device_plan.parse_dry_run(output, require_shell=False)


def expected_runs(config: dict) -> set[tuple[str, str, str]]:
    """(dataset, model, seed) of every training run of a config, its ablations and zoo included
    (the entries workflow/rules/common.smk adds)."""
    models = dict(config["models"])
    extra = {}
    if config.get("ablations"):
        extra |= ablation_entries(models["kglnet"])
    if config.get("zoo"):
        zoo = config["zoo"]
        extra |= zoo_entries(models["kglnet"], zoo) if isinstance(zoo, list) else zoo_entries(models["kglnet"])
    models = extra | models
    runs = set()
    for name, ds in config["datasets"].items():
        names = list(ds["models"]) + ([n for n in extra if n not in ds["models"]] if "kglnet" in ds["models"] else [])
        runs |= {(name, m, str(s)) for m in names for s in models[m].get("seeds", [0])}
    return runs


def check_resources(profile: str, job: dict) -> None:
    rule, res = job["rule"], job["resources"]
    if rule in GPU_RULES:
        assert res.get("gpu") == "1", job
        if profile == "kubernetes":  # nvidia.com/gpu with a limit (scale=0) and the NVIDIA toleration
            assert res.get("gpu_manufacturer") == "nvidia" and res.get("scale") == "0", job
        else:
            assert res.get("slurm_partition") == SITE["KGLNET_SLURM_GPU_PARTITION"], job
    else:
        assert "gpu" not in res, job
        if profile == "slurm":
            assert res.get("slurm_partition") == SITE["KGLNET_SLURM_PARTITION"], job
    assert int(res["mem_mb"]) >= 4000, job
    if profile == "slurm":
        assert res.get("slurm_account") == SITE["KGLNET_SLURM_ACCOUNT"] and int(res["runtime"]) >= 60, job


@pytest.mark.parametrize("profile", PROFILES)
def test_every_training_run_is_one_gpu_job(profile, project):
    out = dry_run(project, profile, "config/fanout.yaml")
    found = jobs(out)
    train = [j for j in found if j["rule"] == "train"]
    runs = {(j["wildcards"]["dataset"], j["wildcards"]["model"], j["wildcards"]["seed"]) for j in train}
    assert len(train) == len(runs) == 2 * 2 * 3
    assert runs == expected_runs(FANOUT)
    for job in train:
        assert job["threads"] == 16 and "--threads 16" in job["shell"], job
    for job in found:
        if job["rule"] != "all":  # the target rule runs nothing
            check_resources(profile, job)
    if profile == "kubernetes":  # no shared filesystem: outputs go to the default storage
        assert "/mnt/kglnet/checkpoints/synth_a/kglnet/seed0/best.pt (send to storage)" in out


@pytest.mark.parametrize("profile", PROFILES)
def test_mini_config_fans_out_and_light_rules_get_no_gpu(profile, project):
    config = yaml.safe_load((project / "config/mini.yaml").read_text())
    found = jobs(dry_run(project, profile, "config/mini.yaml"))
    train = [j for j in found if j["rule"] == "train"]
    runs = {(j["wildcards"]["dataset"], j["wildcards"]["model"], j["wildcards"]["seed"]) for j in train}
    assert len(train) == len(runs) == len(expected_runs(config))
    assert runs == expected_runs(config)
    rules = {j["rule"] for j in found}
    assert {"fetch_source", "make_mini_visnir", "evaluate_baseline", "registration_benchmark", "report"} <= rules
    for job in found:
        if job["rule"] != "all":
            check_resources(profile, job)


def test_profiles_name_only_rules_of_the_workflow(project):
    """Snakemake ignores set-resources / set-threads of unknown rules: a typo would go unnoticed."""
    listed = subprocess.run(["snakemake", "--list-rules", "--workflow-profile", "none", "--configfile",
                             "config/mini.yaml"], cwd=project, env=_env(), capture_output=True, text=True,
                            timeout=300)
    assert listed.returncode == 0, listed.stderr[-3000:]
    rules = {line.split()[0] for line in listed.stdout.splitlines() if line[:1].strip()}  # name (docstring)
    assert {"train", "make_mini_os_patchsplit", "convert_bundle_train", "registration_benchmark"} <= rules
    for profile in PROFILES:
        settings = yaml.safe_load((project / f"workflow/profiles/{profile}/config.yaml").read_text())
        named = set(settings["set-resources"]) | set(settings["set-threads"])
        assert named <= rules, (profile, sorted(named - rules))


def test_kubernetes_jobs_write_and_read_where_their_files_are_declared(project):
    """Under a storage provider a job's files are local copies under .snakemake/storage/: every
    folder a command writes to or reads from must be one of those, never a path built from the
    wildcards (the pod would write beside what Snakemake uploads, or read what it never got)."""
    out = dry_run(project, "kubernetes", "config/fanout.yaml") + dry_run(project, "kubernetes", "config/mini.yaml")
    for flag in ("--out-dir", "--dest", "--source-dir"):
        dirs = re.findall(rf"{flag} (\S+)", out)
        assert dirs and all(d.startswith(".snakemake/storage/") for d in dirs), (flag, sorted(set(dirs))[:5])
