"""Robust transform estimation (RANSAC) and warping.

Coordinates are OpenCV's pixel coordinates: (x, y) = (column, row) of a pixel centre. A transform
is a float64 3x3 matrix H mapping image-0 (VIS) coordinates to image-1 coordinates:
``[x1, y1, w]^T = H [x0, y0, 1]^T``, ``(x1/w, y1/w)``; an affine has last row (0, 0, 1).

- ``"affine"`` (6 degrees of freedom, needs >= 3 matches): ``cv2.estimateAffine2D`` with
  ``cv2.RANSAC`` and its Levenberg-Marquardt refinement on the inliers (``refineIters=10``).
- ``"homography"`` (8 degrees of freedom, needs >= 4 matches): ``cv2.findHomography`` with
  ``cv2.RANSAC`` (least-squares refit on the inliers), normalised to ``H[2,2] = 1``.

``ransac_px`` is the reprojection threshold in image-1 pixels. OpenCV's RANSAC draws from a
fixed-seed generator, so a result is reproducible. An estimate that is missing, non-finite or
singular (|det| of the upper-left 2x2 below 1e-9) counts as no estimate: (None, all-False inliers).

:func:`warp_image` is ``cv2.warpPerspective(image0, H, (W1, H1), flags=cv2.INTER_LINEAR,
borderMode=cv2.BORDER_CONSTANT, borderValue=0)``: image 0 resampled in image 1's frame, black
where image 0 has no pixel.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["TRANSFORM_MODELS", "MIN_MATCHES", "estimate_transform", "apply_transform", "reprojection_errors",
           "warp_image"]

TRANSFORM_MODELS = ("affine", "homography")
MIN_MATCHES = {"affine": 3, "homography": 4}


def _points(pts: np.ndarray, name: str) -> np.ndarray:
    pts = np.asarray(pts, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"{name} must have shape [M,2] (x, y), got {list(pts.shape)}")
    return pts


def _usable(h: np.ndarray | None) -> bool:
    return h is not None and bool(np.isfinite(h).all()) and abs(float(np.linalg.det(h[:2, :2]))) > 1e-9


def estimate_transform(pts0: np.ndarray, pts1: np.ndarray, model: str = "affine", ransac_px: float = 3.0, *,
                       max_iters: int = 2000, confidence: float = 0.999) -> tuple[np.ndarray | None, np.ndarray]:
    """RANSAC fit of the transform mapping ``pts0`` [M,2] onto ``pts1`` [M,2].

    Returns (float64 3x3 transform or None, inlier mask bool [M]); None (and no inliers) when
    there are fewer matches than the model needs or no usable estimate is found.
    """
    if model not in TRANSFORM_MODELS:
        raise ValueError(f"unknown transform model {model!r}; choose from {', '.join(TRANSFORM_MODELS)}")
    if not float(ransac_px) > 0:
        raise ValueError(f"ransac_px must be > 0, got {ransac_px}")
    pts0, pts1 = _points(pts0, "pts0"), _points(pts1, "pts1")
    if len(pts0) != len(pts1):
        raise ValueError(f"pts0 and pts1 differ in length: {len(pts0)} vs {len(pts1)}")
    none = (None, np.zeros(len(pts0), dtype=bool))
    if len(pts0) < MIN_MATCHES[model]:
        return none
    src, dst = pts0.astype(np.float32).reshape(-1, 1, 2), pts1.astype(np.float32).reshape(-1, 1, 2)
    if model == "affine":
        matrix, mask = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=float(ransac_px),
                                            maxIters=int(max_iters), confidence=float(confidence), refineIters=10)
        h = None if matrix is None else np.vstack([matrix.astype(np.float64), [0.0, 0.0, 1.0]])
    else:
        matrix, mask = cv2.findHomography(src, dst, cv2.RANSAC, float(ransac_px), maxIters=int(max_iters),
                                          confidence=float(confidence))
        h = None
        if matrix is not None and matrix[2, 2] != 0:
            h = matrix.astype(np.float64) / float(matrix[2, 2])
    if not _usable(h) or mask is None:
        return none
    return h, mask.reshape(-1).astype(bool)


def apply_transform(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Points [N,2] through the 3x3 transform ``h`` (with the projective division) -> float64 [N,2]."""
    pts = _points(pts, "pts")
    h = np.asarray(h, dtype=np.float64)
    if h.shape != (3, 3):
        raise ValueError(f"transform must be 3x3, got shape {list(h.shape)}")
    hom = np.hstack([pts, np.ones((len(pts), 1))]) @ h.T
    with np.errstate(divide="ignore", invalid="ignore"):
        return hom[:, :2] / hom[:, 2:3]


def reprojection_errors(h: np.ndarray, pts0: np.ndarray, pts1: np.ndarray) -> np.ndarray:
    """Distances float64 [M] in image-1 pixels between ``h(pts0)`` and ``pts1``."""
    return np.sqrt(((apply_transform(h, pts0) - _points(pts1, "pts1")) ** 2).sum(axis=1))


def warp_image(image0: np.ndarray, h: np.ndarray, shape1: tuple[int, ...]) -> np.ndarray:
    """``image0`` resampled into image 1's frame (H1, W1) by ``h`` (see the module docstring)."""
    h = np.asarray(h, dtype=np.float64)
    if h.shape != (3, 3):
        raise ValueError(f"transform must be 3x3, got shape {list(h.shape)}")
    height, width = int(shape1[0]), int(shape1[1])
    return cv2.warpPerspective(image0, h, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
