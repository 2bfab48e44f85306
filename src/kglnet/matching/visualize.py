"""Pictures of a matching result: matches side by side, and a colour overlay of a registration.

- :func:`draw_matches`: BGR uint8 [max(H0, H1), W0 + W1, 3]; image 0 (VIS) on the left, image 1
  on the right (grey, top-aligned, black padding below the shorter one). Each drawn match is a
  line from its image-0 point to its image-1 point (shifted right by W0) with a circle at both
  ends: inliers in green; outliers only with ``draw_outliers``, in red, under the inliers.
  Lines are anti-aliased; line width and circle radius grow with the picture (1 px and 3 px up to
  1000 px wide).
- :func:`overlay_images`: BGR uint8 [H1, W1, 3] = (B, G, R) = (image 1, warped image 0, image 1):
  the warped VIS image in green, the other image in magenta; where they agree the picture is
  grey, where one is brighter it is green or magenta.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["draw_matches", "overlay_images"]

INLIER_COLOUR = (0, 255, 0)     # BGR green
OUTLIER_COLOUR = (0, 0, 255)    # BGR red


def draw_matches(image0: np.ndarray, image1: np.ndarray, pts0: np.ndarray, pts1: np.ndarray,
                 inliers: np.ndarray | None = None, *, draw_outliers: bool = False) -> np.ndarray:
    """Side-by-side picture of matches ``pts0[k] <-> pts1[k]`` ([M, 2] (x, y) each).

    ``inliers``: bool [M] (None: every match is an inlier).
    """
    if image0.ndim != 2 or image1.ndim != 2:
        raise ValueError("draw_matches expects two grey [H, W] images")
    pts0 = np.asarray(pts0, dtype=np.float64).reshape(-1, 2)
    pts1 = np.asarray(pts1, dtype=np.float64).reshape(-1, 2)
    if len(pts0) != len(pts1):
        raise ValueError(f"pts0 and pts1 differ in length: {len(pts0)} vs {len(pts1)}")
    inliers = np.ones(len(pts0), bool) if inliers is None else np.asarray(inliers, bool).reshape(-1)
    (h0, w0), (h1, w1) = image0.shape, image1.shape
    canvas = np.zeros((max(h0, h1), w0 + w1, 3), np.uint8)
    canvas[:h0, :w0] = cv2.cvtColor(image0, cv2.COLOR_GRAY2BGR)
    canvas[:h1, w0:] = cv2.cvtColor(image1, cv2.COLOR_GRAY2BGR)
    scale = max(1, int(round(canvas.shape[1] / 1000)))
    order = [(False, OUTLIER_COLOUR)] if draw_outliers else []
    order.append((True, INLIER_COLOUR))
    for wanted, colour in order:
        for (x0, y0), (x1, y1) in zip(pts0[inliers == wanted], pts1[inliers == wanted]):
            a = (int(round(x0)), int(round(y0)))
            b = (int(round(x1)) + w0, int(round(y1)))
            cv2.line(canvas, a, b, colour, scale, cv2.LINE_AA)
            cv2.circle(canvas, a, 3 * scale, colour, scale, cv2.LINE_AA)
            cv2.circle(canvas, b, 3 * scale, colour, scale, cv2.LINE_AA)
    return canvas


def overlay_images(warped0: np.ndarray, image1: np.ndarray) -> np.ndarray:
    """Colour overlay BGR uint8 [H1, W1, 3]: warped image 0 in green, image 1 in magenta."""
    if warped0.shape != image1.shape or warped0.ndim != 2:
        raise ValueError(f"overlay needs two grey images of one size, got {list(warped0.shape)} and "
                         f"{list(image1.shape)}")
    return np.dstack([image1, warped0, image1]).astype(np.uint8)
