"""Synthetic cross-spectral data: determinism, split by image pair, balance, alignment, difficulty."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from kglnet.data import (
    SyntheticConfig,
    build_split,
    build_synthetic_dataset,
    config_sha256,
    pair_rngs,
    read_pairs,
    render_pair,
    validate_pairs,
)
from kglnet.utils.io import sha256_file

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cfg = SyntheticConfig.tiny()
    out = tmp_path_factory.mktemp("synthetic")
    summary = build_synthetic_dataset(out, cfg, progress=False)
    return cfg, out, summary


def _fpr95(pos_dist, neg_dist):
    pos = np.sort(pos_dist)
    threshold = pos[int(np.ceil(0.95 * len(pos))) - 1]
    return float((neg_dist <= threshold).mean())


def _ncc(left, right):
    a = left.reshape(len(left), -1).astype(np.float64)
    b = right.reshape(len(right), -1).astype(np.float64)
    a -= a.mean(1, keepdims=True)
    b -= b.mean(1, keepdims=True)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-9)


def _edge_magnitude(patches):
    out = []
    for p in patches:
        p = p.astype(np.float32)
        out.append(np.hypot(cv2.Sobel(p, cv2.CV_32F, 1, 0), cv2.Sobel(p, cv2.CV_32F, 0, 1)))
    return np.stack(out)


def test_render_pair_is_seeded_and_aligned_in_shape():
    cfg = SyntheticConfig()
    vis, other = render_pair(pair_rngs(0, "test", 0)[0], 160, cfg)
    assert vis.shape == other.shape == (160, 160) and vis.dtype == other.dtype == np.uint8
    again = render_pair(pair_rngs(0, "test", 0)[0], 160, cfg)
    assert vis.tobytes() == again[0].tobytes() and other.tobytes() == again[1].tobytes()
    different = render_pair(pair_rngs(1, "test", 0)[0], 160, cfg)
    assert vis.tobytes() != different[0].tobytes()
    assert vis.std() > 20 and other.std() > 10  # real content, not a flat image


def test_files_summary_and_attributes(tiny):
    cfg, out, summary = tiny
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["config"] == cfg.to_dict() and summary["config_sha256"] == config_sha256(cfg)
    for split in SPLITS:
        path = out / f"{split}.h5"
        info = validate_pairs(path)
        entry = summary["splits"][split]
        assert entry["sha256"] == sha256_file(path)
        assert {k: entry[k] for k in ("pairs", "positives", "negatives")} == {
            k: info[k] for k in ("pairs", "positives", "negatives")
        }
        assert entry["images"] == cfg.images[split]
        attrs = read_pairs(path).attrs
        assert attrs["source"] == "synthetic" and attrs["split"] == split and attrs["seed"] == 0
        assert attrs["inputs_sha256"] == {"config": config_sha256(cfg)}
        assert attrs["config"] == cfg.to_dict() and attrs["images"] == cfg.images[split]
        assert "split by image pair" in attrs["protocol"]
    total = sum(e["pairs"] for e in summary["splits"].values())
    assert 200 <= total <= 1000  # "a few hundred pairs"


def test_train_positives_only_val_test_balanced(tiny):
    _, out, summary = tiny
    assert summary["splits"]["train"]["negatives"] == 0
    assert summary["splits"]["train"]["positives"] > 100
    for split in ("val", "test"):
        entry = summary["splits"][split]
        assert entry["positives"] == entry["negatives"] > 50
        read_pairs(out / f"{split}.h5", require_both_labels=True)


def test_no_image_in_two_splits(tiny):
    _, out, _ = tiny
    seen = {}
    for split in SPLITS:
        # Patches of one image pair would reappear verbatim if it were rendered into two splits.
        seen[split] = {p.tobytes() for p in read_pairs(out / f"{split}.h5").left}
    assert not seen["train"] & seen["val"]
    assert not seen["train"] & seen["test"]
    assert not seen["val"] & seen["test"]


def test_rebuild_is_byte_identical_and_seed_matters(tiny, tmp_path):
    cfg, out, summary = tiny
    again = build_synthetic_dataset(tmp_path / "again", cfg, progress=False)
    assert again == summary
    for split in SPLITS:
        assert (tmp_path / "again" / f"{split}.h5").read_bytes() == (out / f"{split}.h5").read_bytes()
    other = SyntheticConfig.tiny(seed=1, images={"train": 0, "val": 0, "test": 1})
    left, *_ = build_split(other, "test")
    assert left.tobytes() not in read_pairs(out / "test.h5").left.tobytes()


def test_image_pairs_do_not_depend_on_split_size():
    small = SyntheticConfig.tiny(images={"test": 1})
    large = SyntheticConfig.tiny(images={"test": 2})
    a, b = build_split(small, "test"), build_split(large, "test")
    n = len(a[2])
    assert (b[3][:n] == 0).all() and (b[3][n:] == 1).all()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y[:n])


def test_positive_pairs_are_aligned_and_ncc_is_imperfect(tiny):
    _, out, _ = tiny
    pairs = read_pairs(out / "test.h5")
    pos = pairs.label == 1
    # Structure is shared: edge magnitudes correlate far better at the same point.
    edge = _ncc(_edge_magnitude(pairs.left), _edge_magnitude(pairs.right))
    assert edge[pos].mean() > edge[~pos].mean() + 0.2
    # ...but intensities and polarity are not: raw-pixel NCC is clearly imperfect, though the
    # magnitude of the correlation still tells the aligned pairs apart on average.
    ncc = _ncc(pairs.left, pairs.right)
    assert np.abs(ncc[pos]).mean() > np.abs(ncc[~pos]).mean()
    assert _fpr95(1 - ncc[pos], 1 - ncc[~pos]) > 0.15


def test_polarity_flip_inverts_the_other_spectrum_only():
    rng_a, rng_b = (pair_rngs(0, "test", 0)[0] for _ in range(2))
    keep = SyntheticConfig(polarity_flip_prob=0.0)
    flip = SyntheticConfig(polarity_flip_prob=1.0)
    vis_a, other_a = render_pair(rng_a, 128, keep)
    vis_b, other_b = render_pair(rng_b, 128, flip)
    np.testing.assert_array_equal(vis_a, vis_b)
    # the same image, inverted (uint8 rounding may differ by one grey level)
    assert np.abs(other_b.astype(int) - (255 - other_a.astype(int))).max() <= 1


@pytest.mark.parametrize(
    "overrides, problem",
    [
        ({"image_size": 100}, "image_size"),
        ({"keypoint_method": "orb"}, "keypoint_method"),
        ({"reversal_prob": 0.8, "remap_prob": 0.5}, r"reversal_prob \+ remap_prob"),
        ({"images": {"train": -1}}, "image counts"),
        ({"noise_vis": -0.1}, "noise_vis"),
    ],
)
def test_config_validation(overrides, problem):
    with pytest.raises(ValueError, match=problem):
        SyntheticConfig(**overrides)


def test_config_from_dict_round_trip_and_unknown_keys():
    cfg = SyntheticConfig(seed=3, images={"train": 2, "test": 1})
    assert SyntheticConfig.from_dict(cfg.to_dict()) == cfg
    assert config_sha256(SyntheticConfig.from_dict(cfg.to_dict())) == config_sha256(cfg)
    assert config_sha256(cfg) != config_sha256(SyntheticConfig())
    with pytest.raises(ValueError, match="unknown SyntheticConfig keys"):
        SyntheticConfig.from_dict({"noise": 1})
