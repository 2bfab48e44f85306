"""The reference's augmentation as it ran: on the CPU, one patch at a time, in uint8 (SPEC 4, 10).

``kglnet bench`` times the reference's training end to end, and the reference augmented on the
CPU with an image library that no longer installs with current NumPy (SPEC 4; the SPEC does not
name it, its terms -- augmenters, crop-or-pad -- are imgaug's) at 122.7 ms per 256-pair batch on
one core of an H200 machine (SPEC 10). This module re-enacts that cost with
the same operations done the way such a library does them: per patch, in a Python loop, with
OpenCV and NumPy on uint8 arrays, rounding and clipping to uint8 after every operation.

It is for timing the reference path only. The project trains with
:class:`kglnet.augment.PairAugmentation`, batched on the device; both follow SPEC 4's
distribution:

- each patch of a pair, independently: 0, 1 or 2 (uniform count, then distinct operations
  uniformly, applied in the order of :data:`JITTER_OPS`) of Gaussian blur (sigma U(0, 1), 7x7),
  gamma contrast (U(0.5, 1.5), a lookup table), scale along x or y (U(0.95, 1.1)), translate along x
  or y (U(-5 %, 5 %) of the size), additive Gaussian noise (sigma 0.02 * 255), crop-or-pad (each side
  U(-10 %, 10 %), zero padding, resized back) and reflect padding (each side U(0, 10 %), resized
  back); the geometric ones resample bilinearly with reflected borders;
- then one change shared by both patches: 0, 1 or 2 distinct operations of horizontal flip,
  vertical flip, rotation by 90, 180 or 270 degrees.

Inputs are uint8 arrays [H, W] (one patch) or [B, H, W] (a batch, augmented pair by pair);
outputs have the same shape and dtype. A seeded ``numpy.random.Generator`` makes runs repeatable.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["JITTER_OPS", "ReferenceCPUAugmenter"]

JITTER_OPS: tuple[str, ...] = ("blur", "gamma", "scale", "translate", "noise", "crop_pad", "reflect_pad")
SHARED_OPS: tuple[str, ...] = ("hflip", "vflip", "rot90")


def _check(patch: np.ndarray, name: str, ndim: int) -> None:
    if not isinstance(patch, np.ndarray) or patch.dtype != np.uint8 or patch.ndim != ndim:
        got = f"{type(patch).__name__} {getattr(patch, 'dtype', '')} with shape {getattr(patch, 'shape', None)}"
        raise ValueError(f"{name}: expected a uint8 array with {ndim} dimensions, got {got}")


class ReferenceCPUAugmenter:
    """SPEC 4's augmentation, patch by patch on the CPU in uint8 (see the module docstring).

    ``augmenter(vis, other)`` augments one pair ([H, W] uint8 each); :meth:`batch` a batch of
    pairs ([B, H, W] uint8 each) in a Python loop, as the reference's data pipeline did.
    """

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    # -- the jitter operations: uint8 [H, W] -> uint8 [H, W] --
    def blur(self, p: np.ndarray) -> np.ndarray:
        sigma = self.rng.uniform(0.0, 1.0)
        if sigma < 1e-3:  # OpenCV would derive sigma from the kernel size at 0
            return p
        return cv2.GaussianBlur(p, (7, 7), sigma, borderType=cv2.BORDER_REFLECT_101)

    def gamma(self, p: np.ndarray) -> np.ndarray:
        g = self.rng.uniform(0.5, 1.5)
        lut = np.clip(np.round(255.0 * (np.arange(256) / 255.0) ** g), 0, 255).astype(np.uint8)
        return cv2.LUT(p, lut)

    def _warp(self, p: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        h, w = p.shape
        return cv2.warpAffine(p, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)

    def scale(self, p: np.ndarray) -> np.ndarray:
        factor, axis = self.rng.uniform(0.95, 1.1), self.rng.integers(2)
        fx, fy = (factor, 1.0) if axis == 0 else (1.0, factor)
        cx, cy = (p.shape[1] - 1) / 2, (p.shape[0] - 1) / 2
        return self._warp(p, np.array([[fx, 0, (1 - fx) * cx], [0, fy, (1 - fy) * cy]]))

    def translate(self, p: np.ndarray) -> np.ndarray:
        d, axis = self.rng.uniform(-0.05, 0.05), self.rng.integers(2)
        dx, dy = (d * p.shape[1], 0.0) if axis == 0 else (0.0, d * p.shape[0])
        return self._warp(p, np.array([[1.0, 0, dx], [0, 1.0, dy]]))

    def noise(self, p: np.ndarray) -> np.ndarray:
        noisy = p.astype(np.float32) + self.rng.normal(0.0, 0.02 * 255, p.shape).astype(np.float32)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)

    def _border_resize(self, p: np.ndarray, fractions: np.ndarray, border: int) -> np.ndarray:
        h, w = p.shape
        top, right, bottom, left = (np.round(fractions * [h, w, h, w])).astype(int)
        # crop the sides with a negative amount, pad those with a positive one
        cropped = p[max(0, -top): h - max(0, -bottom), max(0, -left): w - max(0, -right)]
        padded = cv2.copyMakeBorder(cropped, max(0, top), max(0, bottom), max(0, left), max(0, right),
                                    border, value=0)
        return cv2.resize(padded, (w, h), interpolation=cv2.INTER_LINEAR)

    def crop_pad(self, p: np.ndarray) -> np.ndarray:
        return self._border_resize(p, self.rng.uniform(-0.1, 0.1, 4), cv2.BORDER_CONSTANT)

    def reflect_pad(self, p: np.ndarray) -> np.ndarray:
        return self._border_resize(p, self.rng.uniform(0.0, 0.1, 4), cv2.BORDER_REFLECT_101)

    # -- drawing --
    def _draw(self, names: tuple[str, ...]) -> list[str]:
        count = int(self.rng.integers(0, 3))
        chosen = sorted(self.rng.choice(len(names), size=count, replace=False))
        return [names[i] for i in chosen]

    def jitter(self, patch: np.ndarray) -> np.ndarray:
        """0-2 jitter operations drawn for this patch alone, in :data:`JITTER_OPS` order."""
        _check(patch, "patch", 2)
        return self._jitter(patch)

    def _jitter(self, patch: np.ndarray) -> np.ndarray:
        for name in self._draw(JITTER_OPS):
            patch = getattr(self, name)(patch)
        return patch

    def __call__(self, vis: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _check(vis, "vis", 2)
        _check(other, "other", 2)
        if vis.shape != other.shape:
            raise ValueError(f"vis and other patches differ in shape: {vis.shape} vs {other.shape}")
        return self._pair(vis, other)

    def _pair(self, vis: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # unchecked: batch() checks the whole batch once, not every pair inside the timed loop
        vis, other = self._jitter(vis), self._jitter(other)
        for name in self._draw(SHARED_OPS):  # the same change for both patches keeps the pair aligned
            if name == "hflip":
                vis, other = vis[:, ::-1], other[:, ::-1]
            elif name == "vflip":
                vis, other = vis[::-1], other[::-1]
            else:
                k = int(self.rng.integers(1, 4))
                vis, other = np.rot90(vis, k), np.rot90(other, k)
        return np.ascontiguousarray(vis), np.ascontiguousarray(other)

    def batch(self, vis: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A batch of pairs, [B, H, W] uint8 each, augmented pair by pair."""
        _check(vis, "vis", 3)
        _check(other, "other", 3)
        if vis.shape != other.shape:
            raise ValueError(f"vis and other batches differ in shape: {vis.shape} vs {other.shape}")
        if vis.shape[1] != vis.shape[2]:
            raise ValueError(f"patches must be square (a rotation by 90 degrees keeps their shape); got {vis.shape[1:]}")
        out_vis, out_other = np.empty_like(vis), np.empty_like(other)
        for i in range(len(vis)):
            out_vis[i], out_other[i] = self._pair(vis[i], other[i])
        return out_vis, out_other
