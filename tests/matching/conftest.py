"""Fixtures of the matching tests: synthetic textured images and untrained checkpoints.

Untrained weights are enough: the tests check plumbing (shapes, files, branches) and, where a
transform must be recovered exactly, use identical patches, which any deterministic Siamese
network maps to identical descriptors.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest


def make_texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 [H, W]: blurred noise at two scales plus a few filled shapes (corners for SIFT / FAST)."""
    rng = np.random.default_rng(seed)
    fine = cv2.GaussianBlur(rng.normal(size=(height, width)).astype(np.float32), (0, 0), 1.5)
    coarse = cv2.GaussianBlur(rng.normal(size=(height, width)).astype(np.float32), (0, 0), 6.0)
    image = fine / fine.std() + 2.0 * coarse / coarse.std()
    image = (image - image.min()) / (image.max() - image.min()) * 200.0 + 20.0
    for _ in range(12):
        x, y = int(rng.integers(0, width - 20)), int(rng.integers(0, height - 20))
        w, h = int(rng.integers(8, 30)), int(rng.integers(8, 30))
        cv2.rectangle(image, (x, y), (x + w, y + h), float(rng.integers(0, 256)), -1)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def texture() -> np.ndarray:
    return make_texture(240, 260)


@pytest.fixture(scope="session")
def affine_pair(texture) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(VIS uint8 [160,180], other uint8 [160,180], true 3x3 VIS -> other): the other image is the
    VIS image warped by a small affine and inverted (a crude second spectrum)."""
    vis = texture[40:200, 40:220].copy()
    angle, scale = np.deg2rad(4.0), 1.03
    a = np.array([[scale * np.cos(angle), -scale * np.sin(angle), 6.0],
                  [scale * np.sin(angle), scale * np.cos(angle), -4.0]])
    other = 255 - cv2.warpAffine(vis, a, (vis.shape[1], vis.shape[0]), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REFLECT)
    return vis, other, np.vstack([a, [0.0, 0.0, 1.0]])


@pytest.fixture(scope="session")
def kglnet_checkpoint(untrained_checkpoint) -> Path:
    """An untrained KGL-Net checkpoint (the real architecture; 25 MB)."""
    return untrained_checkpoint("kglnet")


@pytest.fixture(scope="session")
def tfeat_checkpoint(untrained_checkpoint) -> Path:
    """An untrained TFeat checkpoint: a small Siamese descriptor model (one set of weights)."""
    return untrained_checkpoint("tfeat")


@pytest.fixture(scope="session")
def metric_only_checkpoint(untrained_checkpoint) -> Path:
    """An untrained 2-channel network: a metric-only model without descriptors."""
    return untrained_checkpoint("two_channel")
