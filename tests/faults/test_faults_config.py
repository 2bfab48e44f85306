"""Issue 8, item 6: configuration mistakes fail before any work starts, naming the key and the
allowed values.

``kglnet`` rows run the command in this process with a bad ``--config`` / argument: exit status
2, one error line naming the key and what it may be, and nothing created (not even the output
folder). ``snakemake`` rows run the workflow on a copy of the project with a bad config file:
it must stop while reading the configuration, before any job, so the copy gains no data,
checkpoint, result or log.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from faultkit import MICRO, cli, subprocess_env, temp_files, tree

CATEGORY = "config"
REPO = Path(__file__).resolve().parents[2]


def _train(settings: dict) -> list:
    return ["train", "--train", "{train}", "--val", "{val}", "--out-dir", "{out}", "--device", "cpu", "--no-progress",
            "--config", json.dumps(settings)]


# id -> (kglnet arguments, fragments the error must contain: the key and the allowed values)
CLI_ROWS = {
    "train-unknown-key": (_train({**MICRO, "epoch": 3}), ["'epoch'", "allowed:", "'epochs'"]),
    "train-wrong-type-int": (_train({**MICRO, "epochs": "3"}), ["'epochs'", "an integer", "'3' (str)"]),
    "train-wrong-type-bool": (_train({**MICRO, "augment": "no"}), ["'augment'", "true or false"]),
    "train-wrong-type-number": (_train({**MICRO, "lr_features": "5e-3"}), ["'lr_features'", "a number"]),
    "train-unknown-model": (_train({**MICRO, "model": "kgl_net"}), ["'kgl_net'", "registered models:", "kglnet"]),
    "train-unknown-optimizer": (_train({**MICRO, "optimizer": "adamw"}), ["'adamw'", "allowed: adam, nadam, sgd"]),
    "train-unknown-loss-key": (_train({**MICRO, "loss": {"margn": 1.0}}), ["'margn'", "allowed:", "'margin'"]),
    "synthetic-wrong-type": (["make-synthetic", "--out-dir", "{out}", "--config", '{"image_size": "160"}'],
                             ["'image_size'", "an integer"]),
    "synthetic-unknown-key": (["make-synthetic", "--out-dir", "{out}", "--config", '{"image_sizes": 160}'],
                              ["'image_sizes'", "allowed:", "'image_size'"]),
    "mini-unknown-dataset": (["make-mini", "--dataset", "visnri", "--source-dir", "{out}/raw", "--out-dir", "{out}"],
                             ["'visnri'", "allowed: visnir"]),
}


def _kglnet_row(name, fault, micro_data, tmp_path, capsys) -> None:
    argv, fragments = CLI_ROWS[name]
    out = tmp_path / "out"
    fill = {"{train}": str(micro_data["train"]), "{val}": str(micro_data["val"]), "{out}": str(out)}
    argv = [fill.get(a, a).replace("{out}", str(out)) for a in argv]
    rc, err = cli(argv, capsys)
    created = sorted(tree(tmp_path))
    fault.lost(len(temp_files(tmp_path)))  # nothing partial may be left, whatever was created
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert not out.exists() and created == []


# -- the workflow's configuration ------------------------------------------------------------------

def _test_config() -> dict:
    return yaml.safe_load((REPO / "config/test.yaml").read_text())


def _set(path: str, value):
    """A change of config/test.yaml: set the dotted ``path`` to ``value``."""
    def change(cfg: dict) -> dict:
        *parents, last = path.split(".")
        node = cfg
        for key in parents:
            node = node[key]
        node[last] = value
        return cfg
    return change


def _rename_dataset(cfg: dict) -> dict:
    ds = cfg["datasets"].pop("builtin")
    cfg["datasets"]["visnri"] = {**{k: v for k, v in ds.items() if k != "synthetic"}, "source": "mini"}
    return cfg


SNAKEMAKE_ROWS = {
    "snakemake-wrong-type": (_set("models.kglnet.epochs", "3"), ["epochs", "'3' is not of type 'integer'"]),
    "snakemake-unknown-optimizer": (_set("models.kglnet.optimizer", "adamw"),
                                    ["optimizer", "'adamw' is not one of ['adam', 'nadam', 'sgd']"]),
    "snakemake-unknown-model": (_set("datasets.builtin.models", ["kglnet", "hardnett"]),
                                ["datasets.builtin.models", "'hardnett'", "(kglnet)"]),
    "snakemake-unknown-architecture": (_set("models.kglnet.model", "kgl_net"),
                                       ["models.kglnet", "'kgl_net'", "one of", "hardnet"]),
    "snakemake-unknown-dataset": (_rename_dataset, ["datasets.visnri", "one of visnir"]),
    # The schema leaves these sections free-form; workflow/rules/common.smk builds each run's settings.
    "snakemake-dataset-train-unknown-key": (_set("datasets.builtin.train.epoch", 2),
                                            ["datasets.builtin.train", "'epoch'", "allowed:"]),
    "snakemake-loss-unknown-key": (_set("models.kglnet.loss", {"tripplet_weight": 1.0}),
                                   ["models.kglnet", "tripplet_weight"]),
    "snakemake-synthetic-wrong-type": (_set("datasets.builtin.synthetic.keypoints_per_image", "many"),
                                       ["datasets.builtin.synthetic", "keypoints_per_image"]),
}
XFAIL: dict[str, str] = {}  # rows whose fault is known not to be survived yet (strict xfail)


@pytest.fixture(scope="module")
def project(tmp_path_factory, workflow_copy) -> Path:
    """A copy of the workflow (no data, checkpoints or results)."""
    return workflow_copy(tmp_path_factory.mktemp("project"))


def _snakemake_row(name, fault, project, tmp_path) -> None:
    change, fragments = SNAKEMAKE_ROWS[name]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(change(_test_config())))
    before = sorted(tree(project))
    result = subprocess.run(["snakemake", "--cores", "1", "--configfile", str(bad)], cwd=project,
                            env=subprocess_env(), capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    made = [p for p in sorted(tree(project)) if p not in before and not p.startswith(".snakemake/")]
    fault.lost(len(temp_files(project)))  # nothing partial may be left, whatever was made
    if made:
        fault.note(f"work started before the error: {made[:5]}")
    for folder in ("data", "checkpoints", "results", "logs"):  # work started there, if at all
        shutil.rmtree(project / folder, ignore_errors=True)
    assert result.returncode != 0, output[-2000:]
    for fragment in fragments:
        assert fragment in output, (fragment, output[-3000:])
    assert made == []


ROWS = [*CLI_ROWS, *SNAKEMAKE_ROWS]
# Each snakemake row costs a Snakemake start (3 to 5 s on 2 cores): the default suite keeps one row
# per way a mistake is caught (the schema; common.smk's checks of names; its checks of the
# free-form sections), `-m slow` (and the fault report) run the others.
FAST_SNAKEMAKE_ROWS = {"snakemake-wrong-type", "snakemake-unknown-model", "snakemake-dataset-train-unknown-key"}


def _marks(name: str) -> tuple:
    if name in XFAIL:
        return (pytest.mark.xfail(strict=True, reason=XFAIL[name]),)
    return (pytest.mark.slow,) if name in SNAKEMAKE_ROWS and name not in FAST_SNAKEMAKE_ROWS else ()


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(n)) for n in ROWS])
def test_config_mistake_fails_before_any_work(name, fault, micro_data, tmp_path, capsys, request):
    if name in CLI_ROWS:
        _kglnet_row(name, fault, micro_data, tmp_path, capsys)
    else:
        _snakemake_row(name, fault, request.getfixturevalue("project"), tmp_path)
