"""The zoo: every baseline of the paper's tables as a workflow entry with its own settings."""

import pytest
import torch

from kglnet.evaluation.paper import PAPER_TABLES, paper_numbers
from kglnet.models import create_model, list_models
from kglnet.train import TrainConfig
from kglnet.zoo import NOT_BUILT, ZOO, zoo_entries

BASE = {"model": "kglnet", "epochs": 7, "batch_size": 32, "augment": True, "seeds": [0, 1],
        "lr_features": 0.005, "lr_head": 5e-5, "optimizer": "adam", "label": "KGL-Net"}


def test_every_zoo_method_is_a_registered_model_with_a_known_objective():
    for name in ZOO:
        assert name in list_models(), name
        with torch.device("meta"):
            model = create_model(name)
        assert model.reported_branch == ZOO[name]["select_on"], name
        assert model.input_size in (32, 64), name


def test_entries_take_the_fast_path_switches_but_not_compilation_or_the_fused_optimiser():
    """A GPU config's KGL-Net entry (config/gpu.yaml) gives the baselines its bf16 autocast,
    channels_last and checkpoint cadence; compilation and the fused optimiser stay KGL-Net's."""
    fast = dict(BASE, precision="bf16", channels_last=True, compile="reduce-overhead", fused_optimizer=True,
                checkpoint_every=10)
    entries = zoo_entries(fast)
    for name, entry in entries.items():
        assert (entry["precision"], entry["channels_last"], entry["checkpoint_every"]) == ("bf16", True, 10), name
        assert "compile" not in entry and "fused_optimizer" not in entry, name
        TrainConfig.from_dict({k: v for k, v in entry.items() if k not in ("label", "seeds", "paper_method")})
    # without the switches (the CPU configs) the entries are as before: the exact fp32 path
    assert all("precision" not in e and "channels_last" not in e for e in zoo_entries(BASE).values())


def test_entries_share_the_schedule_and_carry_their_own_optimiser():
    entries = zoo_entries(BASE)
    assert set(entries) == set(ZOO)
    for name, entry in entries.items():
        assert (entry["epochs"], entry["batch_size"], entry["seeds"]) == (7, 32, [0, 1]), name
        assert entry["model"] == name and entry["label"] == ZOO[name]["label"]
        settings = {k: v for k, v in entry.items() if k not in ("label", "seeds", "paper_method")}
        TrainConfig.from_dict(settings)  # every setting is a valid training setting
    assert entries["fil_net"]["optimizer"] == "nadam" and entries["fil_net"]["lr_features"] == 2e-4
    assert entries["efr_net"]["optimizer"] == "adam" and entries["efr_net"]["lr_features"] == 2e-4
    assert entries["qnet"]["dampening"] == 0.9 and entries["qnet"]["lr_features"] == 1.1
    assert entries["qnet"]["lr_schedule"] == "inverse" and entries["qnet"]["lr_decay"] == 1e-6
    # HardNet's code: SGD 0.1 with momentum and dampening 0.9, linear decay to 0
    assert {k: entries["hardnet"][k] for k in ("lr_features", "momentum", "dampening", "lr_schedule")} == \
        {"lr_features": 0.1, "momentum": 0.9, "dampening": 0.9, "lr_schedule": "linear"}
    assert entries["siamese"]["dampening"] == 0.9  # Torch7 optim.sgd's default dampening
    assert entries["spimnet"]["lr_schedule"] == "step" and entries["spimnet"]["lr_step_epochs"] == 19
    assert "lr_head" not in entries["scfdm"]  # one learning rate: the model has no separate head group
    # the HyNet authors' train.py (HyNet and SOSNet): Adam 1e-2, constant, no weight decay
    for name in ("hynet", "sosnet"):
        assert TrainConfig.from_dict({k: v for k, v in entries[name].items()
                                      if k not in ("label", "seeds", "paper_method")}).weight_decay == 0.0
        assert (entries[name]["optimizer"], entries[name]["lr_features"]) == ("adam", 0.01), name
        assert entries[name].get("lr_schedule", "constant") == "constant", name
    # TFeat's notebook: SGD 0.1 without momentum, wd 1e-4, StepLR(10, 0.8)
    assert {k: entries["tfeat"][k] for k in ("momentum", "weight_decay", "lr_step_epochs", "lr_step_gamma")} == \
        {"momentum": 0.0, "weight_decay": 0.0001, "lr_step_epochs": 10, "lr_step_gamma": 0.8}


def test_paper_methods_have_a_published_row():
    for name, spec in ZOO.items():
        if spec["paper_method"] is None:
            continue
        rows = [paper_numbers(t, spec["paper_method"]) for t in PAPER_TABLES]
        assert any(rows), f"{name}: no paper row named {spec['paper_method']!r}"
    # the eight-branch MFD-Net gets the VIS-NIR table's single MFD-Net row
    assert paper_numbers("visnir", "MFD-Net (eight branches)")["mean"] == 0.88
    assert paper_numbers("os", "MFD-Net (two branches)")["test"] == 7.75


def test_a_subset_by_name_and_unknown_names_are_named():
    assert set(zoo_entries(BASE, ["scfdm", "qnet"])) == {"scfdm", "qnet"}
    with pytest.raises(ValueError, match=r"unknown method\(s\) mr3a, rrl_net; known: l2net"):
        zoo_entries(BASE, ["scfdm", "rrl_net", "mr3a"])


def test_not_built_methods_say_why():
    assert set(NOT_BUILT) == {"MR_3A"}
    assert all(len(reason) > 40 for reason in NOT_BUILT.values())
