"""Training: exact resume after an interruption, checkpoint selection, outputs, bad settings."""

from __future__ import annotations

import json

import pytest
import torch

from kglnet import train as train_module
from kglnet.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from kglnet.models import create_model
from kglnet.train import TrainConfig, TrainingDiverged, train

FAST = dict(batch_size=16, eval_batch_size=128, seed=3)


def weights(path):
    return read_checkpoint(path)["model_state"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def uninterrupted(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    train(tiny_dataset / "train.h5", tiny_dataset / "val.h5", out, TrainConfig(epochs=2, **FAST), resume=False, progress=False)
    return out


def test_outputs_and_history(uninterrupted):
    history = json.loads((uninterrupted / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    for key in ("loss_total", "loss_triplet", "loss_norm", "loss_bce", "loss_feature", "d_pos", "d_neg",
                "val_fpr95_metric", "val_fpr95_descriptor"):
        assert key in history[0]
    best = read_checkpoint(uninterrupted / "best.pt")
    chosen = min(history, key=lambda h: h["val_fpr95_metric"])
    assert best["best"]["epoch"] == chosen["epoch"]  # selected on validation, not test
    assert best["selection"] == "validation"
    config = json.loads((uninterrupted / "config.json").read_text())
    assert config["train"]["batch_size"] == 16 and len(config["inputs_sha256"]["train"]) == 64
    assert not list(uninterrupted.glob(".*tmp"))  # no temporary files left behind


def test_resume_after_interruption_gives_identical_weights(tiny_dataset, uninterrupted, tmp_path, monkeypatch):
    cfg = TrainConfig(epochs=2, **FAST)
    calls = {"n": 0}
    real_loss = train_module.kglnet_loss
    batches_per_epoch = len(train_module._batches(int((train_module.read_pairs(tiny_dataset / "train.h5").label == 1).sum()), 16))

    def interrupted_loss(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == batches_per_epoch + 2:  # in the middle of epoch 2
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_module, "kglnet_loss", interrupted_loss)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_dataset / "train.h5", tiny_dataset / "val.h5", tmp_path, cfg, progress=False)
    assert read_checkpoint(tmp_path / "last.pt")["epoch"] == 1  # the last complete epoch survived
    (tmp_path / "best.pt").unlink()  # what Snakemake does to the outputs of a failed job
    monkeypatch.setattr(train_module, "kglnet_loss", real_loss)

    train(tiny_dataset / "train.h5", tiny_dataset / "val.h5", tmp_path, cfg, resume=True, progress=False)
    assert_same_weights(weights(tmp_path / "last.pt"), weights(uninterrupted / "last.pt"))
    assert_same_weights(weights(tmp_path / "best.pt"), weights(uninterrupted / "best.pt"))
    assert read_checkpoint(tmp_path / "best.pt")["best"] == read_checkpoint(uninterrupted / "best.pt")["best"]
    history = json.loads((tmp_path / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]


def test_resume_ignores_a_checkpoint_of_other_settings(tiny_dataset, uninterrupted, tmp_path):
    # Same directory content, different seed: resuming would silently mix two runs.
    (tmp_path / "last.pt").write_bytes((uninterrupted / "last.pt").read_bytes())
    cfg = TrainConfig(epochs=1, batch_size=16, eval_batch_size=128, seed=4)
    train(tiny_dataset / "train.h5", tiny_dataset / "val.h5", tmp_path, cfg, progress=False)
    assert read_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    assert "starting from scratch" in (tmp_path / "train.log").read_text()


def test_divergence_stops_with_epoch_and_step(tiny_dataset, tmp_path, monkeypatch):
    real_loss = train_module.kglnet_loss

    def nan_loss(*args, **kwargs):
        terms = real_loss(*args, **kwargs)
        terms["total"] = terms["total"] * float("nan")
        return terms

    monkeypatch.setattr(train_module, "kglnet_loss", nan_loss)
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 1"):
        train(tiny_dataset / "train.h5", tiny_dataset / "val.h5", tmp_path, TrainConfig(epochs=1, **FAST), progress=False)
    assert not (tmp_path / "best.pt").exists()


@pytest.mark.parametrize("bad, match", [
    ({"epochs": 0}, "epochs"),
    ({"batch_size": 1}, "batch_size"),
    ({"optimizer": "lbfgs"}, "optimizer"),
])
def test_bad_settings(tiny_dataset, tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        train(tiny_dataset / "train.h5", tiny_dataset / "val.h5", tmp_path, TrainConfig(**{**FAST, **bad}), progress=False)


def test_unknown_setting_is_named():
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig.from_dict({"learning_rate": 0.1})


def test_sgd_optimises_the_metric_head_too():
    model = create_model("kglnet")
    opt = train_module._make_optimizer(model, TrainConfig(optimizer="sgd"))
    in_groups = {id(p) for g in opt.param_groups for p in g["params"]}
    assert all(id(p) in in_groups for p in model.metric_head.parameters())
    assert [g["lr"] for g in opt.param_groups] == [5e-3, 5e-5]


def test_checkpoint_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.pt"
    with pytest.raises(CheckpointError, match="missing.pt: checkpoint file does not exist"):
        load_model(missing)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pt: not a readable checkpoint"):
        load_model(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="foreign.pt: not a kglnet checkpoint"):
        load_model(foreign)
    other_model = tmp_path / "other.pt"
    torch.save({"format": "kglnet-checkpoint", "version": 1, "model_name": "hardnet", "model_state": {}}, other_model)
    with pytest.raises(CheckpointError, match="other.pt: checkpoint is of model 'hardnet'"):
        load_model(other_model)
    mismatched = tmp_path / "mismatched.pt"
    small = torch.nn.Linear(2, 2)
    small.model_name = "kglnet"  # claims to be KGL-Net but holds other weights
    save_checkpoint(mismatched, small)
    with pytest.raises(CheckpointError, match="mismatched.pt: weights do not fit model 'kglnet'"):
        load_model(mismatched)


def test_truncated_checkpoint(uninterrupted, tmp_path):
    data = (uninterrupted / "best.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pt"):
        load_model(cut)
