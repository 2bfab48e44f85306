"""Registration benchmark on the VIS-NIR registration dataset (issue 7, item 2).

The dataset's eight test categories hold 20 pairs each (160 in all) whose NIR image was warped on
purpose: ``nir.jpg = cv2.warpAffine(original_nir, M)`` with M (2x3) in ``NNNN_nir.npy`` and the
original NIR pixel-aligned with the RGB image. OpenCV's ``warpAffine`` maps source coordinates
to destination coordinates with M, so the ground-truth transform from VIS (RGB) coordinates to
warped-NIR coordinates is M itself (as a 3x3 matrix).

Score of an estimate H (3x3, VIS -> NIR): the mean distance, over the four image corners of the
VIS image, between ``H(corner)`` and ``M(corner)`` (the "corner error", in pixels). A pair
succeeds at t px when an estimate exists and its corner error is below t. A failed estimate
(too few matches, degenerate RANSAC, a corner mapped to infinity) counts as a failure at every
threshold and is left out of
the mean and median corner error (which are over the pairs with an estimate; the summary says
how many that is).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

#: The folder of the registration dataset inside its source repository (SPEC section 8).
REGISTRATION_ROOT = "VIS-NIR registration dataset"
#: The eight categories with warped NIR images (country is aligned and trains the models).
REGISTRATION_CATEGORIES = ("field", "forest", "indoor", "mountain", "oldbuilding", "street", "urban", "water")
THRESHOLDS_PX = (5.0, 10.0)


@dataclass(frozen=True)
class RegistrationPair:
    """One test pair: its id ("category/NNNN"), file paths and the ground truth VIS -> NIR (3x3)."""

    pair_id: str
    category: str
    vis_path: Path
    nir_path: Path
    truth: np.ndarray


@dataclass
class PairResult:
    """What one method did on one pair."""

    pair_id: str
    category: str
    corner_error_px: float | None     # None: no transform estimated
    inliers: int
    matches: int
    seconds: float


def as_homogeneous(matrix: np.ndarray) -> np.ndarray:
    """A 2x3 affine or a 3x3 matrix as a float64 3x3 matrix; anything else is an error."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape == (2, 3):
        return np.vstack([matrix, [0.0, 0.0, 1.0]])
    if matrix.shape == (3, 3):
        return matrix
    raise ValueError(f"expected a 2x3 or 3x3 transform, got shape {list(matrix.shape)}")


def apply_transform(matrix: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Points [N,2] through a 2x3 / 3x3 transform (with the projective division) -> [N,2]."""
    h = as_homogeneous(matrix)
    pts = np.hstack([np.asarray(xy, dtype=np.float64), np.ones((len(xy), 1))]) @ h.T
    return pts[:, :2] / pts[:, 2:3]


def corner_error(estimate: np.ndarray, truth: np.ndarray, width: int, height: int) -> float:
    """Mean distance (px) between the four image corners mapped by ``estimate`` and by ``truth``.

    The corners are those of the VIS image, (0,0), (w-1,0), (w-1,h-1), (0,h-1). A non-finite
    mapping (a degenerate homography sending a corner to infinity) gives ``inf``.
    """
    corners = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = apply_transform(estimate, corners) - apply_transform(truth, corners)
        err = float(np.sqrt((diff ** 2).sum(axis=1)).mean())
    return err if math.isfinite(err) else math.inf


def registration_pairs(source_dir: str | Path, categories: Iterable[str] = REGISTRATION_CATEGORIES,
                       per_category: int | None = None) -> list[RegistrationPair]:
    """The warped test pairs under ``source_dir`` (the fetched / mirrored source folder), checked.

    Raises ValueError naming the folder or file when a category, an image or a matrix is missing.
    """
    from ..data.mini import _load_affine  # the checked reader of the dataset's matrices

    root = Path(source_dir) / REGISTRATION_ROOT
    if not root.is_dir():
        raise ValueError(f"{root}: VIS-NIR registration dataset folder not found")
    pairs = []
    for category in categories:
        folder = root / category
        rgbs = sorted(folder.glob("*_rgb.jpg"))
        if not rgbs:
            raise ValueError(f"{folder}: no NNNN_rgb.jpg images in category {category!r}")
        for rgb in rgbs[:per_category] if per_category else rgbs:
            stem = rgb.name[: -len("_rgb.jpg")]
            nir, npy = folder / f"{stem}_nir.jpg", folder / f"{stem}_nir.npy"
            for needed in (nir, npy):
                if not needed.is_file():
                    raise ValueError(f"{rgb}: its partner {needed.name} is missing")
            pairs.append(RegistrationPair(f"{category}/{stem}", category, rgb, nir,
                                          as_homogeneous(_load_affine(npy))))
    return pairs


def summarize(results: list[PairResult], thresholds: Iterable[float] = THRESHOLDS_PX) -> dict:
    """Success rates (fraction of all pairs), mean / median corner error over the pairs with an
    estimate, mean inliers and seconds per pair; per category too."""
    def block(rs: list[PairResult]) -> dict:
        errors = [r.corner_error_px for r in rs if r.corner_error_px is not None]
        out = {"pairs": len(rs), "estimated": len(errors)}
        for t in thresholds:
            out[f"success_{t:g}px"] = sum(e < t for e in errors) / len(rs) if rs else None
        out["mean_corner_error_px"] = float(np.mean(errors)) if errors else None
        out["median_corner_error_px"] = float(np.median(errors)) if errors else None
        out["mean_inliers"] = float(np.mean([r.inliers for r in rs])) if rs else None
        out["seconds_per_pair"] = float(np.mean([r.seconds for r in rs])) if rs else None
        return out

    summary = block(results)
    summary["per_category"] = {c: block([r for r in results if r.category == c])
                               for c in sorted({r.category for r in results})}
    return summary


RegisterFn = Callable[[Path, Path], tuple[np.ndarray | None, int, int]]


def run_registration(pairs: list[RegistrationPair], register: RegisterFn, progress: bool = False) -> list[PairResult]:
    """Run ``register(vis_path, nir_path) -> (3x3 VIS->NIR estimate or None, inliers, matches)``
    on every pair and score it against the ground truth."""
    import time

    import cv2
    from tqdm import tqdm

    results = []
    for pair in tqdm(pairs, desc="registration", unit="pair", disable=not progress):
        t0 = time.perf_counter()
        estimate, inliers, matches = register(pair.vis_path, pair.nir_path)
        seconds = time.perf_counter() - t0
        error = None
        if estimate is not None:
            height, width = cv2.imread(str(pair.vis_path), cv2.IMREAD_GRAYSCALE).shape
            error = corner_error(estimate, pair.truth, width, height)
            if not math.isfinite(error):  # a degenerate estimate is no estimate
                error = None
        results.append(PairResult(pair.pair_id, pair.category, error, int(inliers), int(matches), seconds))
    return results


def results_table(summary: dict[str, dict], device: str) -> str:
    """Markdown table, one row per method (``summary``: method -> :func:`summarize` output)."""
    lines = [f"Registration of the {next(iter(summary.values()))['pairs']} warped VIS-NIR pairs "
             f"(corner error against the dataset's affine; timings on {device})", "",
             "| method | success < 5 px | success < 10 px | mean corner error (px) | median (px) | "
             "estimated | mean inliers | s / pair |", "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def num(v, fmt):
        return "—" if v is None else format(v, fmt)

    for method, s in summary.items():
        lines.append(f"| {method} | {num(s['success_5px'], '.1%')} | {num(s['success_10px'], '.1%')} | "
                     f"{num(s['mean_corner_error_px'], '.2f')} | {num(s['median_corner_error_px'], '.2f')} | "
                     f"{s['estimated']}/{s['pairs']} | {num(s['mean_inliers'], '.1f')} | "
                     f"{num(s['seconds_per_pair'], '.2f')} |")
    return "\n".join(lines) + "\n"


def results_records(results: list[PairResult]) -> list[dict]:
    return [asdict(r) for r in results]


class SiftPatchDescriptor(torch.nn.Module):
    """SIFT as a descriptor "model" for :class:`kglnet.matching.ImageMatcher`: OpenCV SIFT at
    each patch's centre with fixed scale and orientation (:func:`kglnet.evaluation.handcrafted.
    sift_descriptors`), on the same keypoints and patches the learned models see. A module
    without parameters, so the matcher treats it like any descriptor model (forward returns
    ``(desc_vis [B,128], desc_other [B,128], None)``)."""

    reported_branch = "descriptor"
    model_name = "sift"
    descriptor_dim = 128

    @staticmethod
    def describe(x: torch.Tensor) -> torch.Tensor:
        from .handcrafted import sift_descriptors

        patches = (x[:, 0] * 255.0).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
        return torch.from_numpy(sift_descriptors(patches)).to(x.device)

    def forward(self, vis: torch.Tensor, other: torch.Tensor):
        return self.describe(vis), self.describe(other), None


def benchmark_methods(checkpoint: str | Path, methods: Iterable[str], matcher_settings: dict) -> dict[str, object]:
    """``{method: ImageMatcher}``: "kglnet" (or any learned model) from ``checkpoint``, "sift" from
    :class:`SiftPatchDescriptor`; the same keypoint, RANSAC and transform settings for all."""
    from ..matching import ImageMatcher

    matchers = {}
    for method in methods:
        settings = dict(matcher_settings)
        if method == "sift":
            settings.pop("verify_threshold", None)  # no metric branch
            matchers[method] = ImageMatcher(SiftPatchDescriptor(), **settings)
        else:
            matchers[method] = ImageMatcher(checkpoint, **settings)
    return matchers


def matcher_register_fn(matcher) -> RegisterFn:
    """Adapt an ImageMatcher to :func:`run_registration`'s ``register`` callable."""
    def register(vis_path: Path, nir_path: Path):
        result = matcher.match(vis_path, nir_path)
        return result.transform, int(result.inliers.sum()), int(len(result.matches))
    return register


__all__ = ["SiftPatchDescriptor", "benchmark_methods", "matcher_register_fn", "REGISTRATION_CATEGORIES", "REGISTRATION_ROOT", "THRESHOLDS_PX", "PairResult", "RegistrationPair",
           "apply_transform", "as_homogeneous", "corner_error", "registration_pairs", "results_records",
           "results_table", "run_registration", "summarize"]
