"""kglnet.matching.geometry: RANSAC recovers known transforms from matches with outliers; warping."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kglnet.matching.geometry import apply_transform, estimate_transform, reprojection_errors, warp_image

AFFINE = np.array([[1.08 * np.cos(0.2), -1.08 * np.sin(0.2) + 0.05, 35.0],
                   [1.08 * np.sin(0.2), 1.08 * np.cos(0.2), -12.5],
                   [0.0, 0.0, 1.0]])
HOMOGRAPHY = np.array([[0.95, 0.08, 20.0],
                       [-0.05, 1.02, 8.0],
                       [2e-4, -1e-4, 1.0]])


def _matches(h, n=150, outlier_fraction=0.35, seed=0):
    """Exact correspondences under h plus outliers displaced by >= 30 px from where h sends them."""
    rng = np.random.default_rng(seed)
    pts0 = rng.uniform([0, 0], [640, 480], size=(n, 2))
    pts1 = apply_transform(h, pts0)
    outlier = rng.random(n) < outlier_fraction
    shift = rng.uniform(30, 200, size=(n, 1)) * np.stack([np.cos(a := rng.uniform(0, 2 * np.pi, n)), np.sin(a)], 1)
    pts1[outlier] += shift[outlier]
    return pts0, pts1, ~outlier


def _corner_error(a, b):
    corners = np.array([[0, 0], [639, 0], [639, 479], [0, 479]], float)
    return np.abs(apply_transform(a, corners) - apply_transform(b, corners)).max()


@pytest.mark.parametrize("model, truth", [("affine", AFFINE), ("homography", HOMOGRAPHY)])
def test_ransac_recovers_a_known_transform_despite_outliers(model, truth):
    pts0, pts1, inlier = _matches(truth)
    h, mask = estimate_transform(pts0, pts1, model, ransac_px=2.0)
    assert h.shape == (3, 3) and h.dtype == np.float64 and h[2, 2] == pytest.approx(1.0)
    assert _corner_error(h, truth) < 0.01
    assert np.array_equal(mask, inlier)
    assert reprojection_errors(h, pts0[mask], pts1[mask]).max() < 0.01


def test_affine_has_an_affine_last_row():
    pts0, pts1, _ = _matches(AFFINE)
    h, _ = estimate_transform(pts0, pts1, "affine")
    assert h[2].tolist() == [0.0, 0.0, 1.0]


def test_too_few_or_degenerate_matches_give_no_transform():
    pts = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    h, mask = estimate_transform(pts[:2], pts[:2] + 1, "affine")
    assert h is None and mask.tolist() == [False, False]
    h, mask = estimate_transform(pts, pts + 1, "homography")
    assert h is None and mask.tolist() == [False, False, False]
    collinear = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    h, mask = estimate_transform(collinear, collinear, "affine")
    assert h is None and not mask.any()
    h, mask = estimate_transform(np.zeros((0, 2)), np.zeros((0, 2)), "homography")
    assert h is None and mask.shape == (0,)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown transform model"):
        estimate_transform(np.zeros((5, 2)), np.zeros((5, 2)), "similarity")
    with pytest.raises(ValueError, match="ransac_px"):
        estimate_transform(np.zeros((5, 2)), np.zeros((5, 2)), "affine", ransac_px=0)
    with pytest.raises(ValueError, match="differ in length"):
        estimate_transform(np.zeros((5, 2)), np.zeros((4, 2)))


def test_warp_image_is_warp_perspective(texture):
    out = warp_image(texture, HOMOGRAPHY, (100, 130))
    assert out.shape == (100, 130) and out.dtype == np.uint8
    assert np.array_equal(out, cv2.warpPerspective(texture, HOMOGRAPHY, (130, 100), flags=cv2.INTER_LINEAR,
                                                   borderMode=cv2.BORDER_CONSTANT, borderValue=0))
    # a pure integer translation moves pixels exactly
    shift = np.array([[1.0, 0, -5], [0, 1, -3], [0, 0, 1]])
    assert np.array_equal(warp_image(texture, shift, texture.shape)[:200, :200], texture[3:203, 5:205])
