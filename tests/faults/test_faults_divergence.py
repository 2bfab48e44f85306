"""Issue 8, item 4: a NaN or infinite loss stops training with an error naming the epoch and the
step, and the last good checkpoint stays the one used.

Each row turns the loss of one step non-finite (micro data: 3 steps per epoch, 3 epochs). The run
must raise TrainingDiverged naming that epoch and step; every file of the run folder must be
exactly what it was when the bad step began (the state after the previous epoch); a rerun
without the fault must resume from that state and end bit for bit where a run that never saw the
fault ends.
"""

from __future__ import annotations

import pytest
import torch

from faultkit import MICRO, changed, temp_files, tree
from kglnet import train as train_module
from kglnet.checkpoint import read_checkpoint
from kglnet.train import TrainConfig, TrainingDiverged, train

CATEGORY = "divergence"
EPOCHS = 3
STEPS = 3  # 12 positive pairs in batches of 4

# The middle two rows are `slow` (the default suite keeps the first and the last epoch's; see
# test_faults_kill.py for why).
ROWS = [
    pytest.param(1, 2, float("nan"), id="nan-epoch1-step2"),
    pytest.param(2, 1, float("nan"), id="nan-epoch2-step1", marks=pytest.mark.slow),
    pytest.param(2, 3, float("inf"), id="inf-epoch2-step3", marks=pytest.mark.slow),
    pytest.param(3, 2, float("-inf"), id="neginf-epoch3-step2"),
]


def _config() -> TrainConfig:
    return TrainConfig(epochs=EPOCHS, **MICRO)


@pytest.mark.parametrize("epoch, step, value", ROWS)
def test_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(
        epoch, step, value, fault, micro_data, clean_micro_run, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real_loss = train_module.kglnet_loss
    calls = {"n": 0}
    snapshot: dict = {}

    def faulty_loss(*args, **kwargs):
        calls["n"] += 1
        terms = real_loss(*args, **kwargs)
        if calls["n"] == (epoch - 1) * STEPS + step:
            snapshot.update(tree(out))  # what the run folder held when the bad step began
            terms["total"] = terms["total"] * value if value != value else terms["total"] + value
        return terms

    monkeypatch.setattr(train_module, "kglnet_loss", faulty_loss)
    with pytest.raises(TrainingDiverged) as info:
        train(micro_data["train"], micro_data["val"], out, _config(), resume=False, progress=False)
    monkeypatch.setattr(train_module, "kglnet_loss", real_loss)

    after = tree(out)
    lost = [p for p in changed(snapshot, after) if p != "train.log"] + temp_files(out)
    fault.lost(len(lost), lost)
    message = str(info.value)
    assert f"epoch {epoch}, step {step}" in message, message
    assert ("nan" if value != value else "inf") in message and str(out / "last.pt") in message, message
    assert lost == []
    if epoch == 1:
        assert not (out / "last.pt").exists() and not (out / "best.pt").exists()
    else:
        assert read_checkpoint(out / "last.pt")["epoch"] == epoch - 1
        assert read_checkpoint(out / "best.pt")["best"]["epoch"] < epoch

    # The rerun uses the last good checkpoint and ends where the clean run ends.
    train(micro_data["train"], micro_data["val"], out, _config(), progress=False)
    log = (out / "train.log").read_text()
    if epoch > 1:
        assert f"resuming from {out / 'last.pt'} after epoch {epoch - 1}" in log
    for name in ("last.pt", "best.pt"):
        ours, theirs = read_checkpoint(out / name), read_checkpoint(clean_micro_run / name)
        assert ours["epoch"] == theirs["epoch"]
        for key, tensor in theirs["model_state"].items():
            assert torch.equal(ours["model_state"][key], tensor), (name, key)


def test_cli_reports_divergence_in_one_line(micro_data, tmp_path, nan_loss, capsys):
    """``kglnet train`` ends a diverged run with exit status 1 and one line naming the epoch, the
    step and the checkpoint kept, not a traceback."""
    from faultkit import cli

    rc, err = cli(["train", "--train", micro_data["train"], "--val", micro_data["val"], "--out-dir", tmp_path / "run",
                   "--device", "cpu", "--no-progress", "--config", '{"batch_size": 4, "seed": 5, "epochs": 2}'], capsys)
    assert rc == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kglnet train: error: ") and "epoch 1, step 1" in lines[0], err
