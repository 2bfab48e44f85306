"""The baselines of the paper's tables as workflow model entries (``zoo: true`` in a config).

Each entry trains a registered model (src/kglnet/models/: descriptors.py, metric_nets.py and one
module per cross-spectral network) with its own paper's objective (src/kglnet/objectives.py, chosen by the model) and optimiser settings, in
the project's loop: same data, augmentation, epochs, batch size (the dataset's / KGL-Net's), seeds,
checkpoint selection on validation and evaluation as KGL-Net. ``settings`` says where each
optimiser setting comes from; where the paper's could not be verified, HardNet's are used and the
label says so.
"""

from __future__ import annotations

import copy

__all__ = ["NOT_BUILT", "ZOO", "zoo_entries"]

# HardNet's code (DagnyT/hardnet, code/HardNet.py): SGD lr 0.1, momentum 0.9, dampening 0.9,
# weight decay 1e-4, lr decayed linearly to 0 over the whole run.
_HARDNET_SGD = {"optimizer": "sgd", "lr_features": 0.1, "momentum": 0.9, "dampening": 0.9,
                "weight_decay": 0.0001, "lr_schedule": "linear"}
# Aguilera et al.'s code (ngunsu/lcsis, train/nirscenes_doall.lua, train.lua): Torch7 optim.sgd,
# lr 0.05, momentum 0.9 (and Torch's default dampening = momentum), weight decay 5e-4, no lr decay.
_AGUILERA_SGD = {"optimizer": "sgd", "lr_features": 0.05, "momentum": 0.9, "dampening": 0.9,
                 "weight_decay": 0.0005}
# The Keras code of SCFDM, AFD-Net, MFD-Net, EFR-Net and FIL-Net (the RRL-Net authors' repository,
# train_model_new.py): learning rate 2e-4, Nadam or Adam, batch 64, 40 epochs.
_KERAS_NADAM = {"optimizer": "nadam", "lr_features": 0.0002}
_KERAS_ADAM = {"optimizer": "adam", "lr_features": 0.0002}
# Q-Net's paper trained Q-Net and PN-Net on VIS-NIR with Torch7's optim.sgd: lr 1.1, momentum 0.9,
# weight decay 1e-4, Torch's default dampening (= momentum) and learningRateDecay 1e-6.
_QNET_SGD = {"optimizer": "sgd", "lr_features": 1.1, "momentum": 0.9, "dampening": 0.9, "weight_decay": 0.0001,
             "lr_schedule": "inverse", "lr_decay": 1e-6}
_RRL_CODE = "RRL-Net authors' Keras code"
# The HyNet authors' train.py (yuruntian/HyNet), which trains both HyNet and SOSNet (the same
# authors): Adam lr 1e-2 (its default optim_method and lr), no weight decay, no lr schedule
# (lr_scheduler 'None'), 512 pairs per batch, 200 epochs.
_HYNET_ADAM = {"optimizer": "adam", "lr_features": 0.01}
_HYNET_CODE = "the HyNet authors' train.py (yuruntian/HyNet), which trains HyNet and SOSNet"
# TFeat's PyTorch training notebook (vbalnt/tfeat, tfeat-train.ipynb): SGD lr 0.1 without
# momentum, weight decay 1e-4, lr times 0.8 every 10 epochs (StepLR), 300 triplets per batch.
_TFEAT_SGD = {"optimizer": "sgd", "lr_features": 0.1, "momentum": 0.0, "weight_decay": 0.0001,
              "lr_schedule": "step", "lr_step_epochs": 10, "lr_step_gamma": 0.8}

#: name -> (table label, the paper's method name or None, training settings, source of the settings)
ZOO: dict[str, dict] = {
    "l2net": {"label": "L2-Net", "paper_method": "L2-Net", "select_on": "descriptor",
              "settings": _HARDNET_SGD,
              "settings_source": "HardNet's code (L2-Net's training code is not public: yuruntian/L2-Net has "
                                 "only the MATLAB descriptor; HardNet trains the same network)"},
    "hardnet": {"label": "HardNet", "paper_method": "HardNet", "select_on": "descriptor",
                "settings": _HARDNET_SGD, "settings_source": "HardNet's code"},
    "sosnet": {"label": "SOSNet", "paper_method": "SOSNet", "select_on": "descriptor",
               "settings": _HYNET_ADAM, "settings_source": _HYNET_CODE},
    "hynet": {"label": "HyNet", "paper_method": "HyNet", "select_on": "descriptor",
              "settings": _HYNET_ADAM, "settings_source": _HYNET_CODE},
    "tfeat": {"label": "TFeat", "paper_method": None, "select_on": "descriptor",
              "settings": _TFEAT_SGD, "settings_source": "TFeat's training notebook (vbalnt/tfeat)"},
    "siamese": {"label": "Siamese", "paper_method": "Siamese", "select_on": "metric",
                "settings": _AGUILERA_SGD, "settings_source": "Aguilera et al.'s code"},
    "pseudo_siamese": {"label": "Pseudo-Siamese", "paper_method": "Pseudo-Siamese", "select_on": "metric",
                       "settings": _AGUILERA_SGD, "settings_source": "Aguilera et al.'s code"},
    "two_channel": {"label": "2-channel", "paper_method": "2-channel", "select_on": "metric",
                    "settings": _AGUILERA_SGD, "settings_source": "Aguilera et al.'s code"},
    "matchnet": {"label": "MatchNet", "paper_method": "MatchNet", "select_on": "metric",
                 "settings": {"optimizer": "sgd", "lr_features": 0.01, "momentum": 0.0, "weight_decay": 0.0},
                 "settings_source": "MatchNet released model (lr 0.01, momentum 0)"},
    "pnnet": {"label": "PN-Net", "paper_method": "PN-Net", "select_on": "descriptor",
              "settings": _QNET_SGD, "settings_source": "Q-Net paper's PN-Net runs"},
    "qnet": {"label": "Q-Net", "paper_method": "Q-Net", "select_on": "descriptor",
             "settings": _QNET_SGD, "settings_source": "Q-Net paper"},
    "scfdm": {"label": "SCFDM", "paper_method": "SCFDM", "select_on": "metric",
              "settings": _KERAS_NADAM, "settings_source": _RRL_CODE},
    "afd_net": {"label": "AFD-Net", "paper_method": "AFD-Net", "select_on": "metric",
                "settings": _KERAS_NADAM, "settings_source": _RRL_CODE},
    "mfd_net2": {"label": "MFD-Net (2 branches)", "paper_method": "MFD-Net (two branches)", "select_on": "metric",
                 "settings": _KERAS_ADAM, "settings_source": _RRL_CODE},
    "mfd_net4": {"label": "MFD-Net (4 branches)", "paper_method": "MFD-Net (four branches)", "select_on": "metric",
                 "settings": _KERAS_ADAM, "settings_source": _RRL_CODE},
    "mfd_net6": {"label": "MFD-Net (6 branches)", "paper_method": "MFD-Net (six branches)", "select_on": "metric",
                 "settings": _KERAS_ADAM, "settings_source": _RRL_CODE},
    "mfd_net8": {"label": "MFD-Net (8 branches)", "paper_method": "MFD-Net (eight branches)", "select_on": "metric",
                 "settings": _KERAS_ADAM, "settings_source": _RRL_CODE},
    "efr_net": {"label": "EFR-Net", "paper_method": "EFR-Net", "select_on": "metric",
                "settings": _KERAS_ADAM, "settings_source": _RRL_CODE},
    "fil_net": {"label": "FIL-Net", "paper_method": "FIL-Net", "select_on": "metric",
                "settings": _KERAS_NADAM, "settings_source": _RRL_CODE},
    "spimnet": {"label": "SPIMNet", "paper_method": "SPIMNet", "select_on": "metric",
                "settings": {"optimizer": "adam", "lr_features": 0.0001, "lr_schedule": "step", "lr_step_epochs": 19,
                             "lr_step_gamma": 0.1},
                "settings_source": "SPIMNet notebook (Adam 1e-4, 1e-5 after epoch 19; its Adam restarts each epoch, not here)"},
}

#: Methods of the paper's tables not built, and why.
NOT_BUILT: dict[str, str] = {
    "MR_3A": ("most likely Quan et al.'s multi-relation attention network (IEEE TIP 2021); only its abstract "
              "is public (no layer sizes, relations, attention design, loss or code), so building it would "
              "mean inventing the network"),
}

# What a zoo entry takes from KGL-Net's: the schedule, and the loop's numeric switches (bf16
# autocast, channels_last) and checkpoint cadence, so a GPU config's fast path covers the baselines
# too. Not compilation (60-100 s per run, more than a small baseline's whole run on a GPU) and not
# the fused optimiser (PyTorch has none for Nadam, FIL-Net's and SCFDM's optimiser).
_SHARED = ("epochs", "batch_size", "augment", "seeds", "eval_batch_size", "precision", "channels_last",
           "checkpoint_every")


def zoo_entries(base: dict, names: list[str] | None = None) -> dict[str, dict]:
    """Workflow model entries of the zoo (all, or those in ``names``), sharing ``base``'s
    (KGL-Net's) epochs, batch size, augmentation, seeds, precision and memory layout, with each
    method's architecture, objective and optimiser settings. An unknown name is an error listing
    the known ones."""
    unknown = sorted(set(names or ()) - set(ZOO))
    if unknown:
        raise ValueError(f"zoo: unknown method(s) {', '.join(unknown)}; known: {', '.join(ZOO)}")
    entries = {}
    for name, spec in ZOO.items():
        if names is not None and name not in names:
            continue
        entry = {k: copy.deepcopy(base[k]) for k in _SHARED if k in base}
        entry.update(model=name, label=spec["label"], select_on=spec["select_on"], **spec["settings"])
        if spec["paper_method"]:
            entry["paper_method"] = spec["paper_method"]
        entries[name] = entry
    return entries
