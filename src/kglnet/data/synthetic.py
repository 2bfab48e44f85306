"""Seeded synthetic cross-spectral image pairs: the built-in data that needs no download.

Each image pair is a procedural scene, a *material map* (a few smooth background regions plus
random filled polygons, ellipses, rotated rectangles and thick strokes), rendered twice:

* **visible**: per-material reflectance, fine texture, a smooth illumination field, a gamma tone
  curve, light blur and noise;
* **other spectrum**: per-material reflectance *related but different* (each material keeps its
  brightness, is inverted, or is re-drawn at random), a partly independent texture and
  illumination, a non-monotonic (folding) tone curve, stronger blur and noise.

Both renders share the geometry exactly (pixel-aligned), so the *structure* (edges, shapes)
carries over between spectra while intensities and edge polarity do not. That is what makes it
a real learning problem: raw-pixel NCC and gradient-orientation descriptors (SIFT) fail on the
polarity flips, while a CNN trained on the pairs can learn the invariance.

Every image pair draws from its own generator derived from ``(seed, split, index)`` with
:class:`numpy.random.SeedSequence`, so a pair does not depend on generation order or on the size
of the other splits, and no image appears in two splits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kglnet.data.keypoints import KEYPOINT_METHODS, detect_keypoints, make_pairs
from kglnet.data.pairfile import PATCH_SIZE, write_pairs
from kglnet.utils.io import atomic_write_json, sha256_file
from kglnet.utils.config import dataclass_from_dict

__all__ = [
    "SyntheticConfig",
    "render_pair",
    "pair_rngs",
    "config_sha256",
    "build_split",
    "build_synthetic_dataset",
]

TRAIN_SPLIT = "train"


@dataclass
class SyntheticConfig:
    """Everything that determines the synthetic dataset (its sha256 versions the data).

    Sizes (defaults sized for a 2-core CPU workflow: about 3,000 training positives, about 1,000
    validation and about 2,000 test pairs, generated in a few seconds):

    Attributes:
        image_size: side of the square images in pixels (>= 64 + min_negative_distance so that
            negatives exist).
        images: image pairs per split; split ``"train"`` holds positives only, every other split
            balanced positives and negatives. Splits never share an image pair.
        keypoints_per_image: maximum keypoints per image pair (each gives one positive, plus one
            negative outside train).
        keypoint_method: "fast" or "sift", detected on the visible image.
        min_spacing: minimum distance between keypoints, pixels.
        min_negative_distance: minimum distance between the two points of a negative, pixels.
        seed: master seed.

    Difficulty knobs. With the defaults, raw-pixel NCC reaches an FPR95 of about 50-65 % on the
    32-image test split (seeds 0-2; 24-87 % over all val/test splits, the per-image variation is
    large) and centre SIFT descriptors 45-70 %, while a small 2-channel CNN trained for a minute on
    the train split reaches about 3 %. ``reversal_prob`` is the steepest knob: 0 gives NCC about
    25 %, 0.1 about 55-95 %.

    Attributes:
        materials: distinct materials per scene.
        shapes_min, shapes_max: number of foreground shapes per scene (inclusive range).
        reversal_prob: probability that a material's other-spectrum reflectance is inverted
            (``1 - visible``): contrast reversal, the main difficulty for NCC and SIFT.
        remap_prob: probability that it is re-drawn independently of the visible one.
        reflectance_jitter: std of the extra per-material change between spectra.
        texture_vis, texture_other: amplitude of the fine per-material texture in each spectrum.
        texture_shared: correlation of the texture between spectra (0 = independent).
        illumination: amplitude (log scale) of the smooth illumination field.
        illumination_shared: correlation of the illumination between spectra.
        gamma_min, gamma_max: range of the visible gamma tone curve.
        fold: weight of the non-monotonic (cosine, folding) tone curve of the other spectrum.
        blur_vis, blur_other: Gaussian blur sigma in pixels per spectrum.
        polarity_flip_prob: probability that an image pair's other spectrum is inverted as a whole
            (white-hot / black-hot): NCC and SIFT cannot match across it, a network can learn to.
        noise_vis, noise_other: additive Gaussian noise std per spectrum (intensity in [0, 1]).
    """

    image_size: int = 192
    images: dict = field(default_factory=lambda: {"train": 96, "val": 16, "test": 32})
    keypoints_per_image: int = 32
    keypoint_method: str = "fast"
    min_spacing: int = 8
    min_negative_distance: int = PATCH_SIZE
    seed: int = 0
    materials: int = 8
    shapes_min: int = 14
    shapes_max: int = 26
    reversal_prob: float = 0.05
    remap_prob: float = 0.05
    reflectance_jitter: float = 0.07
    texture_vis: float = 0.03
    texture_other: float = 0.04
    texture_shared: float = 0.3
    illumination: float = 0.3
    illumination_shared: float = 0.5
    gamma_min: float = 0.6
    gamma_max: float = 1.6
    fold: float = 0.25
    blur_vis: float = 0.6
    blur_other: float = 1.3
    noise_vis: float = 0.012
    noise_other: float = 0.035
    polarity_flip_prob: float = 0.5

    def __post_init__(self) -> None:
        self.images = {str(k): int(v) for k, v in dict(self.images).items()}
        problems = []
        if not self.images:
            problems.append("images must name at least one split")
        if any(v < 0 for v in self.images.values()):
            problems.append(f"image counts must be >= 0, got {self.images}")
        if self.image_size < PATCH_SIZE + max(self.min_negative_distance, 1):
            problems.append(
                f"image_size must be >= {PATCH_SIZE + self.min_negative_distance} "
                f"(patch + min_negative_distance), got {self.image_size}"
            )
        if self.keypoint_method not in KEYPOINT_METHODS:
            problems.append(f"keypoint_method must be one of {KEYPOINT_METHODS}")
        if self.keypoints_per_image < 1:
            problems.append("keypoints_per_image must be >= 1")
        if self.materials < 2:
            problems.append("materials must be >= 2")
        if not 0 <= self.shapes_min <= self.shapes_max:
            problems.append("need 0 <= shapes_min <= shapes_max")
        for name in ("reversal_prob", "remap_prob", "texture_shared", "illumination_shared", "fold",
                     "polarity_flip_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be in [0, 1]")
        if self.reversal_prob + self.remap_prob > 1.0:
            problems.append("reversal_prob + remap_prob must be <= 1")
        if not 0 < self.gamma_min <= self.gamma_max:
            problems.append("need 0 < gamma_min <= gamma_max")
        for name in ("reflectance_jitter", "texture_vis", "texture_other", "illumination",
                     "blur_vis", "blur_other", "noise_vis", "noise_other"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0")
        if problems:
            raise ValueError("invalid SyntheticConfig: " + "; ".join(problems))

    @classmethod
    def tiny(cls, **overrides: Any) -> "SyntheticConfig":
        """A few hundred pairs for tests (about 150 train positives, 140 val and 140 test pairs)."""
        params: dict[str, Any] = dict(images={"train": 6, "val": 3, "test": 3}, keypoints_per_image=24)
        params.update(overrides)
        return cls(**params)

    @classmethod
    def from_dict(cls, data: dict) -> "SyntheticConfig":
        """Build from a plain dict (e.g. parsed YAML); unknown keys are an error."""
        return dataclass_from_dict(cls, data, "SyntheticConfig keys:")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def config_sha256(cfg: SyntheticConfig) -> str:
    """sha256 of the canonical (key-sorted, compact) JSON of the config."""
    canonical = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def pair_rngs(seed: int, split: str, index: int) -> tuple[np.random.Generator, ...]:
    """Independent generators (render, keypoints, pairs) for image pair ``index`` of ``split``.

    Derived from ``SeedSequence([seed, crc32(split), index])``: a pure function of its arguments,
    so pairs do not depend on generation order and different splits never share a stream.
    """
    tag = zlib.crc32(split.encode("utf-8"))
    children = np.random.SeedSequence([int(seed), tag, int(index)]).spawn(3)
    return tuple(np.random.default_rng(child) for child in children)


# ------------------------------------------------------------------------------------ rendering


def _smooth_field(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """float32 [size, size], zero mean and unit std, varying on the scale size / cells."""
    coarse = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    field_ = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    return (field_ - field_.mean()) / (field_.std() + 1e-6)


def _noise_texture(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """float32 [size, size] Gaussian-filtered white noise, unit std (grain of scale ~sigma)."""
    white = rng.standard_normal((size, size)).astype(np.float32)
    tex = cv2.GaussianBlur(white, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return tex / (tex.std() + 1e-6)


def _material_map(rng: np.random.Generator, size: int, cfg: SyntheticConfig) -> np.ndarray:
    """uint8 [size, size] material ids in [0, cfg.materials)."""
    m = cfg.materials
    # Background: a smooth field cut into up to three regions gives organic, non-straight borders
    # (like fields, vegetation, sky) besides the man-made shapes drawn on top.
    ground = _smooth_field(rng, size, 3)
    regions = rng.choice(m, size=min(3, m), replace=False).astype(np.uint8)
    cuts = np.sort(rng.uniform(-0.8, 0.8, size=len(regions) - 1))
    labels = regions[np.digitize(ground, cuts)].copy()
    n_shapes = int(rng.integers(cfg.shapes_min, cfg.shapes_max + 1))
    kinds = rng.choice(5, size=n_shapes, p=[0.3, 0.2, 0.2, 0.2, 0.1])
    for kind in kinds:
        colour = int(rng.integers(m))
        centre = rng.uniform(-0.1, 1.1, size=2) * size
        if kind == 0:  # random polygon around a centre (star-shaped, so never self-intersecting)
            n = int(rng.integers(3, 8))
            angles = np.sort(rng.uniform(0, 2 * np.pi, n))
            radii = rng.uniform(0.3, 1.0, n) * rng.uniform(0.06, 0.3) * size
            pts = centre + np.stack([np.cos(angles), np.sin(angles)], 1) * radii[:, None]
            cv2.fillPoly(labels, [np.rint(pts).astype(np.int32)], colour)
        elif kind == 1:  # ellipse
            axes = np.rint(rng.uniform(0.03, 0.2, 2) * size).astype(int)
            cv2.ellipse(labels, tuple(int(v) for v in np.rint(centre)), tuple(int(v) for v in axes),
                        float(rng.uniform(0, 180)), 0, 360, colour, -1)
        elif kind == 2:  # rotated rectangle (buildings, fields)
            wh = rng.uniform(0.05, 0.35, 2) * size
            box = cv2.boxPoints(((float(centre[0]), float(centre[1])), (float(wh[0]), float(wh[1])),
                                 float(rng.uniform(0, 90))))
            cv2.fillPoly(labels, [np.rint(box).astype(np.int32)], colour)
        elif kind == 3:  # thick stroke: a road / river as a short polyline
            n = int(rng.integers(2, 5))
            pts = np.cumsum(rng.normal(0, 0.25 * size, (n, 2)), axis=0) + centre
            cv2.polylines(labels, [np.rint(pts).astype(np.int32)], False, colour,
                          int(rng.integers(2, 8)))
        else:  # thin straight line (wires, kerbs, field boundaries)
            end = centre + rng.normal(0, 0.4 * size, 2)
            cv2.line(labels, tuple(int(v) for v in np.rint(centre)),
                     tuple(int(v) for v in np.rint(end)), colour, int(rng.integers(1, 3)))
    return labels


def _stretch(img: np.ndarray) -> np.ndarray:
    """Map the 1st..99th percentile to [0, 1] (camera auto-exposure), clipped."""
    lo, hi = np.percentile(img, (1, 99))
    return np.clip((img - lo) / max(hi - lo, 1e-3), 0.0, 1.0)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def render_pair(rng: np.random.Generator, size: int, cfg: SyntheticConfig) -> tuple[np.ndarray, np.ndarray]:
    """Render one pixel-aligned synthetic image pair.

    Args:
        rng: the pair's generator (consumed; same state -> identical images).
        size: image side in pixels.
        cfg: difficulty knobs (``image_size`` is ignored in favour of ``size``).

    Returns:
        (vis, other): uint8 [size, size] each.
    """
    m = cfg.materials
    labels = _material_map(rng, size, cfg)

    # Reflectances: the other spectrum keeps, inverts or re-draws each material's brightness.
    # Evenly spaced levels, shuffled, keep neighbouring materials distinguishable in the visible;
    # a re-drawn material takes another material's level so it stays on the same scale.
    levels = np.linspace(0.08, 0.92, m)
    a = np.clip(rng.permutation(levels) + rng.normal(0.0, 0.03, m), 0.0, 1.0)
    u = rng.random(m)
    reversed_ = u < cfg.reversal_prob
    remapped = (~reversed_) & (u < cfg.reversal_prob + cfg.remap_prob)
    b = np.where(reversed_, 1.0 - a, np.where(remapped, rng.permutation(levels), a))
    b = np.clip(b + rng.normal(0.0, cfg.reflectance_jitter, m), 0.0, 1.0)

    # Per-material texture: each material mixes a fine and a coarse grain with its own amplitude;
    # the other spectrum's texture is only partly correlated (sign follows the reversal).
    mix = rng.random(m).astype(np.float32)[labels]
    tex_v = mix * _noise_texture(rng, size, 0.7) + (1 - mix) * _noise_texture(rng, size, 2.0)
    indep = mix * _noise_texture(rng, size, 0.7) + (1 - mix) * _noise_texture(rng, size, 2.0)
    sign = np.where(reversed_, -1.0, 1.0).astype(np.float32)[labels]
    rho = cfg.texture_shared
    tex_o = rho * sign * tex_v + np.sqrt(1.0 - rho * rho) * indep
    amp_v = (cfg.texture_vis * rng.uniform(0.3, 1.7, m)).astype(np.float32)[labels]
    amp_o = (cfg.texture_other * rng.uniform(0.3, 1.7, m)).astype(np.float32)[labels]
    vis = a.astype(np.float32)[labels] + amp_v * tex_v
    other = b.astype(np.float32)[labels] + amp_o * tex_o

    # Smooth illumination (shading, vignetting, heat diffusion), partly shared.
    shared = _smooth_field(rng, size, 2)
    own_v, own_o = _smooth_field(rng, size, 3), _smooth_field(rng, size, 3)
    s = cfg.illumination_shared
    vis = vis * np.exp(cfg.illumination * (s * shared + np.sqrt(1 - s * s) * own_v))
    other = other * np.exp(cfg.illumination * (s * shared + np.sqrt(1 - s * s) * own_o))

    # Tone curves: gamma in the visible; a partly folding (non-monotonic) curve in the other.
    vis = _stretch(vis) ** rng.uniform(cfg.gamma_min, cfg.gamma_max)
    k = rng.uniform(1.2, 2.2)
    phase = rng.uniform(0.0, np.pi)
    folded = 0.5 - 0.5 * np.cos(np.pi * k * _stretch(other) + phase)
    other = _stretch((1 - cfg.fold) * _stretch(other) + cfg.fold * folded)

    # Optics and sensor.
    if cfg.blur_vis > 0:
        vis = cv2.GaussianBlur(vis.astype(np.float32), (0, 0), cfg.blur_vis)
    if cfg.blur_other > 0:
        other = cv2.GaussianBlur(other.astype(np.float32), (0, 0), cfg.blur_other)
    vis = vis + rng.normal(0.0, cfg.noise_vis, vis.shape)
    other = other + rng.normal(0.0, cfg.noise_other, other.shape)
    # Whole-image polarity, like a thermal camera's white-hot / black-hot setting or the day-night
    # inversion of LWIR contrast: edges keep their place and strength but change sign.
    if rng.random() < cfg.polarity_flip_prob:
        other = 1.0 - other
    return _to_uint8(vis), _to_uint8(other)


# ----------------------------------------------------------------------------------- building


def _protocol(cfg: SyntheticConfig, split: str) -> str:
    balance = (
        "positives only"
        if split == TRAIN_SPLIT
        else f"balanced: one positive and one negative per keypoint, negatives pair points of the "
        f"same image pair >= {cfg.min_negative_distance} px apart"
    )
    return (
        f"synthetic cross-spectral image pairs {cfg.image_size}x{cfg.image_size}; "
        f"{cfg.keypoint_method} keypoints on the visible image, <= {cfg.keypoints_per_image} per "
        f"image pair, >= {cfg.min_spacing} px apart; 64x64 patches rows y-32..y+31, cols x-32..x+31; "
        f"positives at the same (x, y) in both images; {balance}; split by image pair"
    )


def build_split(cfg: SyntheticConfig, split: str, progress: bool = False) -> tuple[np.ndarray, ...]:
    """Generate one split in memory.

    Returns:
        (left uint8 [N,64,64], right uint8 [N,64,64], label uint8 [N], image int64 [N]) where
        ``image`` is the index of the image pair each pair was cut from.
    """
    from tqdm import tqdm

    positives_only = split == TRAIN_SPLIT
    lefts, rights, labels, images = [], [], [], []
    n_images = cfg.images[split]
    for index in tqdm(range(n_images), desc=f"synthetic {split}", unit="img", disable=not progress):
        r_render, r_kp, r_pairs = pair_rngs(cfg.seed, split, index)
        vis, other = render_pair(r_render, cfg.image_size, cfg)
        xy = detect_keypoints(
            vis, method=cfg.keypoint_method, max_points=cfg.keypoints_per_image, rng=r_kp,
            min_spacing=cfg.min_spacing,
        )
        left, right, label = make_pairs(
            vis, other, xy, rng=r_pairs, positives_only=positives_only,
            min_negative_distance=cfg.min_negative_distance,
        )
        lefts.append(left)
        rights.append(right)
        labels.append(label)
        images.append(np.full(len(label), index, dtype=np.int64))
    empty = np.empty((0, PATCH_SIZE, PATCH_SIZE), np.uint8)
    return (
        np.concatenate(lefts) if lefts else empty,
        np.concatenate(rights) if rights else empty,
        np.concatenate(labels) if labels else np.empty(0, np.uint8),
        np.concatenate(images) if images else np.empty(0, np.int64),
    )


def build_synthetic_dataset(out_dir: str | os.PathLike, cfg: SyntheticConfig, progress: bool = True) -> dict:
    """Write ``out_dir/{split}.h5`` for every split in ``cfg.images`` and ``out_dir/summary.json``.

    Each file is written atomically (see :func:`kglnet.data.pairfile.write_pairs`) with the
    attributes ``source="synthetic"``, ``protocol``, ``seed``, ``split``, ``images`` (image pairs in
    the split), ``inputs_sha256={"config": sha256 of the canonical config JSON}`` and ``config``.

    Returns:
        The summary: ``{"source", "config", "config_sha256", "splits": {split: {"file", "sha256",
        "pairs", "positives", "negatives", "images"}}}``; it holds no timestamps, so it is a pure
        function of the config.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    digest = config_sha256(cfg)
    config = cfg.to_dict()
    splits: dict[str, dict] = {}
    for split in cfg.images:
        left, right, label, _ = build_split(cfg, split, progress=progress)
        if len(label) == 0:
            raise ValueError(f"split {split!r} produced no pairs; raise images[{split!r}]")
        path = out / f"{split}.h5"
        write_pairs(
            path, left, right, label,
            attrs={
                "source": "synthetic",
                "protocol": _protocol(cfg, split),
                "seed": int(cfg.seed),
                "split": split,
                "images": int(cfg.images[split]),
                "inputs_sha256": {"config": digest},
                "config": config,
            },
        )
        positives = int(label.sum())
        splits[split] = {
            "file": path.name,
            "sha256": sha256_file(path),
            "pairs": int(len(label)),
            "positives": positives,
            "negatives": int(len(label)) - positives,
            "images": int(cfg.images[split]),
        }
    summary = {"source": "synthetic", "config": config, "config_sha256": digest, "splits": splits}
    atomic_write_json(out / "summary.json", summary)
    return summary
