"""Match a visible image against an NIR, thermal or SAR image with a trained checkpoint; register them.

Pipeline of :meth:`ImageMatcher.match` (image 0 = VIS, image 1 = the other spectrum):

1. both images as grey uint8 (:func:`kglnet.matching.images.read_image` for files; arrays go
   through the same conversion);
2. keypoints on each image separately (:func:`kglnet.matching.keypoints.find_keypoints`: "sift",
   "fast" or "grid", at most ``max_keypoints`` each, whole 64x64 patch inside) and their patches
   (:func:`kglnet.data.keypoints.cut_patches`);
3. descriptors of each image's patches through its own branch (VIS branch for image 0, other
   branch for image 1; :func:`kglnet.matching.descriptors.compute_descriptors`);
4. mutual nearest neighbours on descriptor distance (:func:`kglnet.matching.matcher.match_descriptors`);
5. optional verification: each match's metric-branch probability, kept when p >= ``verify_threshold``
   (KGL-Net; a descriptor-only model cannot verify);
6. RANSAC for an affine or a homography mapping image-0 coordinates to image-1 coordinates
   (:func:`kglnet.matching.geometry.estimate_transform`, threshold ``ransac_px`` in px); the
   estimate is kept only with at least ``min_inliers`` inliers. choice: by default the model's
   minimal sample plus two (5 for an affine, 6 for a homography): any 3 (4) matches fit an affine
   (homography) exactly, and among ~100 wrong matches over a few hundred pixels RANSAC's 2000
   hypotheses easily find one with a single chance agreement, rarely with two.

:class:`MatchResult` holds, with K0 / K1 keypoints and M matches (after verification):
``keypoints0`` int64 [K0,2], ``keypoints1`` int64 [K1,2] (x, y); ``matches`` int64 [M,2] (index
into keypoints0, index into keypoints1); ``distances`` float32 [M]; ``probabilities`` float32 [M]
or None (no verification); ``transform`` float64 [3,3] (VIS -> image 1) or None; ``inliers`` bool
[M] (all False without a transform); ``ransac_inliers`` (inliers of RANSAC's best estimate, also
when it was rejected for having fewer than ``min_inliers``); ``timings`` seconds per stage. :meth:`MatchResult.to_dict` / ``to_json`` give the
``matches.json`` record (format "kglnet-matches", version 1).

:func:`write_outputs` writes ``matches.json`` and ``matches.png`` (inlier matches side by side)
and, for a registration, ``transform.json``, ``warped.png`` (image 0 warped into image 1's frame
by :func:`kglnet.matching.geometry.warp_image`) and ``overlay.png`` (warped VIS green, image 1
magenta). Every file is written under a temporary name and renamed when complete; the pictures
first, the JSON records last.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kglnet.data.keypoints import cut_patches
from kglnet.matching.descriptors import (compute_descriptors, has_descriptors, has_metric_branch,
                                         match_probabilities, model_device)
from kglnet.matching.geometry import (MIN_MATCHES, TRANSFORM_MODELS, estimate_transform, reprojection_errors,
                                      warp_image)
from kglnet.matching.images import check_gray_image, read_image, to_gray_uint8, write_png
from kglnet.matching.keypoints import KEYPOINT_METHODS, find_keypoints
from kglnet.matching.matcher import match_descriptors
from kglnet.matching.visualize import draw_matches, overlay_images
from kglnet.utils.io import atomic_write_json

__all__ = ["MATCHES_FORMAT", "TRANSFORM_FORMAT", "MatchResult", "ImageMatcher", "RegistrationError",
           "match_images", "write_outputs", "MATCH_FILES", "REGISTER_FILES"]

MATCHES_FORMAT = "kglnet-matches"
TRANSFORM_FORMAT = "kglnet-transform"
FORMAT_VERSION = 1
MATCH_FILES = ("matches.json", "matches.png")
REGISTER_FILES = ("transform.json", "warped.png", "overlay.png")


class RegistrationError(ValueError):
    """No transform could be estimated, so there is nothing to warp (the message says why)."""


def _matrix(h: np.ndarray | None) -> list[list[float]] | None:
    return None if h is None else [[float(v) for v in row] for row in np.asarray(h, dtype=np.float64)]


@dataclass
class MatchResult:
    """The outcome of matching image 0 (VIS) against image 1 (see the module docstring for shapes)."""

    image0: str
    image1: str
    shape0: tuple[int, int]                 # (H0, W0)
    shape1: tuple[int, int]                 # (H1, W1)
    keypoints0: np.ndarray
    keypoints1: np.ndarray
    matches: np.ndarray
    distances: np.ndarray
    probabilities: np.ndarray | None
    transform: np.ndarray | None
    inliers: np.ndarray
    num_mutual: int                         # mutual nearest neighbours before verification
    ransac_inliers: int = 0                 # inliers of RANSAC's best estimate, kept or not
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def points0(self) -> np.ndarray:
        """float64 [M,2]: image-0 (x, y) of every match."""
        return self.keypoints0[self.matches[:, 0]].astype(np.float64)

    @property
    def points1(self) -> np.ndarray:
        """float64 [M,2]: image-1 (x, y) of every match."""
        return self.keypoints1[self.matches[:, 1]].astype(np.float64)

    @property
    def num_matches(self) -> int:
        return int(len(self.matches))

    @property
    def num_inliers(self) -> int:
        return int(self.inliers.sum())

    def inlier_rmse(self) -> float | None:
        """Root-mean-square reprojection error (px) of the inliers under the transform, or None."""
        if self.transform is None or not self.inliers.any():
            return None
        err = reprojection_errors(self.transform, self.points0[self.inliers], self.points1[self.inliers])
        return float(np.sqrt(np.mean(err ** 2)))

    def to_dict(self) -> dict[str, Any]:
        """The ``matches.json`` record: plain JSON types only."""
        p0, p1 = self.points0, self.points1
        probs = self.probabilities
        matches = [{"i": int(i), "j": int(j), "xy0": [int(a) for a in p0[k]], "xy1": [int(a) for a in p1[k]],
                    "distance": float(self.distances[k]),
                    "probability": None if probs is None else float(probs[k]),
                    "inlier": bool(self.inliers[k])}
                   for k, (i, j) in enumerate(self.matches.tolist())]
        return {
            "format": MATCHES_FORMAT,
            "version": FORMAT_VERSION,
            "image0": self.image0,
            "image1": self.image1,
            "size0": [int(self.shape0[1]), int(self.shape0[0])],      # [W, H]
            "size1": [int(self.shape1[1]), int(self.shape1[0])],
            "settings": dict(self.settings),
            "num_keypoints0": int(len(self.keypoints0)),
            "num_keypoints1": int(len(self.keypoints1)),
            "num_mutual": int(self.num_mutual),
            "num_matches": self.num_matches,
            "num_inliers": self.num_inliers,
            "ransac_inliers": int(self.ransac_inliers),
            "transform_model": self.settings.get("model_transform"),
            "transform": _matrix(self.transform),
            "inlier_rmse_px": self.inlier_rmse(),
            "keypoints0": self.keypoints0.tolist(),
            "keypoints1": self.keypoints1.tolist(),
            "matches": matches,
            "timings_s": {k: float(v) for k, v in self.timings.items()},
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON string (keys sorted)."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    def transform_record(self) -> dict[str, Any]:
        """The ``transform.json`` record (requires a transform)."""
        if self.transform is None:
            raise RegistrationError(self.failure_reason())
        return {
            "format": TRANSFORM_FORMAT,
            "version": FORMAT_VERSION,
            "model": self.settings.get("model_transform"),
            "matrix": _matrix(self.transform),
            "maps": "image0 (VIS) pixel (x, y) -> image1 pixel (x, y), homogeneous: [x1 w, y1 w, w] = M [x0, y0, 1]",
            "inverse": _matrix(np.linalg.inv(self.transform)),
            "image0": self.image0,
            "image1": self.image1,
            "size0": [int(self.shape0[1]), int(self.shape0[0])],
            "size1": [int(self.shape1[1]), int(self.shape1[0])],
            "num_matches": self.num_matches,
            "num_inliers": self.num_inliers,
            "inlier_rmse_px": self.inlier_rmse(),
            "ransac_px": self.settings.get("ransac_px"),
            "warp": {"function": "cv2.warpPerspective", "flags": "INTER_LINEAR",
                     "border": "BORDER_CONSTANT, value 0", "dsize": [int(self.shape1[1]), int(self.shape1[0])]},
        }

    def failure_reason(self) -> str:
        """Why there is no transform, in one line (empty when there is one)."""
        if self.transform is not None:
            return ""
        need = MIN_MATCHES.get(self.settings.get("model_transform", ""), 3)
        what = (f"{self.image0} / {self.image1}: no {self.settings.get('model_transform', 'affine')} transform found: "
                f"{len(self.keypoints0)} and {len(self.keypoints1)} keypoints, {self.num_mutual} mutual matches")
        if self.probabilities is not None:
            what += f", {self.num_matches} kept by verification (p >= {self.settings.get('verify_threshold')})"
        if self.num_matches < need:
            return what + f"; at least {need} are needed"
        if self.ransac_inliers:
            return what + (f"; RANSAC's best transform has {self.ransac_inliers} inliers, fewer than the "
                           f"{self.settings.get('min_inliers')} required")
        return what + "; RANSAC found no consistent transform"


def _as_image(image: np.ndarray | str | os.PathLike, name: str, label: str | None) -> tuple[np.ndarray, str]:
    if isinstance(image, np.ndarray):
        label = label or f"<{name} array>"
        return check_gray_image(to_gray_uint8(image, label), label), label
    return read_image(image), label or str(image)


class ImageMatcher:
    """A loaded model and matching settings; :meth:`match` matches any number of image pairs.

    Args:
        model: a checkpoint path (loaded with :func:`kglnet.checkpoint.load_model`) or a model
            (``nn.Module``) already built; it must produce descriptors.
        device: "auto" (CUDA when present, else CPU), "cpu", "cuda", ... For a model passed as a
            module, "auto" keeps it where it is; anything else moves it.
        keypoints: "sift", "fast" or "grid". max_keypoints: at most this many per image.
        min_spacing: minimum distance (px) between detected keypoints, and smallest grid step.
        model_transform: "affine" or "homography". ransac_px: RANSAC threshold (px, > 0).
        min_inliers: fewest RANSAC inliers for a transform to count (default: 5 for an affine,
            6 for a homography; see the module docstring).
        verify_threshold: None (no verification) or p in [0, 1]: keep matches whose metric-branch
            probability is >= p (needs a model with a metric branch, e.g. KGL-Net).
        batch_size: patches per forward pass.
    """

    def __init__(self, model: str | os.PathLike | torch.nn.Module, *, device: str = "auto", keypoints: str = "sift",
                 max_keypoints: int = 1000, min_spacing: int = 8, model_transform: str = "affine",
                 ransac_px: float = 3.0, min_inliers: int | None = None, verify_threshold: float | None = None,
                 batch_size: int = 256) -> None:
        from kglnet.checkpoint import load_model
        from kglnet.inference import resolve_device

        if keypoints not in KEYPOINT_METHODS:
            raise ValueError(f"unknown keypoint method {keypoints!r}; choose from {', '.join(KEYPOINT_METHODS)}")
        if model_transform not in TRANSFORM_MODELS:
            raise ValueError(f"unknown transform model {model_transform!r}; choose from {', '.join(TRANSFORM_MODELS)}")
        if int(max_keypoints) < 1:
            raise ValueError(f"max_keypoints must be >= 1, got {max_keypoints}")
        if int(min_spacing) < 1:
            raise ValueError(f"min_spacing must be >= 1, got {min_spacing}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not (math.isfinite(float(ransac_px)) and float(ransac_px) > 0):
            raise ValueError(f"ransac_px must be a positive number of pixels, got {ransac_px}")
        if min_inliers is None:
            min_inliers = MIN_MATCHES[model_transform] + 2
        if int(min_inliers) < MIN_MATCHES[model_transform]:
            raise ValueError(f"min_inliers must be at least {MIN_MATCHES[model_transform]} for a {model_transform}, "
                             f"got {min_inliers}")
        if verify_threshold is not None and not 0.0 <= float(verify_threshold) <= 1.0:
            raise ValueError(f"verify_threshold must be a probability in [0, 1], got {verify_threshold}")

        t0 = time.perf_counter()
        if isinstance(model, torch.nn.Module):
            self.checkpoint = None
            if device != "auto":
                model = model.to(resolve_device(device))
            self.model = model.eval()
        else:
            self.checkpoint = str(model)
            self.model, _ = load_model(model, device=resolve_device(device))
        self.load_seconds = time.perf_counter() - t0
        self.device = model_device(self.model)
        self.model_name = getattr(self.model, "model_name", type(self.model).__name__)
        owner = self.checkpoint or f"model {self.model_name!r}"
        if not has_descriptors(self.model):
            raise ValueError(f"{owner}: model {self.model_name!r} is a metric-only network without descriptors; "
                             "matching needs a descriptor branch (kglnet, hardnet, ...)")
        if verify_threshold is not None and not has_metric_branch(self.model):
            raise ValueError(f"{owner}: model {self.model_name!r} has no metric branch to verify matches with; "
                             "leave out the verification threshold or use a KGL-Net checkpoint")
        self.keypoints = keypoints
        self.max_keypoints = int(max_keypoints)
        self.min_spacing = int(min_spacing)
        self.model_transform = model_transform
        self.ransac_px = float(ransac_px)
        self.min_inliers = int(min_inliers)
        self.verify_threshold = None if verify_threshold is None else float(verify_threshold)
        self.batch_size = int(batch_size)

    def settings(self) -> dict[str, Any]:
        return {"keypoints": self.keypoints, "max_keypoints": self.max_keypoints, "min_spacing": self.min_spacing,
                "model_transform": self.model_transform, "ransac_px": self.ransac_px, "min_inliers": self.min_inliers,
                "verify_threshold": self.verify_threshold, "batch_size": self.batch_size,
                "model": self.model_name, "checkpoint": self.checkpoint, "device": str(self.device)}

    def match(self, image0: np.ndarray | str | os.PathLike, image1: np.ndarray | str | os.PathLike,
              names: tuple[str, str] | None = None) -> MatchResult:
        """Match image 0 (VIS; a file or an array) against image 1 (NIR / thermal / SAR).

        ``names``: what to call the two images in the result and in messages (default: the file
        paths, or "<image0 array>" / "<image1 array>" for arrays).
        """
        timings: dict[str, float] = {}
        start = clock = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[name] = now - clock
            clock = now

        label0, label1 = (None, None) if names is None else (str(names[0]), str(names[1]))
        img0, name0 = _as_image(image0, "image0", label0)
        img1, name1 = _as_image(image1, "image1", label1)
        lap("read")
        kp0 = find_keypoints(img0, self.keypoints, self.max_keypoints, min_spacing=self.min_spacing, name=name0)
        kp1 = find_keypoints(img1, self.keypoints, self.max_keypoints, min_spacing=self.min_spacing, name=name1)
        patches0, patches1 = cut_patches(img0, kp0), cut_patches(img1, kp1)
        lap("keypoints")
        desc0 = compute_descriptors(self.model, patches0, "vis", batch_size=self.batch_size, device=self.device)
        desc1 = compute_descriptors(self.model, patches1, "other", batch_size=self.batch_size, device=self.device)
        lap("descriptors")
        matches, distances = match_descriptors(desc0, desc1)
        num_mutual = len(matches)
        lap("matching")
        probabilities = None
        if self.verify_threshold is not None:
            probabilities = match_probabilities(self.model, patches0, patches1, matches, batch_size=self.batch_size,
                                                device=self.device)
            keep = probabilities >= self.verify_threshold
            matches, distances, probabilities = matches[keep], distances[keep], probabilities[keep]
            lap("verification")
        transform, inliers = estimate_transform(kp0[matches[:, 0]], kp1[matches[:, 1]], self.model_transform,
                                                self.ransac_px)
        ransac_inliers = int(inliers.sum())
        if transform is not None and ransac_inliers < self.min_inliers:
            transform, inliers = None, np.zeros_like(inliers)
        lap("ransac")
        timings["total"] = time.perf_counter() - start
        return MatchResult(image0=name0, image1=name1, shape0=img0.shape, shape1=img1.shape, keypoints0=kp0,
                           keypoints1=kp1, matches=matches, distances=distances, probabilities=probabilities,
                           transform=transform, inliers=inliers, num_mutual=num_mutual,
                           ransac_inliers=ransac_inliers, settings=self.settings(),
                           timings=timings)


def match_images(model: str | os.PathLike | torch.nn.Module, image0: np.ndarray | str | os.PathLike,
                 image1: np.ndarray | str | os.PathLike, **settings: Any) -> MatchResult:
    """One-shot :class:`ImageMatcher` (``settings``: its keyword arguments) on one image pair."""
    return ImageMatcher(model, **settings).match(image0, image1)


def write_outputs(result: MatchResult, image0: np.ndarray, image1: np.ndarray, out_dir: str | os.PathLike,
                  register: bool = False) -> dict[str, Path]:
    """Write the match outputs (and with ``register`` the registration outputs) into ``out_dir``.

    ``image0`` / ``image1``: the grey uint8 images the result was computed on. Returns
    {file name: path}. With ``register`` and no transform, the match outputs are still written,
    stale registration outputs of an earlier run are removed, and :class:`RegistrationError` is
    raised.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    written["matches.png"] = write_png(out / "matches.png", draw_matches(image0, image1, result.points0,
                                                                         result.points1, result.inliers))
    if register and result.transform is not None:
        warped = warp_image(image0, result.transform, image1.shape)
        written["warped.png"] = write_png(out / "warped.png", warped)
        written["overlay.png"] = write_png(out / "overlay.png", overlay_images(warped, image1))
        atomic_write_json(out / "transform.json", result.transform_record())
        written["transform.json"] = out / "transform.json"
    atomic_write_json(out / "matches.json", result.to_dict())
    written["matches.json"] = out / "matches.json"
    if register and result.transform is None:
        for name in REGISTER_FILES:
            (out / name).unlink(missing_ok=True)
        raise RegistrationError(result.failure_reason())
    return dict(sorted(written.items()))
