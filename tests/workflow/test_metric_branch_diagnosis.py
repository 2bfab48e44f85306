"""workflow/scripts/metric_branch_diagnosis.py: what a KGL-Net metric head separates."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from kglnet.checkpoint import load_model
from kglnet.data.pairfile import read_pairs
from kglnet.evaluation.fpr95 import fpr95_descriptor, fpr95_metric
from kglnet.inference import score_pairs

SCRIPT = Path(__file__).resolve().parents[2] / "workflow" / "scripts" / "metric_branch_diagnosis.py"


def _load():
    spec = importlib.util.spec_from_file_location("metric_branch_diagnosis", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


diagnosis = _load()


def test_groups_and_test_scores_match_the_evaluation(tiny_dataset, untrained_checkpoint, tmp_path):
    ckpt = untrained_checkpoint("kglnet")
    out = tmp_path / "diag.json"
    assert diagnosis.main(["--train", str(tiny_dataset / "train.h5"), "--test", str(tiny_dataset / "test.h5"),
                           "--out", str(out), "--batch-size", "16", f"init={ckpt}"]) == 0
    r = json.loads(out.read_text())["init"]
    train, test = read_pairs(tiny_dataset / "train.h5"), read_pairs(tiny_dataset / "test.h5")
    full = train.positives // 16 * 16  # full batches only, as training takes them
    assert full > 0
    for group in ("positive", "hardest negative", "random negative"):
        assert r["logit"][group]["n"] == full
    assert r["logit"]["test positive"]["n"] == test.positives
    assert r["logit"]["test negative"]["n"] == test.negatives
    assert r["mining_batchnorm"] == "batch"
    # The test comparison is the tables' FPR95 of the same checkpoint, computed independently.
    model, _ = load_model(ckpt)
    scores = score_pairs(model, test.left, test.right, batch_size=64)
    assert r["test"]["metric_fpr95"] == pytest.approx(fpr95_metric(scores["probability"], test.label), abs=1e-6)
    assert r["test"]["descriptor_fpr95"] == pytest.approx(fpr95_descriptor(scores["distance"], test.label), abs=1e-6)
    # The hardest negative is, by construction, no farther in descriptor space than a random one.
    d = r["descriptor_distance_mean"]
    assert d["hardest negative"] < d["random negative"]
    for key in ("training_positive_vs_hardest_negative", "training_positive_vs_random_negative", "test"):
        assert 0.0 <= r[key]["metric_auc"] <= 1.0


def test_descriptor_model_is_refused(tiny_dataset, untrained_checkpoint, tmp_path):
    with pytest.raises(SystemExit, match="hardnet.*has no KGL-Net metric head"):
        diagnosis.main(["--train", str(tiny_dataset / "train.h5"), "--test", str(tiny_dataset / "test.h5"),
                        "--out", str(tmp_path / "d.json"), f"h={untrained_checkpoint('hardnet')}"])
    assert not (tmp_path / "d.json").exists()


def test_run_without_name_is_refused(tiny_dataset, tmp_path, capsys):
    with pytest.raises(SystemExit):
        diagnosis.main(["--train", str(tiny_dataset / "train.h5"), "--test", str(tiny_dataset / "test.h5"),
                        "--out", str(tmp_path / "d.json"), "no-equals-sign.pt"])
    assert "expected NAME=CHECKPOINT" in capsys.readouterr().err
