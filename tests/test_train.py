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


def _subset(source, out, rows):
    """A pair file made of ``rows`` of ``source``, through the project's own writer."""
    from kglnet.data.pairfile import write_pairs

    pairs = train_module.read_pairs(source)
    write_pairs(out, pairs.left[rows], pairs.right[rows], pairs.label[rows])
    return out


def _first_positives(tiny_dataset, tmp_path_factory, n):
    """A training file of the first ``n`` positive pairs of the tiny training file."""
    import numpy as np

    label = train_module.read_pairs(tiny_dataset / "train.h5").label
    return _subset(tiny_dataset / "train.h5", tmp_path_factory.mktemp(f"first{n}") / "train.h5",
                   np.flatnonzero(label == 1)[:n])


@pytest.fixture(scope="module")
def small_train(tiny_dataset, tmp_path_factory):
    """The first 48 positive pairs of the tiny training file: three batches of 16 per epoch, so
    an interruption can fall inside an epoch (half the tiny file's training time)."""
    return _first_positives(tiny_dataset, tmp_path_factory, 48)


@pytest.fixture(scope="module")
def micro_val(tiny_dataset, tmp_path_factory):
    """8 positive and 8 negative pairs of the tiny validation file: scoring the whole file with
    KGL-Net was half of each small training run's time. For tests that compare runs, not scores."""
    import numpy as np

    label = train_module.read_pairs(tiny_dataset / "val.h5").label
    keep = np.sort(np.concatenate([np.flatnonzero(label == 1)[:8], np.flatnonzero(label == 0)[:8]]))
    return _subset(tiny_dataset / "val.h5", tmp_path_factory.mktemp("micro_val") / "val.h5", keep)


@pytest.fixture(scope="module")
def uninterrupted(small_train, tiny_dataset, tmp_path_factory, micro_val):
    out = tmp_path_factory.mktemp("full")
    train(small_train, micro_val, out, TrainConfig(epochs=2, **FAST), resume=False, progress=False)
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
    assert config["model_fingerprint"] == read_checkpoint(uninterrupted / "last.pt")["model_fingerprint"]
    assert not list(uninterrupted.glob(".*tmp"))  # no temporary files left behind


def test_resume_after_interruption_gives_identical_weights(tiny_dataset, small_train, uninterrupted, tmp_path,
                                                           monkeypatch, micro_val):
    cfg = TrainConfig(epochs=2, **FAST)
    calls = {"n": 0}
    real_loss = train_module.kglnet_loss
    batches_per_epoch = len(train_module._batches(int((train_module.read_pairs(small_train).label == 1).sum()), 16))
    assert batches_per_epoch == 3

    def interrupted_loss(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == batches_per_epoch + 2:  # in the middle of epoch 2
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_module, "kglnet_loss", interrupted_loss)
    with pytest.raises(KeyboardInterrupt):
        train(small_train, micro_val, tmp_path, cfg, progress=False)
    assert read_checkpoint(tmp_path / "last.pt")["epoch"] == 1  # the last complete epoch survived
    (tmp_path / "best.pt").unlink()  # what Snakemake does to the outputs of a failed job
    monkeypatch.setattr(train_module, "kglnet_loss", real_loss)

    train(small_train, micro_val, tmp_path, cfg, resume=True, progress=False)
    assert_same_weights(weights(tmp_path / "last.pt"), weights(uninterrupted / "last.pt"))
    assert_same_weights(weights(tmp_path / "best.pt"), weights(uninterrupted / "best.pt"))
    assert read_checkpoint(tmp_path / "best.pt")["best"] == read_checkpoint(uninterrupted / "best.pt")["best"]
    history = json.loads((tmp_path / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]


def test_resume_ignores_a_checkpoint_of_other_settings(tiny_dataset, small_train, uninterrupted, tmp_path, micro_val):
    # Same directory content, different seed: resuming would silently mix two runs.
    (tmp_path / "last.pt").write_bytes((uninterrupted / "last.pt").read_bytes())
    cfg = TrainConfig(epochs=1, batch_size=16, eval_batch_size=128, seed=4)
    train(small_train, micro_val, tmp_path, cfg, progress=False)
    assert read_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    assert "starting from scratch" in (tmp_path / "train.log").read_text()


@pytest.mark.slow  # ~11 s; exact resume itself is covered by the default suite's resume tests
def test_checkpoint_every_writes_last_pt_less_often_and_resumes_exactly(tiny_dataset, micro_train, tmp_path,
                                                                        monkeypatch, micro_val):
    base = dict(augment=False, **MICRO)
    full, sparse = tmp_path / "full", tmp_path / "sparse"
    train(micro_train, micro_val, full, TrainConfig(epochs=3, **base), resume=False, progress=False)
    real_loss = train_module.kglnet_loss
    calls = {"n": 0}

    def interrupted_loss(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2 * 2 + 1:  # first step of epoch 3 (two batches per epoch)
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_module, "kglnet_loss", interrupted_loss)
    cfg = TrainConfig(epochs=3, checkpoint_every=2, **base)
    with pytest.raises(KeyboardInterrupt):
        train(micro_train, micro_val, sparse, cfg, resume=False, progress=False)
    assert read_checkpoint(sparse / "last.pt")["epoch"] == 2  # epoch 1 was not written, epoch 2 was
    monkeypatch.setattr(train_module, "kglnet_loss", real_loss)
    train(micro_train, micro_val, sparse, cfg, progress=False)
    assert "resuming" in (sparse / "train.log").read_text()
    assert read_checkpoint(sparse / "last.pt")["epoch"] == 3  # the last epoch is always written
    assert_same_weights(weights(sparse / "last.pt"), weights(full / "last.pt"))
    assert_same_weights(weights(sparse / "best.pt"), weights(full / "best.pt"))
    assert [h["epoch"] for h in json.loads((sparse / "history.json").read_text())] == [1, 2, 3]
    # how often last.pt is written is not part of what a resume must match
    assert cfg.resume_key() == TrainConfig(epochs=3, **base).resume_key()


def test_resume_inside_an_epoch_gives_identical_weights(tiny_dataset, small_train, uninterrupted, tmp_path,
                                                       monkeypatch, micro_val):
    # checkpoint_minutes this small writes last.pt after every step but an epoch's last; the
    # uninterrupted run (10 minutes: never inside its epochs) must come out identical.
    cfg = TrainConfig(epochs=2, checkpoint_minutes=1e-9, **FAST)
    real_loss = train_module.kglnet_loss
    calls = {"n": 0}

    def interrupted_loss(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3 + 3:  # the last of epoch 2's three steps
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_module, "kglnet_loss", interrupted_loss)
    with pytest.raises(KeyboardInterrupt):
        train(small_train, micro_val, tmp_path, cfg, progress=False)
    state = read_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 1 and (state["partial"]["epoch"], state["partial"]["step"]) == (2, 2)
    assert [h["epoch"] for h in state["history"]] == [1]
    (tmp_path / "best.pt").unlink()  # what Snakemake does to the outputs of a failed job

    calls["n"] = 0

    def counted_loss(*args, **kwargs):
        calls["n"] += 1
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_module, "kglnet_loss", counted_loss)
    train(small_train, micro_val, tmp_path, cfg, progress=False)
    assert calls["n"] == 1  # only epoch 2's last step was left
    assert "inside epoch 2, after step 2" in (tmp_path / "train.log").read_text()
    assert "partial" not in read_checkpoint(tmp_path / "last.pt")  # an epoch's end again
    assert_same_weights(weights(tmp_path / "last.pt"), weights(uninterrupted / "last.pt"))
    assert_same_weights(weights(tmp_path / "best.pt"), weights(uninterrupted / "best.pt"))
    resumed, full = (json.loads((d / "history.json").read_text()) for d in (tmp_path, uninterrupted))
    for a, b in zip(resumed, full, strict=True):  # the epoch's loss sums continued across the interruption
        assert {k: v for k, v in a.items() if "seconds" not in k and "per_s" not in k} == \
               {k: v for k, v in b.items() if "seconds" not in k and "per_s" not in k}


def test_a_mid_epoch_state_past_fewer_epochs_is_not_resumed(tiny_dataset, micro_train, tmp_path, monkeypatch,
                                                            micro_val):
    # Inside epoch 2 of a 2-epoch run, then asked for 1 epoch: that state is no epoch's end.
    real_loss = train_module.kglnet_loss
    calls = {"n": 0}

    def interrupted_loss(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2 + 2:  # epoch 2's second (last) step; last.pt was written after its first
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_module, "kglnet_loss", interrupted_loss)
    with pytest.raises(KeyboardInterrupt):
        train(micro_train, micro_val, tmp_path, TrainConfig(epochs=2, checkpoint_minutes=1e-9, **MICRO),
              progress=False)
    assert read_checkpoint(tmp_path / "last.pt")["partial"]["epoch"] == 2
    monkeypatch.setattr(train_module, "kglnet_loss", real_loss)
    train(micro_train, micro_val, tmp_path, TrainConfig(epochs=1, **MICRO), progress=False)
    assert "starting from scratch" in (tmp_path / "train.log").read_text()
    state = read_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 1 and "partial" not in state


@pytest.mark.parametrize("value", [-1, float("inf"), float("nan"), True, "5"])
def test_bad_checkpoint_minutes_is_named(value):
    with pytest.raises(ValueError, match=r"checkpoint_minutes must be a number >= 0"):
        TrainConfig(checkpoint_minutes=value)


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_bad_checkpoint_every_is_named(value):
    with pytest.raises(ValueError, match=r"checkpoint_every must be an integer >= 1"):
        TrainConfig(checkpoint_every=value)


def test_divergence_stops_with_epoch_and_step(tiny_dataset, tmp_path, nan_loss):
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


@pytest.mark.parametrize("settings, message", [
    ({"model": "qnet", "objective_options": {"normalise": True}},
     r"objective 'quadruplet' of model 'qnet' has no argument\(s\) normalise; it takes: both_positives, normalize, negatives"),
    ({"model": "hardnet", "objective_options": {"margin": 2.0}}, "'hardnet' .* margin; it takes: none"),
    ({"model": "kglnet", "objective_options": {"normalize": True}}, "KGL-Net's loss, whose settings are `loss`"),
    ({"model": "qnet", "objective_options": ["normalize"]}, "objective_options must be a mapping"),
])
def test_bad_objective_options_are_named_before_training(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(settings)


def test_objective_options_reach_the_baselines_objective():
    from kglnet.objectives import quadruplet_objective

    torch.manual_seed(0)
    model = create_model("qnet")
    vis, other = torch.rand(6, 1, 64, 64), torch.rand(6, 1, 64, 64)

    def terms(cfg):
        return train_module.training_terms(model, vis, other, cfg, torch.Generator().manual_seed(5))

    normalized = terms(TrainConfig(model="qnet", objective_options={"normalize": True}))
    direct = quadruplet_objective(model, vis, other, generator=torch.Generator().manual_seed(5), normalize=True)
    paper = terms(TrainConfig(model="qnet"))
    assert normalized["total"].item() == direct["total"].item()
    assert normalized["total"].item() != paper["total"].item()
    # unit descriptors: no distance above 2, where the raw 256-D tanh ones reach 2 * sqrt(256)
    assert normalized["d_pos"].item() <= 2 and paper["d_pos"].item() != normalized["d_pos"].item()


def test_sgd_optimises_the_metric_head_too():
    model = create_model("kglnet")
    opt = train_module._make_optimizer(model, TrainConfig(optimizer="sgd"))
    in_groups = {id(p) for g in opt.param_groups for p in g["params"]}
    assert all(id(p) in in_groups for p in model.metric_head.parameters())
    assert [g["lr"] for g in opt.param_groups] == [5e-3, 5e-5]


def test_lr_schedules_by_position():
    """Each schedule is a function of (epoch, step) alone, so a resumed run follows it exactly."""
    from kglnet.train import lr_factor

    linear = TrainConfig(epochs=2, lr_schedule="linear")
    assert [lr_factor(linear, e, s, 4) for e in (1, 2) for s in range(1, 5)] == \
        [1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125]  # HardNet's linear decay towards 0
    inverse = TrainConfig(lr_schedule="inverse", lr_decay=1e-3)
    assert lr_factor(inverse, 3, 5, 10) == pytest.approx(1 / (1 + 1e-3 * 24))  # Torch7: t = 24 steps done
    step = TrainConfig(epochs=35, lr_schedule="step", lr_step_epochs=19, lr_step_gamma=0.1)
    assert [lr_factor(step, e, 1, 7) for e in (1, 19, 20, 35)] == pytest.approx([1, 1, 0.1, 0.1])
    assert lr_factor(TrainConfig(), 7, 3, 9) == 1.0
    with pytest.raises(ValueError, match="lr_schedule must be one of constant, linear, inverse, step"):
        TrainConfig(lr_schedule="cosine")
    with pytest.raises(ValueError, match="'inverse' needs lr_decay > 0"):
        TrainConfig(lr_schedule="inverse")
    with pytest.raises(ValueError, match="'step' needs lr_step_epochs >= 1"):
        TrainConfig(lr_schedule="step")


def test_linear_schedule_reaches_the_optimiser(tiny_dataset, tmp_path):
    """The optimiser's lr after training is the base lr times the last step's factor."""
    cfg = TrainConfig(model="hardnet", epochs=2, batch_size=16, eval_batch_size=128, optimizer="sgd",
                      lr_features=0.1, dampening=0.9, lr_schedule="linear")
    train(tiny_dataset / "train.h5", tiny_dataset / "val.h5", tmp_path, cfg, progress=False)
    state = read_checkpoint(tmp_path / "last.pt")
    steps = len(train_module._batches(json.loads((tmp_path / "config.json").read_text())["train_positives"], 16))
    lr = state["optimizer_state"]["param_groups"][0]["lr"]
    assert lr == pytest.approx(0.1 * (1 - (2 * steps - 1) / (2 * steps)))
    assert state["optimizer_state"]["param_groups"][0]["dampening"] == 0.9


def test_sgd_dampening_reaches_the_optimiser():
    """Torch7's optim.sgd (Q-Net, PN-Net) damps momentum by default: dampening = momentum."""
    model = create_model("qnet")
    opt = train_module._make_optimizer(model, TrainConfig(model="qnet", optimizer="sgd", momentum=0.9, dampening=0.9))
    assert opt.param_groups[0]["dampening"] == 0.9
    with pytest.raises(ValueError, match=r"dampening must be a number in \[0, 1\)"):
        TrainConfig(dampening=1.0)


def test_nadam_is_keras_nadam_and_unknown_optimizers_are_named():
    """Several cross-spectral baselines were trained with Keras' Nadam (beta 0.9 / 0.999,
    momentum decay 0.004 = Keras' schedule_decay)."""
    model = create_model("hardnet")
    opt = train_module._make_optimizer(model, TrainConfig(model="hardnet", optimizer="nadam", lr_features=2e-4))
    assert isinstance(opt, torch.optim.NAdam)
    group = opt.param_groups[0]
    assert group["lr"] == 2e-4 and group["betas"] == (0.9, 0.999) and group["momentum_decay"] == 0.004
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'; allowed: adam, nadam, sgd"):
        train_module._make_optimizer(model, TrainConfig(model="hardnet", optimizer="rmsprop"))
    with pytest.raises(ValueError, match="fused_optimizer needs optimizer adam or sgd .* got optimizer 'nadam'"):
        TrainConfig(optimizer="nadam", fused_optimizer=True)
    with pytest.raises(ValueError, match="fused_optimizer must be true or false; got 'yes'"):
        TrainConfig(fused_optimizer="yes")
    sgd = train_module._make_optimizer(model, TrainConfig(model="hardnet", optimizer="sgd", fused_optimizer=True))
    assert sgd.defaults["fused"] is True


def test_one_pass_shared_stack_is_for_kglnet_and_its_variants_only():
    assert TrainConfig(one_pass_shared_stack=True).one_pass_shared_stack is True
    assert TrainConfig(model="kglnet_shared_lowlevel", one_pass_shared_stack=True).one_pass_shared_stack is True
    with pytest.raises(ValueError, match="one_pass_shared_stack needs a model with shared descriptor layers .* "
                                         "got model 'hardnet'"):
        TrainConfig(model="hardnet", one_pass_shared_stack=True)
    with pytest.raises(ValueError, match="one_pass_shared_stack must be true or false; got 1"):
        TrainConfig(one_pass_shared_stack=1)


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
    torch.save({"format": "kglnet-checkpoint", "version": 1, "model_name": "not_a_model", "model_state": {}}, other_model)
    with pytest.raises(CheckpointError, match="other.pt: checkpoint is of model 'not_a_model'"):
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


# -- ablations: selection branch, random negatives, resume keys -----------------------------------

@pytest.fixture(scope="module")
def micro_train(tiny_dataset, tmp_path_factory):
    """The first 8 positive pairs of the tiny training file: two batches of 4, about a second per epoch."""
    return _first_positives(tiny_dataset, tmp_path_factory, 8)


MICRO = dict(batch_size=4, eval_batch_size=256, seed=1)


@pytest.mark.parametrize("select_on, best_epoch", [("metric", 1), ("descriptor", 2)])
def test_select_on_picks_the_best_epoch_of_that_branch(tiny_dataset, micro_train, tmp_path, monkeypatch,
                                                       select_on, best_epoch):
    scripted = iter([{"fpr95_metric": 10.0, "fpr95_descriptor": 50.0},
                     {"fpr95_metric": 20.0, "fpr95_descriptor": 30.0},
                     {"fpr95_metric": 15.0, "fpr95_descriptor": 40.0}])
    monkeypatch.setattr(train_module, "validate", lambda *a, **k: next(scripted))
    cfg = TrainConfig(epochs=3, select_on=select_on, **MICRO)
    summary = train(micro_train, tiny_dataset / "val.h5", tmp_path, cfg, resume=False, progress=False)
    assert summary["best"]["epoch"] == best_epoch and summary["select_on"] == select_on
    assert summary["best"]["select_on"] == select_on
    assert read_checkpoint(tmp_path / "best.pt")["best"]["epoch"] == best_epoch
    history = json.loads((tmp_path / "history.json").read_text())
    assert [h["select_on"] for h in history] == [select_on] * 3


def test_bad_select_on_and_loss_settings_are_named():
    with pytest.raises(ValueError, match=r"select_on.*metric, descriptor"):
        TrainConfig(select_on="test")
    with pytest.raises(ValueError, match=r"negatives.*hardest, random"):
        TrainConfig.from_dict({"loss": {"negatives": "semi-hard"}})
    with pytest.raises(ValueError, match="tripplet_weight"):
        TrainConfig.from_dict({"loss": {"tripplet_weight": 0}})
    cfg = TrainConfig.from_dict({"loss": {"bce_weight": 0}, "select_on": "descriptor"})
    assert cfg.loss.bce_weight == 0 and cfg.loss.norm_weight == 0.1 and cfg.select_on == "descriptor"


def test_resume_key_keeps_old_checkpoints_and_refuses_changed_ablations():
    import dataclasses
    import hashlib

    # A checkpoint written before the ablation switches existed fingerprinted exactly this.
    legacy = dataclasses.asdict(TrainConfig())
    for k in ("epochs", "device", "eval_batch_size", "threads", "checkpoint_every", "checkpoint_minutes", "select_on", "weight_decay", "momentum",
              "dampening", "precision", "channels_last", "compile", "lr_schedule", "lr_decay", "lr_step_epochs",
              "lr_step_gamma", "fused_optimizer", "one_pass_shared_stack", "init_from", "objective_options"):
        legacy.pop(k)
    for k in ("triplet_weight", "bce_weight", "feature_weight", "negatives"):
        legacy["loss"].pop(k)
    assert TrainConfig().resume_key() == hashlib.sha256(json.dumps(legacy, sort_keys=True).encode()).hexdigest()
    keys = {TrainConfig().resume_key()}
    for changed in ({"select_on": "descriptor"}, {"loss": {"bce_weight": 0.0}}, {"loss": {"triplet_weight": 0.5}},
                    {"loss": {"feature_weight": 0.0}}, {"loss": {"negatives": "random"}}, {"loss": {"norm_weight": 0.0}},
                    {"model": "kglnet_shared_lowlevel"}, {"weight_decay": 1e-4}, {"momentum": 0.5},
                    {"precision": "bf16"}, {"channels_last": True}, {"compile": "default"},
                    {"dampening": 0.9}, {"lr_schedule": "linear"}, {"fused_optimizer": True},
                    {"one_pass_shared_stack": True}, {"model": "qnet"},
                    {"model": "qnet", "objective_options": {"normalize": True}}):
        keys.add(TrainConfig.from_dict(changed).resume_key())
    assert len(keys) == 19


def test_model_fingerprint_sees_seed_initialisation_and_objective(monkeypatch):
    from kglnet.models import catalog
    from kglnet.models.metric_nets import TwoChannel

    def fingerprint(seed):
        return train_module.model_fingerprint(train_module.create_seeded_model("two_channel", seed))

    assert fingerprint(0) == fingerprint(0) != fingerprint(1)
    before = fingerprint(0)
    # a model that now names another loss: its class and its catalog entry change together
    monkeypatch.setattr(TwoChannel, "objective", "bce_random_negatives")
    monkeypatch.setitem(catalog.MODELS, "two_channel", catalog.ModelInfo("metric_nets", "bce_random_negatives"))
    assert fingerprint(0) != before
    monkeypatch.undo()
    real_init = TwoChannel.__init__

    def other_init(self):
        real_init(self)
        torch.nn.init.zeros_(self.decision.bias)

    monkeypatch.setattr(TwoChannel, "__init__", other_init)
    assert fingerprint(0) != before


def test_resume_refuses_a_checkpoint_of_other_model_code(micro_train, micro_val, tmp_path, monkeypatch):
    """`snakemake --forcerun` after a code change must retrain, not hand back the finished old run."""
    from kglnet.models import catalog
    from kglnet.models.metric_nets import TwoChannel

    cfg = TrainConfig(model="two_channel", epochs=1, optimizer="sgd", lr_features=0.01, augment=False, **MICRO)
    train(micro_train, micro_val, tmp_path, cfg, progress=False)
    first = weights(tmp_path / "last.pt")
    train(micro_train, micro_val, tmp_path, cfg, progress=False)  # same code: the finished run stands
    assert "resuming from" in (tmp_path / "train.log").read_text()
    assert_same_weights(weights(tmp_path / "last.pt"), first)

    monkeypatch.setattr(TwoChannel, "objective", "bce_random_negatives")
    monkeypatch.setitem(catalog.MODELS, "two_channel", catalog.ModelInfo("metric_nets", "bce_random_negatives"))
    train(micro_train, micro_val, tmp_path, cfg, progress=False)
    assert "model code" in (tmp_path / "train.log").read_text()     # the warning names why
    history = json.loads((tmp_path / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1] and "loss_bce" in history[0]

    state = read_checkpoint(tmp_path / "last.pt")                     # written before fingerprints existed
    del state["model_fingerprint"]
    torch.save(state, tmp_path / "last.pt")
    log_lines = len((tmp_path / "train.log").read_text().splitlines())
    train(micro_train, micro_val, tmp_path, cfg, progress=False)
    assert "starting from scratch" in "\n".join((tmp_path / "train.log").read_text().splitlines()[log_lines:])


@pytest.mark.slow  # ~11 s; exact resume itself is covered by the default suite's resume tests
def test_random_negatives_resume_exactly(tiny_dataset, micro_train, tmp_path, micro_val):
    cfg = dict(loss={"negatives": "random"}, augment=False, **MICRO)
    full, split = tmp_path / "full", tmp_path / "split"
    train(micro_train, micro_val, full, TrainConfig.from_dict({**cfg, "epochs": 2}), resume=False, progress=False)
    train(micro_train, micro_val, split, TrainConfig.from_dict({**cfg, "epochs": 1}), resume=False, progress=False)
    train(micro_train, micro_val, split, TrainConfig.from_dict({**cfg, "epochs": 2}), progress=False)
    assert "resuming" in (split / "train.log").read_text()
    assert_same_weights(weights(split / "last.pt"), weights(full / "last.pt"))
    # the negatives' generator really is in use: the hardest-negative run ends elsewhere
    hardest = tmp_path / "hardest"
    train(micro_train, micro_val, hardest, TrainConfig.from_dict({**cfg, "epochs": 2, "loss": {}}),
          resume=False, progress=False)
    assert not torch.equal(weights(hardest / "last.pt")["metric_head.conv.weight"],
                           weights(full / "last.pt")["metric_head.conv.weight"])


# -- per-epoch monitoring of test files (SPEC 5, "paper protocol") --------------------------------

@pytest.fixture(scope="module")
def monitored_runs(tiny_dataset, micro_train, tmp_path_factory, micro_val):
    """The same 2-epoch micro run without and with two monitored files."""
    monitor = {"test": tiny_dataset / "test.h5", "val_again": micro_val}
    plain, watched = tmp_path_factory.mktemp("plain"), tmp_path_factory.mktemp("watched")
    train(micro_train, micro_val, plain, TrainConfig(epochs=2, **MICRO), resume=False, progress=False)
    train(micro_train, micro_val, watched, TrainConfig(epochs=2, **MICRO), resume=False, progress=False,
          monitor=monitor)
    return plain, watched, monitor


def test_monitor_records_test_curves_without_changing_training(tiny_dataset, monitored_runs):
    plain, watched, _ = monitored_runs
    for name in ("last.pt", "best.pt"):
        assert_same_weights(weights(watched / name), weights(plain / name))
    # no extra checkpoint
    assert sorted(p.name for p in watched.iterdir()) == ["best.pt", "config.json", "history.json", "last.pt", "train.log"]
    history = json.loads((watched / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    for h in history:
        assert set(h["test"]) == {"test", "val_again"}
        assert set(h["test"]["test"]) == {"fpr95_metric", "fpr95_descriptor"}
        assert all(0.0 <= v <= 100.0 for v in h["test"]["test"].values())
        # same code path as validation: the validation file monitored gives the validation numbers
        assert h["test"]["val_again"] == {"fpr95_metric": h["val_fpr95_metric"],
                                          "fpr95_descriptor": h["val_fpr95_descriptor"]}
    assert "test" not in json.loads((plain / "history.json").read_text())[0]
    assert json.loads((watched / "config.json").read_text())["monitor"]["test"]["file"] == str(tiny_dataset / "test.h5")


def test_monitor_survives_resume(tiny_dataset, micro_train, monitored_runs, tmp_path, micro_val):
    _, watched, monitor = monitored_runs
    # interrupted after epoch 1 and resumed: the epoch-1 entry and its test curves survive
    train(micro_train, micro_val, tmp_path, TrainConfig(epochs=1, **MICRO), resume=False,
          progress=False, monitor=monitor)
    train(micro_train, micro_val, tmp_path, TrainConfig(epochs=2, **MICRO), progress=False, monitor=monitor)
    assert "resuming" in (tmp_path / "train.log").read_text()
    resumed = json.loads((tmp_path / "history.json").read_text())
    reference = json.loads((watched / "history.json").read_text())
    assert [{k: h[k] for k in ("epoch", "test")} for h in resumed] == [{k: h[k] for k in ("epoch", "test")} for h in reference]
    assert_same_weights(weights(tmp_path / "last.pt"), weights(watched / "last.pt"))


def test_monitor_bad_file_is_named_before_training(tiny_dataset, micro_train, tmp_path, micro_val):
    from kglnet.data import PairFileError

    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5")
    for path in (garbage, tmp_path / "missing.h5"):
        with pytest.raises(PairFileError, match=rf"{path.name}.*monitored test set 'scene'"):
            train(micro_train, micro_val, tmp_path / "out", TrainConfig(epochs=1, **MICRO),
                  progress=False, monitor={"scene": path})
        assert not (tmp_path / "out" / "last.pt").exists()


# -- the baselines train in the same loop, each with its own objective ---------------------------

@pytest.mark.parametrize("model, objective, branches", [
    ("hardnet", "hardnet", ("descriptor",)),
    ("two_channel", "hinge_random_negatives", ("metric",)),
])
def test_a_baseline_trains_with_its_own_objective_and_evaluates(tiny_dataset, micro_train, tmp_path,
                                                                 monkeypatch, model, objective, branches, micro_val):
    from kglnet import objectives
    from kglnet.evaluation.runner import evaluate_checkpoint, write_outputs

    used = []
    real = objectives.get_objective

    def spy(name):
        used.append(name)
        return real(name)

    monkeypatch.setattr(objectives, "get_objective", spy)
    cfg = TrainConfig(model=model, epochs=1, optimizer="sgd", lr_features=0.01, weight_decay=1e-4,
                      augment=False, **MICRO)
    summary = train(micro_train, micro_val, tmp_path / "run", cfg, progress=False)
    assert used and set(used) == {objective}
    assert summary["best"]["epoch"] == 1
    results, rocs = evaluate_checkpoint(tmp_path / "run/best.pt", [str(tiny_dataset / "test.h5")], ["test"],
                                        grid_dir=tmp_path / "grid")
    assert tuple(rocs["test"]) == branches
    assert (results["test"]["fpr95_descriptor"] is None) == ("descriptor" not in branches)
    assert (tmp_path / "grid/matches_test.png").exists()
    record = write_outputs(results, rocs, metrics_out=tmp_path / "m.json", roc_out=tmp_path / "r.json",
                           roc_descriptor_out=tmp_path / "rd.json", dataset="tiny", model=model,
                           label=model, selection="validation", checkpoint=tmp_path / "run/best.pt")
    assert record["reported"] == branches[0] and record["architecture"] == model
    assert json.loads((tmp_path / "rd.json").read_text()) == []  # one branch: no second curve


def test_weight_decay_and_momentum_reach_the_optimiser_and_are_checked():
    from kglnet.models import create_model

    opt = train_module._make_optimizer(create_model("hardnet"), TrainConfig(
        model="hardnet", optimizer="sgd", momentum=0.0, weight_decay=5e-4))
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["momentum"] == 0.0
    assert opt.param_groups[0]["weight_decay"] == 5e-4
    with pytest.raises(ValueError, match="weight_decay"):
        TrainConfig(weight_decay=-1.0)
    with pytest.raises(ValueError, match="momentum"):
        TrainConfig(momentum=1.5)


def test_stop_on_signals_turns_the_first_signal_into_a_request_and_restores_the_handlers():
    import os
    import signal

    from kglnet.train import stop_on_signals

    seen = []
    before = signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    try:
        with stop_on_signals((signal.SIGUSR1,)) as stop:
            assert stop.signum is None
            os.kill(os.getpid(), signal.SIGUSR1)
            assert stop.signum == signal.SIGUSR1 and seen == []  # asked to stop, not handled the old way
            os.kill(os.getpid(), signal.SIGUSR1)  # a second signal: the handler from before takes it
            assert seen == [signal.SIGUSR1]
        os.kill(os.getpid(), signal.SIGUSR1)
        assert seen == [signal.SIGUSR1] * 2
    finally:
        signal.signal(signal.SIGUSR1, before)


def test_training_stopped_on_request_writes_last_pt_at_that_step(tmp_path, tiny_dataset, monkeypatch):
    """The request comes during step 2 (as a signal handler would set it): the loop stops after
    that step, with last.pt holding the state after it, and no best.pt yet."""
    from kglnet.checkpoint import read_checkpoint
    from kglnet.step import TrainStep
    from kglnet.train import StopRequest, TrainingStopped

    stop, real_step, calls = StopRequest(), TrainStep.__call__, []

    def step(self, *args):
        calls.append(1)
        if len(calls) == 2:
            stop.signum = 15
        return real_step(self, *args)

    monkeypatch.setattr(TrainStep, "__call__", step)
    cfg = TrainConfig(epochs=2, batch_size=4, seed=0, threads=1)
    with pytest.raises(TrainingStopped, match=r"stopped by SIGTERM inside epoch 1 after step 2 of \d+; wrote .*last.pt"):
        train(tiny_dataset / "train.h5", tiny_dataset / "val.h5", tmp_path, cfg, progress=False, stop=stop)
    state = read_checkpoint(tmp_path / "last.pt")
    assert len(calls) == 2 and state["epoch"] == 0 and (state["partial"]["epoch"], state["partial"]["step"]) == (1, 2)
    assert not (tmp_path / "best.pt").exists()


# -- init_from: a run that starts from a trained checkpoint (fine-tuning, a second stage) ---------

@pytest.fixture(scope="module")
def first_stage(micro_train, micro_val, tmp_path_factory):
    """One micro epoch of KGL-Net: the run a second stage starts from."""
    out = tmp_path_factory.mktemp("stage1")
    train(micro_train, micro_val, out, TrainConfig(epochs=1, augment=False, **MICRO), resume=False, progress=False)
    return out


def _parameters(state, model_name="kglnet"):
    # the learned parameters (BatchNorm's running statistics move in any training step)
    names = {n for n, _ in create_model(model_name).named_parameters()}
    return {k: v for k, v in state.items() if k in names}


def test_init_from_starts_from_the_checkpoints_weights(micro_train, micro_val, first_stage, tmp_path):
    start = first_stage / "best.pt"
    # learning rates of 0: the second stage's weights are the weights it started from
    cfg = TrainConfig(epochs=1, augment=False, lr_features=0.0, lr_head=0.0, init_from=str(start), **MICRO)
    train(micro_train, micro_val, tmp_path, cfg, resume=False, progress=False)
    assert_same_weights(_parameters(weights(tmp_path / "last.pt")), _parameters(weights(start)))
    scratch = tmp_path / "scratch"  # without init_from the same settings keep the seed's initialisation
    train(micro_train, micro_val, scratch, TrainConfig(epochs=1, augment=False, lr_features=0.0, lr_head=0.0, **MICRO),
          resume=False, progress=False)
    assert not torch.equal(weights(scratch / "last.pt")["low_vis.2.0.weight"], weights(start)["low_vis.2.0.weight"])
    recorded = json.loads((tmp_path / "config.json").read_text())
    assert recorded["init_from"]["file"] == str(start) and recorded["init_from"]["epoch"] == 1
    assert recorded["init_from"]["selection"] == "validation"
    assert recorded["inputs_sha256"]["init"] == train_module.sha256_file(start)
    assert recorded["train"]["init_from"] == str(start)


def test_init_from_resumes_only_on_the_same_starting_weights(micro_train, micro_val, first_stage, tmp_path):
    start = tmp_path / "start.pt"
    start.write_bytes((first_stage / "best.pt").read_bytes())
    run = tmp_path / "run"
    cfg = dict(augment=False, loss={"negatives": "hardest"}, init_from=str(start), **MICRO)
    settings = TrainConfig.from_dict({**cfg, "epochs": 1})
    train(micro_train, micro_val, run, settings, resume=False, progress=False)
    finished = weights(run / "last.pt")
    train(micro_train, micro_val, run, settings, progress=False)  # same start: the finished run stands
    assert "resuming from" in (run / "train.log").read_text()
    assert_same_weights(weights(run / "last.pt"), finished)
    # the first stage retrained (other weights under the same path): the second starts again
    save_checkpoint(start, create_model("kglnet"), selection="validation", epoch=5)
    train(micro_train, micro_val, run, settings, progress=False)
    assert "starting from scratch" in (run / "train.log").read_text()
    assert json.loads((run / "config.json").read_text())["init_from"]["epoch"] == 5


@pytest.mark.parametrize("make_bad, message", [
    (lambda p: None, "checkpoint file does not exist"),
    (lambda p: p.write_bytes(b"not a checkpoint"), "not a readable checkpoint"),
    (lambda p: save_checkpoint(p, create_model("l2net")), "checkpoint is of model 'l2net', expected 'kglnet'"),
])
def test_init_from_a_bad_checkpoint_names_it_before_training(micro_train, micro_val, tmp_path, make_bad, message):
    bad = tmp_path / "start.pt"
    make_bad(bad)
    with pytest.raises(CheckpointError) as exc:
        train(micro_train, micro_val, tmp_path / "run", TrainConfig(epochs=1, init_from=str(bad), **MICRO),
              progress=False)
    assert str(bad) in str(exc.value) and "init_from" in str(exc.value) and message in str(exc.value)
    assert not (tmp_path / "run" / "last.pt").exists()


def test_init_from_weights_that_do_not_fit_are_named(micro_train, micro_val, tmp_path):
    bad = tmp_path / "start.pt"
    model = create_model("kglnet")
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("metric_head")}
    save_checkpoint(bad, model, state)
    with pytest.raises(CheckpointError, match="init_from: weights do not fit model 'kglnet'"):
        train(micro_train, micro_val, tmp_path / "run", TrainConfig(epochs=1, init_from=str(bad), **MICRO),
              progress=False)


def test_init_from_must_be_a_path():
    with pytest.raises(ValueError, match="'init_from' must be a string, got 3"):
        TrainConfig.from_dict({"init_from": 3})
    with pytest.raises(ValueError, match="init_from must be the path of a checkpoint"):
        TrainConfig(init_from=None)
    # a path, like the data files': it does not enter the resume fingerprint (its checksum does)
    assert TrainConfig(init_from="a/best.pt").resume_key() == TrainConfig().resume_key()
