"""The paper's ablations (described in arXiv 2412.11161, no numbers published), as named variants.

Each variant is KGL-Net's training entry with the changes below; the workflow adds them to every
dataset that trains ``kglnet`` when the config says ``ablations: true``, so each becomes a row of
the tables with its own seeds. Choices where the paper is silent:

* descriptor branch alone: no metric-head loss (``bce_weight 0``); the checkpoint is selected on,
  and the row reports, the descriptor FPR95 (the metric head stays untrained).
* metric branch alone: no triplet or norm term; HNSM-M still mines the metric head's negatives
  from the current descriptors, which now learn only through the feature-guided loss.
* random negatives: the metric head's negative for VIS_i is X_j, j != i drawn uniformly (seeded),
  instead of the hardest one (HNSM-M).
* no feature-guided loss: ``feature_weight 0``.
* shared low-level layers: the registered architecture ``kglnet_shared_lowlevel``, one low-level
  stack for both spectra instead of one per spectrum.
"""

from __future__ import annotations

import copy

__all__ = ["ABLATIONS", "ablation_entries"]

ABLATIONS: dict[str, dict] = {
    "kglnet_descriptor_only": {
        "label": "KGL-Net: descriptor branch alone",
        "select_on": "descriptor",
        "loss": {"bce_weight": 0.0},
    },
    "kglnet_metric_only": {
        "label": "KGL-Net: metric branch alone",
        "loss": {"triplet_weight": 0.0, "norm_weight": 0.0},
    },
    "kglnet_random_negatives": {
        "label": "KGL-Net: random negatives, not HNSM-M",
        "loss": {"negatives": "random"},
    },
    "kglnet_no_feature_guided": {
        "label": "KGL-Net: no feature-guided loss",
        "loss": {"feature_weight": 0.0},
    },
    "kglnet_shared_lowlevel": {
        "label": "KGL-Net: shared low-level layers",
        "model": "kglnet_shared_lowlevel",
    },
}


def ablation_entries(base: dict) -> dict[str, dict]:
    """The ablations as workflow model entries derived from KGL-Net's entry ``base``: its training
    settings and seeds, the variant's label, architecture and loss changes (merged into base's
    ``loss``); ``paper_method`` is dropped (the paper publishes no ablation numbers).

    A ``base`` that starts from trained weights (``init_from``) is refused: an ablation started
    from KGL-Net's weights is not an ablation, and one started afresh does not compare with it."""
    if base.get("init_from"):
        raise ValueError(f"ablations: the kglnet entry starts from another entry's weights (init_from: "
                         f"{base['init_from']!r}), so its ablations would not compare with it; keep models.kglnet "
                         "a run from scratch and give the second stage an entry of its own "
                         "(models.<name>.init_from: kglnet), or set ablations: false")
    entries = {}
    for name, change in ABLATIONS.items():
        entry = {k: copy.deepcopy(v) for k, v in base.items() if k != "paper_method"}
        entry["model"] = change.get("model", base.get("model", "kglnet"))
        entry["label"] = change["label"]
        if "select_on" in change:
            entry["select_on"] = change["select_on"]
        if "loss" in change:
            entry["loss"] = {**entry.get("loss", {}), **change["loss"]}
        entries[name] = entry
    return entries
