"""Keypoints and patches: the VIS-NIR patch convention, borders/masks, pairing rules, determinism."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kglnet.data.keypoints import cut_patches, detect_keypoints, make_pairs, valid_centre_mask


def _corner_image(h=200, w=240, seed=0):
    """uint8 image with many strong corners (random rectangles) plus light noise."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w), 90, np.uint8)
    for _ in range(60):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        x1, y1 = x0 + rng.integers(5, 40), y0 + rng.integers(5, 40)
        cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), int(rng.integers(0, 256)), -1)
    noise = rng.integers(0, 4, (h, w), dtype=np.uint8)
    return cv2.add(img, noise)


def _coordinate_images(h=150, w=170):
    rows = np.repeat(np.arange(h, dtype=np.uint8)[:, None], w, axis=1)
    cols = np.repeat(np.arange(w, dtype=np.uint8)[None, :], h, axis=0)
    return rows, cols


def test_cut_patches_follows_csv_convention():
    h, w = 150, 170
    rows, cols = _coordinate_images(h, w)
    xy = np.array([[32, 32], [w - 32, h - 32], [100, 57]])
    prow, pcol = cut_patches(rows, xy), cut_patches(cols, xy)
    assert prow.shape == (3, 64, 64) and prow.dtype == np.uint8
    for k, (x, y) in enumerate(xy):
        # rows y-32..y+31 and columns x-32..x+31, inclusive, 0-based
        assert prow[k, 0, 0] == y - 32 and prow[k, -1, -1] == y + 31
        assert pcol[k, 0, 0] == x - 32 and pcol[k, -1, -1] == x + 31
        assert pcol[k, 0, -1] == x + 31 and prow[k, -1, 0] == y + 31
    np.testing.assert_array_equal(prow[2], rows[57 - 32 : 57 + 32, 100 - 32 : 100 + 32])


@pytest.mark.parametrize("x, y", [(31, 50), (50, 31), (170 - 31, 50), (50, 150 - 31)])
def test_cut_patches_rejects_points_whose_patch_leaves_the_image(x, y):
    rows, _ = _coordinate_images()
    with pytest.raises(ValueError, match="outside"):
        cut_patches(rows, np.array([[x, y]]))


def test_valid_centre_mask_matches_brute_force():
    rng = np.random.default_rng(3)
    h, w = 90, 100
    mask = rng.random((h, w)) > 0.002
    fast = valid_centre_mask((h, w), mask)
    brute = np.zeros((h, w), bool)
    for y in range(32, h - 31):
        for x in range(32, w - 31):
            brute[y, x] = mask[y - 32 : y + 32, x - 32 : x + 32].all()
    np.testing.assert_array_equal(fast, brute)


@pytest.mark.parametrize("method", ["fast", "sift"])
def test_detect_keypoints_respects_border_spacing_and_count(method):
    img = _corner_image()
    h, w = img.shape
    xy = detect_keypoints(img, method=method, max_points=40, rng=np.random.default_rng(0),
                          min_spacing=10)
    assert xy.dtype == np.int64 and xy.ndim == 2 and xy.shape[1] == 2
    assert 10 <= len(xy) <= 40
    assert (xy[:, 0] >= 32).all() and (xy[:, 0] <= w - 32).all()
    assert (xy[:, 1] >= 32).all() and (xy[:, 1] <= h - 32).all()
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)) + np.eye(len(xy)) * 1e9
    assert d.min() >= 10
    cut_patches(img, xy)  # every patch is inside


def test_detect_keypoints_respects_mask():
    img = _corner_image()
    mask = np.ones(img.shape, bool)
    mask[:, :100] = False  # e.g. the invalid border left by un-warping
    mask[150:, :] = False
    xy = detect_keypoints(img, max_points=100, rng=np.random.default_rng(0), mask=mask)
    assert len(xy) > 0
    for x, y in xy:
        assert mask[y - 32 : y + 32, x - 32 : x + 32].all()


def test_detect_keypoints_is_deterministic_per_seed():
    img = _corner_image()
    a = detect_keypoints(img, max_points=15, rng=np.random.default_rng(5))
    b = detect_keypoints(img, max_points=15, rng=np.random.default_rng(5))
    c = detect_keypoints(img, max_points=15, rng=np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)  # the random subset differs


def test_detect_keypoints_on_flat_image_returns_empty():
    xy = detect_keypoints(np.full((100, 100), 7, np.uint8), max_points=5, rng=np.random.default_rng(0))
    assert xy.shape == (0, 2)


@pytest.mark.parametrize(
    "image, problem",
    [
        (np.zeros((100, 100), np.float32), "uint8"),
        (np.zeros((100, 100, 3), np.uint8), "2-D"),
        (np.zeros((63, 100), np.uint8), "smaller than"),
    ],
)
def test_bad_images_raise(image, problem):
    with pytest.raises(ValueError, match=problem):
        detect_keypoints(image, max_points=5, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=problem):
        cut_patches(image, np.zeros((0, 2), int))
    good = np.zeros((100, 100), np.uint8)
    with pytest.raises(ValueError, match=problem):
        make_pairs(image, good, np.zeros((0, 2), int), rng=np.random.default_rng(0), positives_only=True)


def test_detect_keypoints_rejects_bad_arguments():
    img = _corner_image()
    with pytest.raises(ValueError, match="method"):
        detect_keypoints(img, method="orb", max_points=5, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="max_points"):
        detect_keypoints(img, max_points=0, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="mask shape"):
        detect_keypoints(img, max_points=5, rng=np.random.default_rng(0), mask=np.ones((5, 5), bool))


def _noise_pair(h=220, w=260, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (h, w), dtype=np.uint8), rng.integers(0, 256, (h, w), dtype=np.uint8))


def _locate(patches, reference):
    """Index of each patch among reference patches (noise images make every patch unique)."""
    flat = {p.tobytes(): i for i, p in enumerate(reference)}
    return np.array([flat[p.tobytes()] for p in patches])


def test_make_pairs_balanced_with_distant_negatives():
    vis, other = _noise_pair()
    rng = np.random.default_rng(1)
    xy = np.stack([rng.integers(32, 260 - 31, 60), rng.integers(32, 220 - 31, 60)], 1)
    xy = np.unique(xy, axis=0)
    left, right, label = make_pairs(vis, other, xy, rng=np.random.default_rng(2), positives_only=False,
                                    min_negative_distance=80)
    assert left.shape == right.shape == (len(label), 64, 64) and label.dtype == np.uint8
    assert label.sum() * 2 == len(label) and len(label) > 0
    assert 0 < label[: len(label) // 2].sum() < len(label) // 2  # shuffled, not blocked
    i = _locate(left, cut_patches(vis, xy))
    j = _locate(right, cut_patches(other, xy))
    pos = label == 1
    np.testing.assert_array_equal(i[pos], j[pos])
    dist = np.sqrt(((xy[i[~pos]] - xy[j[~pos]]) ** 2).sum(1))
    assert dist.min() >= 80
    # each kept keypoint gives exactly one positive and one negative
    assert sorted(i[pos].tolist()) == sorted(i[~pos].tolist())


def test_make_pairs_drops_points_without_distant_partner():
    vis, other = _noise_pair()
    xy = np.array([[32, 32], [100, 32], [168, 32]])  # the middle point is 68 px from both others
    left, right, label = make_pairs(vis, other, xy, rng=np.random.default_rng(0), positives_only=False,
                                    min_negative_distance=100)
    assert len(label) == 4 and label.sum() == 2
    assert 1 not in _locate(left, cut_patches(vis, xy)).tolist()
    _, _, none = make_pairs(vis, other, xy[:2], rng=np.random.default_rng(0), positives_only=False,
                            min_negative_distance=100)
    assert len(none) == 0


def test_make_pairs_positives_only_and_determinism():
    vis, other = _noise_pair()
    xy = np.array([[40, 40], [120, 90], [200, 150], [60, 180]])
    left, right, label = make_pairs(vis, other, xy, rng=np.random.default_rng(0), positives_only=True)
    assert (label == 1).all() and len(label) == 4
    np.testing.assert_array_equal(_locate(left, cut_patches(vis, xy)),
                                  _locate(right, cut_patches(other, xy)))
    runs = [make_pairs(vis, other, xy, rng=np.random.default_rng(9), positives_only=False)
            for _ in range(2)]
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_make_pairs_rejects_mismatched_images():
    vis, _ = _noise_pair()
    with pytest.raises(ValueError, match="differ in size"):
        make_pairs(vis, vis[:, :-1], np.array([[40, 40]]), rng=np.random.default_rng(0),
                   positives_only=True)
    with pytest.raises(ValueError, match=r"\[K,2\]"):
        make_pairs(vis, vis, np.array([40, 40]), rng=np.random.default_rng(0), positives_only=True)
