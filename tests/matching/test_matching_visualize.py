"""kglnet.matching.visualize: side-by-side match picture and colour overlay."""

from __future__ import annotations

import numpy as np
import pytest

from kglnet.matching.visualize import draw_matches, overlay_images


def test_draw_matches_draws_inliers_green_and_outliers_only_on_request():
    a, b = np.full((80, 100), 50, np.uint8), np.full((120, 90), 50, np.uint8)
    pts0, pts1 = np.array([[20, 20], [20, 70]]), np.array([[10, 100], [70, 30]])
    inliers = np.array([True, False])
    pic = draw_matches(a, b, pts0, pts1, inliers)
    assert pic.shape == (120, 190, 3) and pic.dtype == np.uint8
    green = (pic[..., 1] > 150) & (pic[..., 0] < 100) & (pic[..., 2] < 100)
    assert green[16:25, 16:25].any() and green[96:105, 106:115].any()   # both ends of the inlier (x1 + 100)
    assert not green[66:75, 16:25].any()                                   # the outlier is not drawn
    red = (pic[..., 2] > 200) & (pic[..., 1] < 50)
    assert not red.any()
    assert (pic[100:, :100] == 0).all()          # padding under the shorter image 0
    pic = draw_matches(a, b, pts0, pts1, inliers, draw_outliers=True)
    red = (pic[..., 2] > 200) & (pic[..., 1] < 50)
    assert red.any()
    assert draw_matches(a, b, np.zeros((0, 2)), np.zeros((0, 2))).shape == (120, 190, 3)


def test_overlay_is_green_vis_and_magenta_other():
    warped = np.array([[0, 200]], np.uint8).repeat(64, 0)
    other = np.array([[150, 0]], np.uint8).repeat(64, 0)
    out = overlay_images(warped, other)
    assert out.shape == (64, 2, 3)
    assert out[0, 0].tolist() == [150, 0, 150] and out[0, 1].tolist() == [0, 200, 0]
    with pytest.raises(ValueError, match="one size"):
        overlay_images(warped, other[:10])
