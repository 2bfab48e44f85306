"""The command-line contract that Snakemake rules and later checks rely on."""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import h5py
import numpy as np
import pytest

from kglnet.cli import main
from kglnet.train import TrainConfig, train


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "kglnet.cli", *map(str, args)], capture_output=True, text=True)


def test_models_lists_name_parameters_input_size_objective(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "kglnet\t6409713\t64\tkglnet" in lines
    assert "kglnet_shared_lowlevel\t6344136\t64\tkglnet" in lines
    assert "tfeat\t599808\t32\ttfeat" in lines
    assert "spimnet\t130872965\t64\tbce_random_negatives" in lines
    assert "mfd_net8\t151203717\t64\tbce_random_negatives" in lines
    assert all(len(line.split("\t")) == 4 for line in lines)


@pytest.fixture(scope="module")
def checkpoint(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_ckpt")
    train(tiny_dataset / "train.h5", tiny_dataset / "val.h5", out,
          TrainConfig(epochs=1, batch_size=16, eval_batch_size=128), progress=False)
    return out / "best.pt"


def test_evaluate_prints_one_json_object_per_file(tiny_dataset, checkpoint, tmp_path, capsys):
    metrics = tmp_path / "m.json"
    rc = main(["evaluate", "--checkpoint", str(checkpoint), "--pairs", str(tiny_dataset / "test.h5"),
               str(tiny_dataset / "val.h5"), "--device", "cpu", "--metrics-out", str(metrics),
               "--roc-out", str(tmp_path / "roc.json"), "--dataset", "tiny"])
    assert rc == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["file"] for line in lines] == [str(tiny_dataset / "test.h5"), str(tiny_dataset / "val.h5")]
    for line in lines:
        assert line["pairs"] > 0
        assert 0.0 <= line["fpr95_descriptor"] <= 100.0 and 0.0 <= line["fpr95_metric"] <= 100.0
    record = json.loads(metrics.read_text())
    assert set(record["test_sets"]) == {"test", "val"}
    assert record["mean"]["fpr95_metric"] == pytest.approx(np.mean([l["fpr95_metric"] for l in lines]))


def test_evaluate_accepts_any_file_of_the_contract(checkpoint, tmp_path, capsys):
    """A pair file written with plain h5py, not by kglnet, is evaluated as well."""
    rng = np.random.default_rng(0)
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f["left"] = rng.integers(0, 256, (10, 64, 64), dtype=np.uint8)
        f["right"] = rng.integers(0, 256, (10, 64, 64), dtype=np.uint8)
        f["label"] = np.array([1, 0] * 5, dtype=np.uint8)
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--pairs", str(path), "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"] == 10


@pytest.mark.parametrize("make_bad, message", [
    (lambda p: None, "not found"),
    (lambda p: p.write_bytes(b"garbage"), "HDF5"),
])
def test_evaluate_bad_pair_file_exits_2_naming_it(checkpoint, tmp_path, make_bad, message, capsys):
    # in this process (a command's start costs seconds); the next test runs the command itself
    bad = tmp_path / "bad.h5"
    make_bad(bad)
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--pairs", str(bad), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and message.lower() in err.lower()
    assert "Traceback" not in err


def test_evaluate_bad_checkpoint_exits_2(tiny_dataset, tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x00" * 10)
    result = run_cli("evaluate", "--checkpoint", bad, "--pairs", tiny_dataset / "test.h5")
    assert result.returncode == 2 and str(bad) in result.stderr
    assert "Traceback" not in result.stderr


def test_baseline_scores_the_same_pairs(tiny_dataset, capsys):
    assert main(["baseline", "--method", "ncc", "--pairs", str(tiny_dataset / "test.h5")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pairs"] > 0 and 0 <= out["fpr95_descriptor"] <= 100


def test_bad_json_config_is_rejected(tmp_path):
    result = run_cli("train", "--train", "a.h5", "--val", "b.h5", "--out-dir", tmp_path, "--config", "{not json")
    assert result.returncode == 2 and "not valid JSON" in result.stderr


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.skipif(not (SHARED / "3mos").is_dir(), reason="no ../shared/data mirror on this machine")
def test_fetch_then_make_mini_from_the_mirror(tmp_path, capsys):
    raw = tmp_path / "raw" / "3mos"
    assert main(["fetch", "--source", "3mos", "--dest", str(raw), "--mirror", str(SHARED), "--no-download",
                 "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 26
    out = tmp_path / "os"
    assert main(["make-mini", "--dataset", "os", "--source-dir", str(raw), "--out-dir", str(out),
                 "--config", '{"keypoints_per_image": 4, "eval_keypoints_per_image": 4}', "--no-progress"]) == 0
    for split in ("train", "val", "test"):
        assert (out / f"{split}.h5").exists()
    # A source file that no longer matches its manifest is refused before any patch is cut.
    victim = raw / "GF3_city.png"
    victim.write_bytes(victim.read_bytes()[:-10])
    result = run_cli("make-mini", "--dataset", "os", "--source-dir", raw, "--out-dir", tmp_path / "os2")
    assert result.returncode == 2 and "GF3_city.png" in result.stderr
    assert not (tmp_path / "os2").exists()


def test_fetch_offline_without_mirror_says_how_to_supply(tmp_path, monkeypatch):
    monkeypatch.delenv("KGLNET_MIRROR", raising=False)
    result = run_cli("fetch", "--source", "3mos", "--dest", tmp_path / "raw", "--no-download", "--no-progress")
    assert result.returncode == 2
    assert "KGLNET_MIRROR" in result.stderr and "mirror" in result.stderr


# -- kglnet train --monitor NAME=FILE.h5 ... ------------------------------------------------------

@pytest.fixture(scope="module")
def micro_train(tiny_dataset, tmp_path_factory):
    """8 positive pairs from the tiny training file, written with plain h5py: a quick training run."""
    with h5py.File(tiny_dataset / "train.h5", "r") as f:
        pos = np.flatnonzero(f["label"][:] == 1)[:8]
        left, right = f["left"][:][pos], f["right"][:][pos]
    path = tmp_path_factory.mktemp("cli_micro") / "train.h5"
    with h5py.File(path, "w") as f:
        f["left"], f["right"], f["label"] = left, right, np.ones(len(pos), dtype=np.uint8)
    return path


def test_train_monitor_puts_test_curves_in_the_history(tiny_dataset, micro_train, tmp_path, capsys):
    history_out = tmp_path / "history.json"
    rc = main(["train", "--train", str(micro_train), "--val", str(tiny_dataset / "val.h5"), "--out-dir",
               str(tmp_path / "run"), "--config", '{"epochs": 1, "batch_size": 4, "select_on": "descriptor"}',
               "--device", "cpu", "--no-progress", "--history-out", str(history_out), "--checkpoint-minutes", "0.5",
               "--monitor", f"test={tiny_dataset / 'test.h5'}", f"val={tiny_dataset / 'val.h5'}"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["select_on"] == "descriptor"
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["checkpoint_minutes"] == 0.5
    (entry,) = json.loads(history_out.read_text())
    assert set(entry["test"]) == {"test", "val"}
    assert entry["test"]["val"]["fpr95_descriptor"] == entry["val_fpr95_descriptor"]
    assert 0.0 <= entry["test"]["test"]["fpr95_metric"] <= 100.0


def test_train_init_from_a_missing_checkpoint_exits_2_naming_it(tiny_dataset, micro_train, tmp_path, capsys):
    missing = tmp_path / "stage1" / "best.pt"
    rc = main(["train", "--train", str(micro_train), "--val", str(tiny_dataset / "val.h5"), "--out-dir",
               str(tmp_path / "run"), "--init-from", str(missing), "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "init_from: checkpoint file does not exist" in err
    assert not (tmp_path / "run" / "last.pt").exists()


def test_train_bad_checkpoint_minutes_exits_2_before_reading_data(tmp_path, capsys):
    rc = main(["train", "--train", "a.h5", "--val", "b.h5", "--out-dir", str(tmp_path / "run"),
               "--checkpoint-minutes", "-1"])
    assert rc == 2 and "checkpoint_minutes must be a number >= 0" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("item", ["test.h5", "=test.h5", "test="])
def test_train_monitor_bad_syntax_exits_2(item, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--train", "a.h5", "--val", "b.h5", "--out-dir", "out", "--monitor", item])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--monitor" in err and "NAME=FILE.h5" in err and repr(item) in err


@pytest.mark.parametrize("make_bad, message", [
    (lambda p: None, "not found"),
    (lambda p: p.write_bytes(b"garbage"), "HDF5"),
])
def test_train_monitor_bad_file_exits_2_naming_it(tiny_dataset, micro_train, tmp_path, make_bad, message, capsys):
    bad = tmp_path / "scene.h5"
    make_bad(bad)
    rc = main(["train", "--train", str(micro_train), "--val", str(tiny_dataset / "val.h5"), "--out-dir",
               str(tmp_path / "run"), "--no-progress", "--monitor", f"ok={tiny_dataset / 'test.h5'}", f"field={bad}"])
    assert rc == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "'field'" in err and message.lower() in err.lower()
    assert not (tmp_path / "run" / "last.pt").exists()


def test_train_monitor_duplicate_name_exits_2(tiny_dataset, micro_train, tmp_path, capsys):
    rc = main(["train", "--train", str(micro_train), "--val", str(tiny_dataset / "val.h5"), "--out-dir",
               str(tmp_path / "run"), "--monitor", f"a={tiny_dataset / 'test.h5'}", f"a={tiny_dataset / 'val.h5'}"])
    assert rc == 2 and "'a' given twice" in capsys.readouterr().err


def test_data_and_report_commands_import_no_torch(tmp_path):
    """Every Snakemake data, baseline and report job is one of these; torch's import would add
    about 2.5 s to each, in the regression check's portable mode too (it sets torch's backends
    only for the commands that run torch)."""
    settings = json.dumps({"seed": 0, "image_size": 160, "images": {"train": 1, "val": 1, "test": 1},
                           "keypoints_per_image": 16})
    code = (
        "import sys\n"
        "from kglnet.cli import main\n"
        f"out = {str(tmp_path)!r}\n"
        "assert main(['make-synthetic', '--out-dir', out, '--config', sys.argv[1], '--no-progress']) == 0\n"
        "assert main(['baseline', '--method', 'ncc', '--pairs', out + '/test.h5', '--names', 'test',\n"
        "             '--dataset', 'd', '--metrics-out', out + '/ncc.json', '--roc-out', out + '/roc.json']) == 0\n"
        "assert main(['report', '--dataset', 'd', '--metrics', out + '/ncc.json', '--roc', out + '/roc.json',\n"
        "             '--table-md', out + '/t.md', '--table-csv', out + '/t.csv', '--summary-out', out + '/s.json',\n"
        "             '--figures-dir', out + '/figures']) == 0\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    env = {**__import__("os").environ, "KGLNET_PORTABLE_CPU": "1"}
    result = subprocess.run([sys.executable, "-c", code, settings], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert json.loads((tmp_path / "ncc.json").read_text())["test_sets"]["test"]["pairs"] > 0
