"""What a KGL-Net checkpoint's metric head tells apart: the pairs it trains on, or the test's.

The metric head learns from HNSM-M examples: each training positive beside the hardest negative
in its 256-pair batch (the other-spectrum patch nearest to the visible one in descriptor space).
The test file's negatives are other pairs. A head that separates one kind and not the other
shows where learning stops; a head whose logits hardly vary has learned nothing at all.

For each checkpoint this scores, without augmentation:
  - the training positives, in shuffled batches of 256 (seeded), beside each batch's HNSM-M
    hardest negatives, mined with the batch's BatchNorm statistics as training does (or the
    running ones: --mining running), and beside a random in-batch negative (the next pair of
    the shuffled batch);
  - the test file's pairs, with the workflow's own scoring (kglnet.inference.score_pairs);
and writes, per group, the metric logit's mean and standard deviation, and for each pair of
groups the ROC AUC and the metric FPR95 (the tables' definition), plus the descriptor's FPR95
on the same pairs. Output: one JSON, and a Markdown table on stdout.

    python workflow/scripts/metric_branch_diagnosis.py --train data/os/train.h5 \
        --test data/os/test.h5 --out diag.json run1=path/best.pt run2=path/last.pt
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from kglnet.checkpoint import load_model
from kglnet.data.pairfile import read_pairs
from kglnet.evaluation.fpr95 import fpr95_descriptor, fpr95_metric
from kglnet.inference import score_pairs
from kglnet.losses import hardest_negatives
from kglnet.step import to_unit_float


def _batch(model, vis_u8: np.ndarray, other_u8: np.ndarray):
    vis = to_unit_float(torch.from_numpy(vis_u8))
    other = to_unit_float(torch.from_numpy(other_u8))
    return model.features(vis, other)


@torch.no_grad()
def diagnose(checkpoint: Path, train_file: Path, test_file: Path, batch_size: int, seed: int,
             mining: str = "batch") -> dict:
    model, state = load_model(checkpoint)
    if not hasattr(model, "metric_logits"):
        raise SystemExit(f"{checkpoint}: model {state['model_name']!r} has no KGL-Net metric head")
    # The descriptor's BatchNorm is the only layer whose output depends on the mode. Training
    # mines with batch statistics, so "batch" mines as training does, on a copy: in training
    # mode BatchNorm updates its running statistics, which the test's scoring must not see.
    miner = copy.deepcopy(model).train(mining == "batch")
    train = read_pairs(train_file)
    positives = np.flatnonzero(train.label == 1)
    order = np.random.default_rng(seed).permutation(positives)
    logits = {"positive": [], "hardest negative": [], "random negative": []}
    distance = {"positive": [], "hardest negative": [], "random negative": []}
    for start in range(0, len(order) - batch_size + 1, batch_size):  # full batches, as in training
        idx = order[start:start + batch_size]  # shuffled, so the next pair is a random one
        f = _batch(miner, train.left[idx], train.right[idx])
        hard = hardest_negatives(f.desc_vis, f.desc_other).vis_other_index
        shift = torch.roll(torch.arange(batch_size), 1)  # never the pair itself
        for name, j in (("positive", torch.arange(batch_size)), ("hardest negative", hard), ("random negative", shift)):
            logits[name].append(model.metric_logits(f.diff_vis, f.diff_other.index_select(0, j)))
            distance[name].append((f.desc_vis - f.desc_other.index_select(0, j)).norm(dim=1))
    test = read_pairs(test_file)
    # The test pairs are scored as the workflow scores them. The logit is recovered from the
    # float32 probability: order-preserving, and precise while the probability stays off 0 and 1.
    scored = score_pairs(model, test.left, test.right, batch_size=batch_size)
    t_logit = torch.logit(torch.from_numpy(scored["probability"]).double()).numpy()
    t_dist = scored["distance"]
    groups = {k: torch.cat(v).numpy() for k, v in logits.items()}
    dists = {k: torch.cat(v).numpy() for k, v in distance.items()}
    groups["test positive"], groups["test negative"] = t_logit[test.label == 1], t_logit[test.label == 0]
    dists["test positive"], dists["test negative"] = t_dist[test.label == 1], t_dist[test.label == 0]

    def compare(pos: str, neg: str) -> dict:
        scores = np.concatenate([groups[pos], groups[neg]])
        d = np.concatenate([dists[pos], dists[neg]])
        labels = np.concatenate([np.ones(len(groups[pos])), np.zeros(len(groups[neg]))]).astype(np.uint8)
        return {"metric_auc": float(roc_auc_score(labels, scores)), "metric_fpr95": fpr95_metric(scores, labels),
                "descriptor_fpr95": fpr95_descriptor(d, labels)}

    return {
        "checkpoint": str(checkpoint), "model": state["model_name"], "epoch": state.get("epoch"),
        "train_file": str(train_file), "test_file": str(test_file), "batch_size": batch_size, "seed": seed,
        "mining_batchnorm": mining,
        "logit": {k: {"n": int(len(v)), "mean": float(v.mean()), "std": float(v.std())} for k, v in groups.items()},
        "descriptor_distance_mean": {k: float(v.mean()) for k, v in dists.items()},
        "training_positive_vs_hardest_negative": compare("positive", "hardest negative"),
        "training_positive_vs_random_negative": compare("positive", "random negative"),
        "test": compare("test positive", "test negative"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=Path, required=True, help="training pair file (positives are used)")
    p.add_argument("--test", type=Path, required=True, help="test pair file")
    p.add_argument("--out", type=Path, required=True, help="JSON written here")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mining", choices=["batch", "running"], default="batch",
                   help="BatchNorm statistics of the descriptors that mine the hardest negatives: "
                        "the batch's, as in training (default), or the running ones, as in scoring")
    p.add_argument("runs", nargs="+", help="NAME=CHECKPOINT")
    a = p.parse_args(argv)
    torch.manual_seed(a.seed)
    results = {}
    for run in a.runs:
        name, sep, path = run.partition("=")
        if not sep:
            p.error(f"{run!r}: expected NAME=CHECKPOINT")
        results[name] = diagnose(Path(path), a.train, a.test, a.batch_size, a.seed, a.mining)
    tmp = a.out.with_name(a.out.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(tmp, a.out)
    print("| run | epoch | logit std, training positives / hardest / random | AUC pos. vs hardest | AUC pos. vs random | test AUC | test metric FPR95 | test descriptor FPR95 |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        lg = r["logit"]
        print(f"| {name} | {r['epoch']} | {lg['positive']['std']:.3f} / {lg['hardest negative']['std']:.3f} / "
              f"{lg['random negative']['std']:.3f} | {r['training_positive_vs_hardest_negative']['metric_auc']:.3f} | "
              f"{r['training_positive_vs_random_negative']['metric_auc']:.3f} | {r['test']['metric_auc']:.3f} | "
              f"{r['test']['metric_fpr95']:.2f} | {r['test']['descriptor_fpr95']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
