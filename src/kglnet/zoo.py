"""The baselines of the paper's tables as workflow model entries (``zoo: true`` in a config).

Each entry trains a registered model (src/kglnet/models/descriptors.py, metric_nets.py) with its
own paper's objective (src/kglnet/objectives.py, chosen by the model) and optimiser settings, in
the project's loop: same data, augmentation, epochs, batch size (the dataset's / KGL-Net's), seeds,
checkpoint selection on validation and evaluation as KGL-Net. ``settings`` says where each
optimiser setting comes from; where the paper's could not be verified, HardNet's are used and the
label says so.
"""

from __future__ import annotations

import copy

__all__ = ["ZOO", "zoo_entries"]

_HARDNET_SGD = {"optimizer": "sgd", "lr_features": 0.1, "momentum": 0.9, "weight_decay": 0.0001}
_AGUILERA_SGD = {"optimizer": "sgd", "lr_features": 0.05, "momentum": 0.9, "weight_decay": 0.0005}

#: name -> (table label, the paper's method name or None, training settings, source of the settings)
ZOO: dict[str, dict] = {
    "l2net": {"label": "L2-Net", "paper_method": "L2-Net", "select_on": "descriptor",
              "settings": _HARDNET_SGD, "settings_source": "HardNet's (L2-Net's not verified)"},
    "hardnet": {"label": "HardNet", "paper_method": "HardNet", "select_on": "descriptor",
                "settings": _HARDNET_SGD, "settings_source": "HardNet paper (no linear lr decay)"},
    "sosnet": {"label": "SOSNet", "paper_method": "SOSNet", "select_on": "descriptor",
               "settings": _HARDNET_SGD, "settings_source": "HardNet's (SOSNet's not verified)"},
    "hynet": {"label": "HyNet", "paper_method": "HyNet", "select_on": "descriptor",
              "settings": _HARDNET_SGD, "settings_source": "HardNet's (HyNet's not verified)"},
    "tfeat": {"label": "TFeat", "paper_method": None, "select_on": "descriptor",
              "settings": _HARDNET_SGD, "settings_source": "HardNet's (TFeat's not verified)"},
    "siamese": {"label": "Siamese", "paper_method": "Siamese", "select_on": "metric",
                "settings": _AGUILERA_SGD, "settings_source": "Aguilera et al. 2016"},
    "pseudo_siamese": {"label": "Pseudo-Siamese", "paper_method": "Pseudo-Siamese", "select_on": "metric",
                       "settings": _AGUILERA_SGD, "settings_source": "Aguilera et al. 2016"},
    "two_channel": {"label": "2-channel", "paper_method": "2-channel", "select_on": "metric",
                    "settings": _AGUILERA_SGD, "settings_source": "Aguilera et al. 2016"},
    "matchnet": {"label": "MatchNet", "paper_method": "MatchNet", "select_on": "metric",
                 "settings": {"optimizer": "sgd", "lr_features": 0.01, "momentum": 0.0, "weight_decay": 0.0},
                 "settings_source": "MatchNet released model (lr 0.01, momentum 0)"},
}

_SHARED = ("epochs", "batch_size", "augment", "seeds", "eval_batch_size")


def zoo_entries(base: dict) -> dict[str, dict]:
    """Workflow model entries of the zoo, sharing ``base``'s (KGL-Net's) epochs, batch size,
    augmentation and seeds, with each method's architecture, objective and optimiser settings."""
    entries = {}
    for name, spec in ZOO.items():
        entry = {k: copy.deepcopy(base[k]) for k in _SHARED if k in base}
        entry.update(model=name, label=spec["label"], select_on=spec["select_on"], **spec["settings"])
        if spec["paper_method"]:
            entry["paper_method"] = spec["paper_method"]
        entries[name] = entry
    return entries
