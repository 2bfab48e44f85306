"""kglnet.matching.keypoints: SIFT / FAST / grid keypoints, at most N, whole patch inside."""

from __future__ import annotations

import numpy as np
import pytest

from kglnet.data.keypoints import cut_patches
from kglnet.matching.keypoints import find_keypoints, grid_keypoints


def _inside(xy, shape):
    h, w = shape
    return ((xy[:, 0] >= 32) & (xy[:, 0] <= w - 32) & (xy[:, 1] >= 32) & (xy[:, 1] <= h - 32)).all()


@pytest.mark.parametrize("shape, n", [((64, 64), 10), ((65, 300), 7), ((240, 260), 50), ((240, 260), 1),
                                      ((1000, 700), 333), ((130, 97), 100000)])
def test_grid_stays_inside_and_under_the_limit(shape, n):
    xy = grid_keypoints(shape, n)
    assert xy.dtype == np.int64 and xy.ndim == 2 and xy.shape[1] == 2
    assert 1 <= len(xy) <= n
    assert _inside(xy, shape)
    assert len(np.unique(xy, axis=0)) == len(xy)
    patches = cut_patches(np.zeros(shape, np.uint8), xy)     # every patch can be cut
    assert patches.shape == (len(xy), 64, 64)


def test_grid_is_regular_centred_and_respects_min_spacing():
    xy = grid_keypoints((240, 260), 10000, min_spacing=8)
    xs, ys = np.unique(xy[:, 0]), np.unique(xy[:, 1])
    assert set(np.diff(xs)) == {8} and set(np.diff(ys)) == {8}
    assert len(xy) == len(xs) * len(ys)
    # centred: equal margins (to within a pixel) on both sides of the valid centre range
    assert abs((xs[0] - 32) - (260 - 32 - xs[-1])) <= 1 and abs((ys[0] - 32) - (240 - 32 - ys[-1])) <= 1
    assert grid_keypoints((64, 64), 5).tolist() == [[32, 32]]


def test_grid_uses_as_many_points_as_it_can():
    xy = grid_keypoints((400, 400), 100)
    assert 64 <= len(xy) <= 100    # the smallest step keeping the count under the limit


@pytest.mark.parametrize("method", ["sift", "fast", "grid"])
def test_methods_stay_inside_under_the_limit_and_are_deterministic(texture, method):
    xy = find_keypoints(texture, method, 40)
    assert 0 < len(xy) <= 40 and _inside(xy, texture.shape)
    assert np.array_equal(xy, find_keypoints(texture, method, 40))


def test_bad_arguments():
    image = np.zeros((80, 80), np.uint8)
    with pytest.raises(ValueError, match="unknown keypoint method 'orb'"):
        find_keypoints(image, "orb", 10)
    with pytest.raises(ValueError, match="max_points"):
        find_keypoints(image, "grid", 0)
    with pytest.raises(ValueError, match="smaller than a 64x64 patch"):
        find_keypoints(np.zeros((80, 50), np.uint8), "grid", 10, name="tiny.png")
