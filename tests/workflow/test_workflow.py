"""End to end: the real Snakemake workflow and the real DVC pipeline on the tiny config."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kglnet.data.pairfile import read_pairs
from processes import run_group

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
    result = run_group(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory) -> Path:
    """The tiny config as a git + DVC project after one committed `dvc repro`. DVC's stages run
    Snakemake's targets, so this one pipeline run serves the Snakemake checks and the DVC checks
    (running it twice was a third of this file's time)."""
    root = tmp_path_factory.mktemp("tiny")
    project = _copy_project(root / "project", params_from="config/test.yaml")
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
    return project


def test_snakemake_runs_the_tiny_config_end_to_end(tiny_project):
    project = tiny_project
    for path in ("kglnet/seed0", "ncc", "sift"):
        record = json.loads((project / f"results/metrics/builtin/{path}.json").read_text())
        assert record["test_sets"]["test"]["pairs"] > 0
        assert 0 <= record["mean"]["fpr95_metric"] <= 100
    run_record = json.loads((project / "results/metrics/builtin/kglnet/seed0.json").read_text())
    assert run_record["seed"] == 0 and run_record["parameters"] == 6_409_713
    assert run_record["reported"] == "metric" and run_record["architecture"] == "kglnet"
    assert (project / "checkpoints/builtin/kglnet/seed0/best.pt").stat().st_size > 20_000_000  # 6.4 M float32 weights
    for figure in ("figures/builtin/roc_test.png", "figures/builtin/training_kglnet_seed0.png",
                   "figures/builtin/fpr95_vs_parameters.png", "qualitative/builtin/matches_test.png"):
        assert (project / "results" / figure).read_bytes()[:4] == b"\x89PNG", figure
    assert not (project / "results/figures/builtin/fpr95_seeds.png").exists()  # one seed: no spread to show
    # The paper protocol reads the per-epoch test scores of the history.
    history = json.loads((project / "results/training/builtin/kglnet/seed0.json").read_text())
    assert set(history[0]["test"]) == {"test"}
    summary = json.loads((project / "results/metrics/builtin/summary.json").read_text())
    kgl = summary["methods"]["kglnet"]
    assert kgl["seeds"] == [0] and kgl["paper"]["test"]["mean"] == history[0]["test"]["test"]["fpr95_metric"]
    table = (project / "results/tables/builtin.md").read_text()
    for label in ("KGL-Net", "NCC", "SIFT"):
        assert f"| {label} | metric |" in table
    # DVC's three stages made everything `rule all` (the default target) asks for: nothing is
    # left for Snakemake to do.
    dry = run(["snakemake", "-n"], project)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    # The HTML report embeds every flagged figure.
    run(["snakemake", "--report", "report.html"], project)
    html = (project / "report.html").read_text(errors="replace")
    for figure in ("matches_test.png", "roc_test.png", "fpr95_vs_parameters.png", "training_kglnet_seed0.png"):
        assert figure in html, figure


def test_ablations_and_seeds_fan_out_as_independent_jobs(tmp_path):
    project = _copy_project(tmp_path)
    # ablations and a seeds config in one dry run (each Snakemake start costs seconds): every
    # variant and seed is its own training job
    seeds = project / "config/seeds.yaml"
    seeds.write_text("models: {kglnet: {seeds: [0, 3, 7]}}\n")
    dry = run(["snakemake", "-n", "--configfile", "config/test.yaml", str(seeds), "--config", "ablations=True"],
              project)
    out = dry.stdout + dry.stderr
    for name in ("kglnet", "kglnet_descriptor_only", "kglnet_metric_only", "kglnet_random_negatives",
                 "kglnet_no_feature_guided", "kglnet_shared_lowlevel"):
        assert f"checkpoints/builtin/{name}/seed0/best.pt" in out, name
    assert all(f"checkpoints/builtin/kglnet/seed{s}/best.pt" in out for s in (0, 3, 7))
    # a config without a registration entry has no registration benchmark in its default target
    assert "rule registration_benchmark" not in out
    dry = run(["snakemake", "-n", "-p", "--configfile", "config/test.yaml", "--config", "zoo=True"], project)
    out = dry.stdout + dry.stderr
    for name in ("l2net", "hardnet", "sosnet", "hynet", "tfeat", "siamese", "pseudo_siamese",
                 "two_channel", "matchnet"):
        assert f"checkpoints/builtin/{name}/seed0/best.pt" in out, name
    assert '"lr_features": 0.05, "model": "siamese", "momentum": 0.9' in out  # Aguilera's SGD
    for name in ("pnnet", "qnet", "scfdm", "afd_net", "mfd_net2", "mfd_net8", "efr_net", "fil_net", "spimnet"):
        assert f"checkpoints/builtin/{name}/seed0/best.pt" in out, name
    assert '"lr_features": 0.0002, "model": "fil_net", "optimizer": "nadam"' in out  # FIL-Net's Keras Nadam
    # a list picks zoo methods by name (the big networks are slow on a CPU)
    dry = run(["snakemake", "-n", "--configfile", "config/test.yaml", "--config", 'zoo=["qnet","scfdm"]'], project)
    trained = set(re.findall(r"checkpoints/builtin/(\w+)/seed0/best.pt", dry.stdout + dry.stderr))
    assert trained == {"kglnet", "qnet", "scfdm"}


def test_train_by_model_overrides_one_entry_on_one_dataset(tmp_path):
    project = _copy_project(tmp_path)
    extra = project / "config/more-steps.yaml"
    extra.write_text("zoo: [siamese, qnet]\n"
                     "datasets: {builtin: {source: synthetic, test_sets: [test], models: [kglnet],\n"
                     "  train: {epochs: 1}, train_by_model: {siamese: {epochs: 7, batch_size: 32}}}}\n")
    dry = run(["snakemake", "-n", "-p", "--configfile", "config/test.yaml", str(extra)], project)
    epochs = {m: re.search(r'"epochs": (\d+)', line).group(1)
              for line in (dry.stdout + dry.stderr).splitlines() if "kglnet train" in line
              for m in re.findall(r'"model": "(\w+)"', line)}
    # the dataset's `train` sets every entry's epochs; `train_by_model` then only Siamese's
    assert epochs == {"kglnet": "1", "qnet": "1", "siamese": "7"}
    assert re.search(r'"batch_size": 32, [^\n]*"model": "siamese"', dry.stdout + dry.stderr)
    # an entry the dataset does not train is a mistake, named before any job runs
    extra.write_text(extra.read_text().replace("train_by_model: {siamese", "train_by_model: {hardnet"))
    result = subprocess.run(["snakemake", "-n", "--configfile", "config/test.yaml", str(extra)], cwd=project,
                            env=_env(), capture_output=True, text=True)
    assert result.returncode != 0
    assert "datasets.builtin.train_by_model: 'hardnet' is not trained on this dataset" in result.stdout + result.stderr


def _dry_run_with(tmp_path: Path, settings: str) -> subprocess.CompletedProcess:
    """`snakemake -n -p` of the tiny config with ``settings`` (YAML) merged after it, unchecked."""
    project = _copy_project(tmp_path)
    (project / "config/extra.yaml").write_text(settings)
    return subprocess.run(["snakemake", "-n", "-p", "--configfile", "config/test.yaml", "config/extra.yaml"],
                          cwd=project, env=_env(), capture_output=True, text=True)


def test_init_from_makes_a_second_stage_wait_for_the_first(tmp_path):
    dry = _dry_run_with(tmp_path, "datasets: {builtin: {source: synthetic, test_sets: [test], "
                                  "models: [kglnet_then_random]}}\n"
                                  "models: {kglnet_then_random: {model: kglnet, init_from: kglnet, seeds: [0, 2],\n"
                                  "  loss: {negatives: random}}}\n")
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out[-3000:]
    for seed in (0, 2):  # each seed's second stage starts from the first stage's run of that seed
        first = f"checkpoints/builtin/kglnet/seed{seed}/best.pt"
        assert f"output: {first}" in out                              # the first stage is scheduled,
        assert re.search(rf"input: [^\n]*{first}", out)                # the second waits for it
        assert f'"init_from": "{first}"' in out                        # and starts from its weights
    assert re.search(r'"init_from": "checkpoints/builtin/kglnet/seed0/best.pt", "loss": \{"negatives": "random"\}, '
                     r'"model": "kglnet"', out)


@pytest.mark.parametrize("settings, message", [
    ("models: {a: {model: kglnet, init_from: b}}", "models.a.init_from: no model entry 'b'"),
    ("models: {a: {model: kglnet, init_from: b}, b: {model: kglnet, init_from: a}}",
     "start from each other in a circle: a -> b -> a"),
    ("models: {a: {model: l2net, init_from: kglnet}}", "entry 'kglnet' trains 'kglnet', not 'l2net'"),
    ("datasets: {builtin: {source: synthetic, test_sets: [test], models: [kglnet], train: {init_from: kglnet}}}",
     "datasets.builtin.train.init_from: set init_from in the model entry"),
    ("ablations: true\nmodels: {kglnet_first: {model: kglnet}, kglnet: {init_from: kglnet_first}}",
     "ablations: the kglnet entry starts from another entry's weights (init_from: 'kglnet_first')"),
])
def test_a_bad_init_from_is_named_before_any_job(tmp_path, settings, message):
    result = _dry_run_with(tmp_path, f"{settings}\n")
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_registration_benchmark_is_a_rule_of_the_mini_config(tmp_path):
    project = _copy_project(tmp_path)
    dry = run(["snakemake", "-n", "-p", "--configfile", "config/mini.yaml", "config/cpu-smoke.yaml",
               "--", "results/registration/summary.json"], project)
    out = dry.stdout + dry.stderr
    assert "kglnet registration-benchmark --source-dir data/raw/visnir-registration" in out
    assert "--checkpoint checkpoints/visnir/kglnet/seed0/best.pt" in out
    assert "--methods kglnet sift --keypoints sift --max-keypoints 500 --model-transform affine" in out
    # (configs without a registration entry: test_ablations_and_seeds_fan_out_as_independent_jobs)


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
        points = 48 if name in ("country", "lwir_train", "os_train") else 12
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


def test_paper_config_plans_every_run_of_the_paper_on_a_bundle(tmp_path):
    """The default suite's check of the one-command paper run (the run itself, on a fake bundle,
    is the slow test below): the dry run plans every dataset's runs, ablations, baselines and
    seeds, with each dataset's epochs."""
    from kglnet.ablations import ABLATIONS
    from kglnet.zoo import ZOO

    project = _copy_project(tmp_path / "project")
    bundle = _fake_bundle(tmp_path / "mydata")
    dry = run(["snakemake", "-n", "-p", "--configfile", "config/paper.yaml", "--config", f"bundle={bundle}"], project)
    out = dry.stdout + dry.stderr
    per_dataset = (1 + len(ABLATIONS) + len(ZOO)) * 3  # KGL-Net, its ablations and the zoo, three seeds each
    assert re.search(rf"^train\s+{3 * per_dataset}$", out, re.M), out[-3000:]
    for dataset, epochs in (("paper_visnir", 100), ("paper_vislwir", 100), ("paper_os", 200)):
        for model in ("kglnet", "kglnet_shared_lowlevel", "spimnet"):
            for seed in (0, 1, 2):
                assert f"checkpoints/{dataset}/{model}/seed{seed}/best.pt" in out, (dataset, model, seed)
        assert re.search(rf'--out-dir checkpoints/{dataset}/kglnet/seed0 --config .*"epochs": {epochs},', out), dataset
        assert f"results/tables/{dataset}.md" in out
    assert not (project / "data").exists()  # a dry run writes nothing


@pytest.mark.slow  # about 90 s on 2 cores; the dry run above plans the same run in the default suite
def test_paper_config_runs_on_a_bundle_and_checkpoints_evaluate(tmp_path):
    project = _copy_project(tmp_path / "project")
    bundle = _fake_bundle(tmp_path / "mydata")
    short = project / "config/short.yaml"  # 1 epoch of 16 pairs, two seeds: a CPU-sized paper run
    short.write_text("datasets:\n" + "".join(
        f"  paper_{d}: {{train: {{epochs: 1, batch_size: 16}}}}\n" for d in ("visnir", "vislwir", "os")
    ) + "models: {kglnet: {seeds: [0, 1]}}\nablations: false\nzoo: false\n"
      # SIFT stands for the hand-crafted rows: the paper prints its numbers (NCC, LGHD and
      # GISIFT have their own tests)
      + "baselines: [sift]\n")
    # One thread per job, as config/builtin-zoo.yaml's runs: two small jobs share the 2 cores
    # instead of queueing behind each other's imports.
    # VIS-LWIR's pair files only: its training and tables are VIS-NIR's and OS's code paths again
    # (a third of this test's time).
    targets = ["results/tables/paper_visnir.md", "results/qualitative/paper_visnir",
               "results/metrics/paper_os/summary.json", "data/paper_vislwir/train.h5",
               "data/paper_vislwir/test.h5"]
    cmd = ["snakemake", *targets, "--cores", "2", "--set-threads", "train=1", "evaluate_model=1", "qualitative=1",
           "--configfile", "config/paper.yaml", str(short), "--config", f"bundle={bundle}"]
    run(cmd, project)
    for dataset in ("paper_visnir", "paper_vislwir", "paper_os"):
        train, val = read_pairs(project / f"data/{dataset}/train.h5"), read_pairs(project / f"data/{dataset}/val.h5")
        assert len(train) + len(val) == 72 and 0 < len(val) < len(train)
    assert not (project / "results/metrics/paper_vislwir").exists()  # the targets limit the run
    for dataset, tests in (("paper_visnir", PAPER_SETS[1:9]), ("paper_os", ["test"])):
        for seed in (0, 1):
            record = json.loads((project / f"results/metrics/{dataset}/kglnet/seed{seed}.json").read_text())
            assert sorted(record["test_sets"]) == sorted(tests) and record["seed"] == seed
            assert all(r["pairs"] == 18 for r in record["test_sets"].values())
            history = json.loads((project / f"results/training/{dataset}/kglnet/seed{seed}.json").read_text())
            assert len(history) == 1  # the override's 1 epoch replaces the paper's 100 / 200
    assert read_pairs(project / "data/paper_vislwir/test.h5").scene_names == ["lwir_test"]
    # The table puts the paper's numbers beside ours, both protocols, over the two seeds.
    table = (project / "results/tables/paper_visnir.md").read_text()
    assert "## Beside the paper (table `visnir`)" in table and "### KGL-Net" in table and "### SIFT" in table
    assert "| KGL-Net | metric | 2 | validation |" in table and "| KGL-Net | metric | 2 | paper |" in table
    assert table.count("| field | 1.00 |") == 1 and "| field | 39.44 |" in table  # KGL-Net, SIFT
    summary = json.loads((project / "results/metrics/paper_os/summary.json").read_text())
    assert summary["methods"]["kglnet"]["published"] == {"test": 4.36}
    assert summary["methods"]["kglnet"]["validation"]["test"]["n"] == 2
    assert (project / "results/figures/paper_visnir/fpr95_vs_parameters.png").exists()
    assert (project / "results/figures/paper_visnir/fpr95_seeds.png").exists()  # two seeds per run
    assert len(list((project / "results/qualitative/paper_visnir").glob("matches_*.png"))) == 8
    # A trained checkpoint works with the stand-alone evaluate command on any pair file.
    out = run(["kglnet", "evaluate", "--checkpoint", "checkpoints/paper_visnir/kglnet/seed1/best.pt",
               "--pairs", "data/paper_visnir/field.h5"], project)
    assert json.loads(out.stdout.splitlines()[0])["pairs"] == 18


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


def test_dvc_repro_is_up_to_date_then_metrics_params_plots_and_a_remote_work(tiny_project):
    project = tiny_project
    assert (project / "results/metrics/builtin/kglnet/seed0.json").exists()
    second = run(["dvc", "repro"], project)
    assert "Running stage" not in second.stdout  # every stage is up to date
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "results", "--allow-empty"], project)

    metrics = json.loads(run(["dvc", "metrics", "show", "--json"], project).stdout)
    shown = json.dumps(metrics)
    for path in ("summary", "kglnet/seed0", "ncc", "sift"):  # the metrics files are read, with their FPR95
        assert f"results/metrics/builtin/{path}.json" in shown
    assert "fpr95_metric" in shown
    params = project / "params.yaml"
    settings = params.read_text()
    params.write_text(settings.replace("epochs: 1\n      batch_size: 16", "epochs: 2\n      batch_size: 16"))
    diff = run(["dvc", "params", "diff"], project).stdout
    assert "datasets.builtin.train.epochs" in diff
    status = run(["dvc", "status"], project).stdout
    assert "train" in status and "data:" not in status  # only training (and what follows) is stale
    params.write_text(settings)
    # `dvc plots show` renders the committed ROC and training curves
    run(["dvc", "plots", "show", "-o", "plots_html"], project)
    html = (project / "plots_html/index.html").read_text()
    assert "tpr" in html and "val_fpr95_metric" in html

    # A local-folder remote: push, lose the cache and the data, pull everything back.
    run(["dvc", "remote", "add", "-d", "store", str(project.parent / "remote")], project)
    run(["dvc", "push"], project)
    best = project / "checkpoints/builtin/kglnet/seed0/best.pt"
    digest = best.read_bytes()
    # what a fresh clone lacks (DVC's .gitignore files stay: they are committed)
    shutil.rmtree(project / ".dvc/cache")
    shutil.rmtree(project / "checkpoints/builtin")
    shutil.rmtree(project / "data/builtin")
    run(["dvc", "pull"], project)
    assert best.read_bytes() == digest and (project / "data/builtin/test.h5").exists()
    assert "up to date" in run(["dvc", "status"], project).stdout


# A second training and everything after it (about 60 s on 2 cores): outside the default suite.
@pytest.mark.slow
def test_dvc_exp_run_then_metrics_params_and_plots_diff(tiny_project):
    """A hyperparameter changed as an experiment in the workspace, then committed: `dvc metrics
    diff` names each dataset, method, protocol and test set; `dvc plots diff` renders both commits."""
    project = tiny_project
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "results", "--allow-empty"], project)
    params = project / "params.yaml"
    run(["dvc", "exp", "run", "-S", "datasets.builtin.train.epochs=2", "-n", "epochs2"], project)
    assert "epochs2" in run(["dvc", "exp", "show", "--json"], project).stdout
    assert "epochs: 2\n      batch_size: 16" in params.read_text()
    assert len(json.loads((project / "results/training/builtin/kglnet/seed0.json").read_text())) == 2
    assert "up to date" in run(["dvc", "status"], project).stdout
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "two epochs"], project)
    diff = json.loads(run(["dvc", "metrics", "diff", "HEAD~1", "--all", "--json"], project).stdout)
    summary_diff = diff["results/metrics/builtin/summary.json"]
    for protocol in ("validation", "paper"):
        assert f"methods.kglnet.{protocol}.test.mean" in summary_diff
    assert "datasets.builtin.train.epochs" in run(["dvc", "params", "diff", "HEAD~1"], project).stdout
    run(["dvc", "plots", "diff", "HEAD~1", "-o", "plots_diff_html"], project)
    html = (project / "plots_diff_html/index.html").read_text()
    assert "tpr" in html and "val_fpr95_metric" in html
    assert "HEAD~1" in html


@pytest.mark.parametrize("name", ["mini", "paper"])
def test_dvc_pipeline_of_a_config_tracks_every_dataset(name):
    import yaml

    config = yaml.safe_load((REPO / f"config/{name}.yaml").read_text())
    stage = yaml.safe_load((REPO / f"pipelines/{name}/dvc.yaml").read_text())["stages"][name]
    assert stage["wdir"] == "../.." and stage["cmd"] == f"snakemake --cores all --configfile config/{name}.yaml"
    outs = {o if isinstance(o, str) else next(iter(o)) for o in stage["outs"]}
    metrics = {next(iter(m)) for m in stage["metrics"]}
    for dataset in config["datasets"]:
        assert {f"data/{dataset}", f"checkpoints/{dataset}", f"results/tables/{dataset}.md"} <= outs, dataset
        assert f"results/metrics/{dataset}/summary.json" in metrics, dataset


def test_no_patch_of_the_real_imagery_is_committed():
    # ../shared/data/README.md: never commit the imagery or patches cut from it. Qualitative grids
    # show patches, so only the synthetic data's may be in git.
    listed = subprocess.run(["git", "ls-files", "results/qualitative"], cwd=REPO, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    import yaml

    datasets = {Path(p).parts[2] for p in listed.stdout.split()}
    synthetic = set()  # datasets the configurations make from the built-in generator
    for config_file in [REPO / "params.yaml", *sorted((REPO / "config").glob("*.yaml"))]:
        config = yaml.safe_load(config_file.read_text()) or {}
        synthetic |= {n for n, d in config.get("datasets", {}).items() if d.get("source") == "synthetic"}
    assert "ci" in synthetic and "visnir" not in synthetic
    assert datasets <= synthetic, datasets - synthetic
    ignored = subprocess.run(["git", "check-ignore", "-q", "results/qualitative/visnir/matches_field.png"], cwd=REPO)
    assert ignored.returncode == 0
