"""Descriptor distances of Q-Net's quadruplets before any training (issue 5: why Q-Net collapses).

For each pair file: a seeded Q-Net-family network (registered name, seed as training uses them),
``--pairs`` random matching pairs (VIS_i, X_i) without augmentation, and for each a second pair j != i
drawn as the quadruplet objective draws it. Reports the mean raw-descriptor distance of the
positive and of each of the four non-matching pairs (VIS_i-VIS_j, VIS_i-X_j, X_i-VIS_j, X_i-X_j),
which of the four is nearest how often, and how often the positive is farther than the nearest of
all four, of the two cross-spectral ones, of the two same-spectrum ones (the SoftPN loss of a
quadruplet falls as the descriptors shrink while that is so). JSON to stdout or ``--out``.

    python workflow/scripts/quadruplet_distances.py data/vislwir/train.h5 data/os/train.h5 \
        --out results/cpu/2026-11-28-qnet-collapse/distances_at_init.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from kglnet.data import read_pairs
from kglnet.losses import random_negative_index
from kglnet.objectives import euclidean_pair_distance
from kglnet.train import create_seeded_model

NEGATIVES = ("vis_vis", "vis_x", "x_vis", "x_x")


def distances_at_init(path: Path, model_name: str = "qnet", seed: int = 0, pairs: int = 4096) -> dict:
    """The statistics above for one pair file (its matching pairs only)."""
    data = read_pairs(path)
    positives = np.flatnonzero(data.label == 1)
    if len(positives) < 2:
        raise ValueError(f"{path}: needs at least 2 matching pairs, found {len(positives)}")
    draw = torch.Generator().manual_seed(seed)
    rows = positives[torch.randperm(len(positives), generator=draw)[:pairs].numpy()]
    vis = torch.from_numpy(data.left[rows]).unsqueeze(1).float().div_(255.0)
    other = torch.from_numpy(data.right[rows]).unsqueeze(1).float().div_(255.0)
    model = create_seeded_model(model_name, seed).eval()
    with torch.no_grad():
        d_vis, d_other = model.raw_descriptors(vis, other)
    j = random_negative_index(len(rows), "cpu", draw)
    d_pos = euclidean_pair_distance(d_vis, d_other)
    negatives = torch.stack([euclidean_pair_distance(d_vis, d_vis[j]), euclidean_pair_distance(d_vis, d_other[j]),
                             euclidean_pair_distance(d_other, d_vis[j]), euclidean_pair_distance(d_other, d_other[j])],
                            dim=1)
    nearest = negatives.min(dim=1)

    def farther(candidates: list[int]) -> float:
        return float((d_pos > negatives[:, candidates].min(dim=1).values).double().mean())

    return {
        "file": str(path), "model": model_name, "seed": seed, "pairs": len(rows),
        "d_pos_mean": float(d_pos.mean()),
        "d_neg_mean": {name: float(negatives[:, k].mean()) for k, name in enumerate(NEGATIVES)},
        "nearest_of_four_mean": float(nearest.values.mean()),
        "nearest_is": {name: float((nearest.indices == k).double().mean()) for k, name in enumerate(NEGATIVES)},
        "positive_farther_than_nearest": {"all": farther([0, 1, 2, 3]), "cross": farther([1, 2]),
                                          "same": farther([0, 3])},
        "descriptor_norm_mean": {"vis": float(d_vis.norm(dim=1).mean()), "other": float(d_other.norm(dim=1).mean())},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pair_files", nargs="+", type=Path)
    parser.add_argument("--model", default="qnet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pairs", type=int, default=4096, help="matching pairs drawn per file")
    parser.add_argument("--out", type=Path, help="JSON file (default: stdout)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        record = {"version": torch.__version__, "files": [distances_at_init(p, args.model, args.seed, args.pairs)
                                                          for p in args.pair_files]}
    except (OSError, ValueError) as err:
        print(f"quadruplet_distances: {err}", file=sys.stderr)
        return 2
    text = json.dumps(record, indent=1) + "\n"
    if args.out:
        tmp = args.out.with_suffix(args.out.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(args.out)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
