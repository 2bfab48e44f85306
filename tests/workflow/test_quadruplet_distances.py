"""workflow/scripts/quadruplet_distances.py: Q-Net's quadruplet distances before training."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from kglnet.data.pairfile import read_pairs
from kglnet.losses import random_negative_index
from kglnet.train import create_seeded_model

SCRIPT = Path(__file__).resolve().parents[2] / "workflow" / "scripts" / "quadruplet_distances.py"
_spec = importlib.util.spec_from_file_location("quadruplet_distances", SCRIPT)
script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(script)


def test_statistics_match_a_recomputation_by_hand(tiny_dataset, tmp_path):
    out = tmp_path / "d.json"
    assert script.main([str(tiny_dataset / "train.h5"), "--pairs", "24", "--out", str(out)]) == 0
    r = json.loads(out.read_text())["files"][0]
    assert r["pairs"] == 24 and r["model"] == "qnet"
    # the same draws, then the distances one by one
    data = read_pairs(tiny_dataset / "train.h5")
    positives = [i for i, y in enumerate(data.label) if y == 1]
    draw = torch.Generator().manual_seed(0)
    rows = [positives[k] for k in torch.randperm(len(positives), generator=draw)[:24].tolist()]
    j = random_negative_index(24, "cpu", draw).tolist()
    model = create_seeded_model("qnet", 0).eval()
    with torch.no_grad():
        v, x = model.raw_descriptors(torch.from_numpy(data.left[rows]).unsqueeze(1).float() / 255,
                                     torch.from_numpy(data.right[rows]).unsqueeze(1).float() / 255)
    dist = lambda a, b: float((a - b).pow(2).sum().add(1e-6).sqrt())  # noqa: E731
    pos = [dist(v[i], x[i]) for i in range(24)]
    negs = [[dist(v[i], v[j[i]]), dist(v[i], x[j[i]]), dist(x[i], v[j[i]]), dist(x[i], x[j[i]])] for i in range(24)]
    assert r["d_pos_mean"] == pytest.approx(sum(pos) / 24, rel=1e-5)
    assert r["d_neg_mean"]["x_vis"] == pytest.approx(sum(n[2] for n in negs) / 24, rel=1e-5)
    assert r["positive_farther_than_nearest"]["all"] == pytest.approx(
        sum(p > min(n) for p, n in zip(pos, negs)) / 24)
    assert r["positive_farther_than_nearest"]["cross"] == pytest.approx(
        sum(p > min(n[1], n[2]) for p, n in zip(pos, negs)) / 24)
    assert r["positive_farther_than_nearest"]["same"] == pytest.approx(
        sum(p > min(n[0], n[3]) for p, n in zip(pos, negs)) / 24)
    assert sum(r["nearest_is"].values()) == pytest.approx(1.0)
    # the nearest of four is never farther than the nearest of a subset
    assert r["positive_farther_than_nearest"]["all"] >= max(r["positive_farther_than_nearest"]["cross"],
                                                          r["positive_farther_than_nearest"]["same"])


def test_a_missing_file_is_named(tmp_path, capsys):
    missing = tmp_path / "none.h5"
    assert script.main([str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
