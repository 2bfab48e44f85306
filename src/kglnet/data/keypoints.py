"""Keypoint detection and patch cutting on pixel-aligned cross-spectral image pairs.

Patch convention (as the VIS-NIR patch dataset's CSV files): the patch of keypoint (x, y) is rows
``y-32 .. y+31`` and columns ``x-32 .. x+31`` (0-based, inclusive) of the grayscale image, so a
keypoint is usable only when ``32 <= x <= W-32`` and ``32 <= y <= H-32``.

Used for the synthetic data and for real VIS-NIR / VIS-LWIR / optical-SAR images alike: any image
size, grayscale uint8, optional validity mask (e.g. the border left invalid by un-warping).
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from kglnet.data.pairfile import PATCH_SIZE

__all__ = [
    "HALF",
    "KEYPOINT_METHODS",
    "detect_keypoints",
    "valid_centre_mask",
    "cut_patches",
    "make_pairs",
]

HALF = PATCH_SIZE // 2
KEYPOINT_METHODS = ("fast", "sift")


def _check_image(name: str, image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.ndim != 2:
        raise ValueError(f"{name} must be a 2-D grayscale image, got shape {list(image.shape)}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name} must have dtype uint8, got {image.dtype}")
    if image.shape[0] < PATCH_SIZE or image.shape[1] < PATCH_SIZE:
        raise ValueError(
            f"{name} is {image.shape[1]}x{image.shape[0]} (WxH), smaller than a "
            f"{PATCH_SIZE}x{PATCH_SIZE} patch"
        )


def valid_centre_mask(shape: tuple[int, int], mask: np.ndarray | None = None) -> np.ndarray:
    """bool [H, W]: True where a keypoint's whole 64x64 patch lies inside the image (and is valid).

    Args:
        shape: (H, W) of the image.
        mask: optional bool [H, W], True = valid pixel; a centre is kept only if every pixel of
            its patch is valid.
    """
    h, w = shape
    ok = np.zeros((h, w), dtype=bool)
    # Rows y-32..y+31 must lie in [0, H-1]  <=>  32 <= y <= H-32.
    ok[HALF : h - HALF + 1, HALF : w - HALF + 1] = True
    if mask is not None:
        # Count invalid pixels per patch with an integral image: exact and O(H*W).
        invalid = (~mask).astype(np.int32)
        integral = np.zeros((h + 1, w + 1), dtype=np.int64)
        integral[1:, 1:] = invalid.cumsum(0).cumsum(1)
        ys, xs = np.nonzero(ok)
        r0, c0 = ys - HALF, xs - HALF
        r1, c1 = r0 + PATCH_SIZE, c0 + PATCH_SIZE
        bad = integral[r1, c1] - integral[r0, c1] - integral[r1, c0] + integral[r0, c0]
        ok[ys[bad > 0], xs[bad > 0]] = False
    return ok


def _raw_keypoints(image: np.ndarray, method: str, fast_threshold: int) -> tuple[np.ndarray, np.ndarray]:
    if method == "fast":
        detector = cv2.FastFeatureDetector_create(threshold=fast_threshold, nonmaxSuppression=True)
    elif method == "sift":
        detector = cv2.SIFT_create()
    else:
        raise ValueError(f"unknown keypoint method {method!r}; choose from {KEYPOINT_METHODS}")
    kps = detector.detect(image, None)
    if not kps:
        return np.empty((0, 2), np.int64), np.empty(0, np.float64)
    pts = np.array([kp.pt for kp in kps], dtype=np.float64)
    response = np.array([kp.response for kp in kps], dtype=np.float64)
    return np.rint(pts).astype(np.int64), response


def _suppress(xy: np.ndarray, min_spacing: float, limit: int) -> np.ndarray:
    """Greedy spacing suppression over points sorted strongest first; return kept indices.

    A grid of cells of side ``min_spacing`` means each point is compared only with the kept points
    in its 3x3 neighbourhood of cells, so this stays fast for tens of thousands of detections.
    Stops once ``limit`` points are kept (the rest would be discarded anyway).
    """
    if min_spacing <= 1:
        return np.arange(min(len(xy), limit))
    cell = float(min_spacing)
    grid: dict[tuple[int, int], list[int]] = {}
    kept: list[int] = []
    min_sq = min_spacing * min_spacing
    pts = xy.tolist()
    for i, (x, y) in enumerate(pts):
        cx, cy = int(x // cell), int(y // cell)
        clash = False
        for gx in (cx - 1, cx, cx + 1):
            for gy in (cy - 1, cy, cy + 1):
                for j in grid.get((gx, gy), ()):
                    dx, dy = pts[j][0] - x, pts[j][1] - y
                    if dx * dx + dy * dy < min_sq:
                        clash = True
                        break
                if clash:
                    break
            if clash:
                break
        if not clash:
            kept.append(i)
            grid.setdefault((cx, cy), []).append(i)
            if len(kept) >= limit:
                break
    return np.asarray(kept, dtype=np.int64)


def detect_keypoints(
    image: np.ndarray,
    *,
    method: str = "fast",
    max_points: int,
    rng: np.random.Generator,
    mask: np.ndarray | None = None,
    min_spacing: int = 8,
    pool_factor: float = 2.0,
    fast_threshold: int = 10,
) -> np.ndarray:
    """Detect keypoints whose whole 64x64 patch is inside the image (and valid).

    Steps: detect with OpenCV (FAST or SIFT) on ``image`` (the visible image); round to integer
    pixels; drop points whose patch leaves the image or touches an invalid ``mask`` pixel; sort
    by detector response (ties broken by position, for determinism); greedily suppress points
    closer than ``min_spacing`` pixels to a stronger kept one; keep the strongest
    ``ceil(pool_factor * max_points)``; finally draw a seeded random subset of at most
    ``max_points`` of them, so the points are strong yet not all clustered on the single most
    contrasted structure.

    Args:
        image: uint8 [H, W] grayscale image, H, W >= 64.
        method: "fast" or "sift".
        max_points: maximum number of keypoints returned (>= 1).
        rng: source of the random subset; the result is a pure function of its state.
        mask: optional bool [H, W], True = valid pixel.
        min_spacing: minimum Euclidean distance in pixels between kept points (<= 1: no
            suppression).
        pool_factor: the random subset is drawn from the strongest ``pool_factor * max_points``
            spaced points (1.0 = simply the strongest).
        fast_threshold: FAST intensity threshold.

    Returns:
        int64 [K, 2] keypoints as (x, y), K <= max_points, in descending response order.
    """
    _check_image("image", image)
    if int(max_points) < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    if pool_factor < 1:
        raise ValueError(f"pool_factor must be >= 1, got {pool_factor}")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != image.shape:
            raise ValueError(f"mask shape {list(mask.shape)} != image shape {list(image.shape)}")
        mask = mask.astype(bool, copy=False)
    xy, response = _raw_keypoints(image, method, fast_threshold)
    if len(xy):
        ok = valid_centre_mask(image.shape, mask)
        inside = ok[xy[:, 1], xy[:, 0]]  # rint of an in-image float point stays in the image
        xy, response = xy[inside], response[inside]
    if len(xy) == 0:
        return np.empty((0, 2), dtype=np.int64)
    # Strongest first; lexsort's last key is primary. Position keys make ties deterministic.
    order = np.lexsort((xy[:, 0], xy[:, 1], -response))
    xy = xy[order]
    # Rounding SIFT points can map two detections to one pixel: keep the first (strongest).
    _, first = np.unique(xy[:, 1] * image.shape[1] + xy[:, 0], return_index=True)
    xy = xy[np.sort(first)]
    pool = int(np.ceil(pool_factor * int(max_points)))
    xy = xy[_suppress(xy, float(min_spacing), pool)]
    if len(xy) > max_points:
        pick = np.sort(rng.choice(len(xy), size=int(max_points), replace=False))
        xy = xy[pick]
    return np.ascontiguousarray(xy, dtype=np.int64)


def _check_xy(xy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    xy = np.asarray(xy)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"xy must have shape [K,2] (x, y), got {list(xy.shape)}")
    if len(xy) and not np.issubdtype(xy.dtype, np.integer):
        if not np.array_equal(xy, np.rint(xy)):
            raise ValueError("xy must hold integer pixel coordinates")
    xy = xy.astype(np.int64)
    h, w = shape
    out = (xy[:, 0] < HALF) | (xy[:, 0] > w - HALF) | (xy[:, 1] < HALF) | (xy[:, 1] > h - HALF)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise ValueError(
            f"{int(out.sum())} keypoint(s) have a patch outside the {w}x{h} image, "
            f"first (x, y) = ({xy[i, 0]}, {xy[i, 1]}); need {HALF} <= x <= {w - HALF} "
            f"and {HALF} <= y <= {h - HALF}"
        )
    return xy


def cut_patches(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Cut the 64x64 patch of each keypoint.

    Args:
        image: uint8 [H, W].
        xy: integer [K, 2] keypoints (x, y), each with its whole patch inside the image.

    Returns:
        uint8 [K, 64, 64]; patch k is ``image[y-32:y+32, x-32:x+32]``.
    """
    _check_image("image", image)
    xy = _check_xy(xy, image.shape)
    # View of every 64x64 window, indexed by its top-left corner; fancy indexing copies only the
    # K requested windows.
    windows = sliding_window_view(image, (PATCH_SIZE, PATCH_SIZE))
    return np.ascontiguousarray(windows[xy[:, 1] - HALF, xy[:, 0] - HALF])


def make_pairs(
    vis: np.ndarray,
    other: np.ndarray,
    xy: np.ndarray,
    *,
    rng: np.random.Generator,
    positives_only: bool,
    min_negative_distance: int = PATCH_SIZE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Build labelled patch pairs from a pixel-aligned image pair.

    Positive: (vis patch at p, other patch at p). Unless ``positives_only``, every keypoint i also
    gives one negative (vis patch at i, other patch at a keypoint j != i drawn at random among
    those at Euclidean distance >= ``min_negative_distance``); a keypoint with no such partner is
    dropped entirely, so the output is exactly balanced. Pairs are shuffled with ``rng``.

    Args:
        vis, other: uint8 [H, W] images of the same size (H, W >= 64), pixel-aligned.
        xy: integer [K, 2] keypoints (x, y) with their patches inside the images.
        rng: source of negative partners and of the shuffle.
        positives_only: return only the positives (training files).
        min_negative_distance: minimum distance in pixels between the two points of a negative.

    Returns:
        (left uint8 [M,64,64] visible patches, right uint8 [M,64,64] other patches,
        label uint8 [M]); M = K if positives_only, else 2 * (keypoints with a partner).
    """
    _check_image("vis", vis)
    _check_image("other", other)
    if vis.shape != other.shape:
        raise ValueError(
            f"vis and other differ in size: {list(vis.shape)} vs {list(other.shape)} (H, W); "
            "they must be pixel-aligned"
        )
    xy = _check_xy(xy, vis.shape)
    k = len(xy)
    if positives_only:
        left, right = cut_patches(vis, xy), cut_patches(other, xy)
        label = np.ones(k, dtype=np.uint8)
    else:
        partner = np.full(k, -1, dtype=np.int64)
        min_sq = float(min_negative_distance) ** 2
        pts = xy.astype(np.float64)
        # Blocks of rows bound the memory of the K x K distance matrix for large keypoint sets.
        for start in range(0, k, 1024):
            block = pts[start : start + 1024]
            d2 = ((block[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
            ok = d2 >= min_sq
            ok[np.arange(len(block)), np.arange(start, start + len(block))] = False
            count = ok.sum(1)
            # Uniform choice among each row's valid partners: the r-th True of the row.
            r = np.floor(rng.random(len(block)) * np.maximum(count, 1)).astype(np.int64)
            rank = np.cumsum(ok, axis=1) - 1
            choice = np.argmax(ok & (rank == r[:, None]), axis=1)
            partner[start : start + len(block)] = np.where(count > 0, choice, -1)
        keep = partner >= 0
        anchors, partners = xy[keep], xy[partner[keep]]
        vis_p = cut_patches(vis, anchors)
        left = np.concatenate([vis_p, vis_p])
        right = np.concatenate([cut_patches(other, anchors), cut_patches(other, partners)])
        label = np.concatenate([np.ones(len(anchors), np.uint8), np.zeros(len(anchors), np.uint8)])
    order = rng.permutation(len(label))
    return left[order], right[order], label[order]
