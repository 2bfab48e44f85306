"""Keypoints for matching two images: SIFT, FAST (via :mod:`kglnet.data.keypoints`) or a grid.

Every keypoint is an integer pixel (x, y) whose whole 64x64 patch lies inside the image, i.e.
``32 <= x <= W-32`` and ``32 <= y <= H-32`` (the patch convention of
:mod:`kglnet.data.keypoints`: rows ``y-32 .. y+31``, columns ``x-32 .. x+31``), at most
``max_points`` per image; returned as int64 [K, 2] (x, y).

- ``"sift"`` / ``"fast"``: :func:`kglnet.data.keypoints.detect_keypoints` on each image
  separately, choice: the **strongest** ``max_points`` after spacing suppression
  (``pool_factor=1``, no random subset), so the result is deterministic and does not depend on a
  seed; ordered by descending detector response.
- ``"grid"``: a regular square grid over the valid centre region, centred in it, whose step is
  the smallest integer (at least ``min_spacing``) that keeps the count at or below
  ``max_points``; row-major order (y, then x). A grid ignores image content, so it also covers
  textureless spectra (thermal, SAR) where detectors find little; patches there will match
  poorly and RANSAC discards them.

The patch descriptors are neither rotation- nor scale-invariant (fixed, upright 64x64 patches),
so matching assumes the two images are at a similar scale and orientation.
"""

from __future__ import annotations

import numpy as np

from kglnet.data.keypoints import HALF, detect_keypoints
from kglnet.matching.images import check_gray_image

__all__ = ["KEYPOINT_METHODS", "grid_keypoints", "find_keypoints"]

KEYPOINT_METHODS = ("sift", "fast", "grid")


def _grid_count(span: int, step: int) -> int:
    return span // step + 1


def grid_keypoints(shape: tuple[int, int], max_points: int, min_spacing: int = 8) -> np.ndarray:
    """A regular grid of keypoints over the valid centre region of an image of ``shape`` (H, W).

    Returns int64 [K, 2] (x, y), K <= ``max_points``, row-major. ``min_spacing`` (>= 1) is the
    smallest grid step allowed.
    """
    h, w = int(shape[0]), int(shape[1])
    if h < 2 * HALF or w < 2 * HALF:
        raise ValueError(f"image is {w}x{h} (WxH), smaller than a {2 * HALF}x{2 * HALF} patch")
    if int(max_points) < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    # Valid centres: x in [HALF, w - HALF], y in [HALF, h - HALF] (inclusive), spans w-64, h-64.
    span_x, span_y = w - 2 * HALF, h - 2 * HALF
    area = (span_x + 1) * (span_y + 1)
    step = max(int(min_spacing), 1, int(np.floor(np.sqrt(area / int(max_points)))))
    while _grid_count(span_x, step) * _grid_count(span_y, step) > int(max_points):
        step += 1
    nx, ny = _grid_count(span_x, step), _grid_count(span_y, step)
    x0 = HALF + (span_x - (nx - 1) * step) // 2
    y0 = HALF + (span_y - (ny - 1) * step) // 2
    ys, xs = np.meshgrid(y0 + step * np.arange(ny), x0 + step * np.arange(nx), indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.int64)


def find_keypoints(image: np.ndarray, method: str = "sift", max_points: int = 1000, *,
                   min_spacing: int = 8, fast_threshold: int = 10, name: str = "image") -> np.ndarray:
    """Keypoints of a grey uint8 [H, W] image (H, W >= 64) by ``method`` ("sift", "fast", "grid").

    Returns int64 [K, 2] (x, y), K <= ``max_points``, each with its whole 64x64 patch inside.
    """
    if method not in KEYPOINT_METHODS:
        raise ValueError(f"unknown keypoint method {method!r}; choose from {', '.join(KEYPOINT_METHODS)}")
    if int(max_points) < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    check_gray_image(image, name)
    if method == "grid":
        return grid_keypoints(image.shape, int(max_points), min_spacing)
    return detect_keypoints(image, method=method, max_points=int(max_points), rng=np.random.default_rng(0),
                            min_spacing=min_spacing, pool_factor=1.0, fast_threshold=fast_threshold)
