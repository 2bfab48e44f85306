"""The three real "mini" datasets mirroring the paper's (SPEC section 8), built from real imagery.

==========  ===================================  ===========================================
name        source folder (``<data>/<source>``)  splits
==========  ===================================  ===========================================
visnir      ``visnir-registration``              train + val from ``country`` (52 pixel-aligned
                                                 EPFL RGB-NIR pairs); one test file per other
                                                 category: ``field.h5``, ``forest.h5``, ...
vislwir     ``roadscene``                        221 RoadScene visible/LWIR pairs, seeded split
                                                 into train / val / test
os          ``3mos``                             240 optical/SAR tile pairs cut from the 24 3MOS
                                                 figures, seeded split into train / val / test
vislwir_    ``roadscene``                        vislwir's 221 image pairs, split **by patch
patchsplit                                       pair** (published protocol): train / val /
                                                 test all come from every image pair
os_         ``3mos``                             os's 240 tile pairs, split by patch pair
patchsplit                                       likewise
==========  ===================================  ===========================================

Protocol (the paper's patch datasets): keypoints (FAST by default, SIFT optional) detected on the
visible image converted to gray; a positive is the 64x64 patch at the same (x, y) in both images;
val and test are balanced, one positive and one negative per keypoint, the negative pairing the
point with a different keypoint of the same image pair at least one patch width (64 px) away;
train files hold positives only (the training loss makes its negatives in the batch).

Every split of ``visnir``, ``vislwir`` and ``os`` is made **by image pair**: no image pair (for
``os``: no tile pair) gives patches to two splits, so test scores measure generalisation to unseen
images, unlike the published VIS-LWIR and OS patch splits, which split patch pairs of the same
images.

The ``*_patchsplit`` variants follow the published protocol instead, labelled so in every file's
``protocol`` attribute and in ``summary.json`` (:data:`PATCH_SPLIT_LABEL`): each image pair's
keypoints are detected once (``keypoints_per_image`` of them at most, a pool shared by all splits;
``eval_keypoints_per_image`` plays no part), then a seeded permutation assigns
``round(test_fraction * K)`` of its K keypoints to test, ``round((test_fraction + val_fraction) *
K)`` minus those to val and the rest to train. A keypoint location is in exactly one split and a
val/test negative pairs two keypoints of the same split, so no patch of a test pair is a train
patch; patches of different splits do overlap in pixels (keypoints are only ``min_spacing`` apart),
as in the published splits. Every split lists every image pair. With the default pool equal to the
image-split train budget, train holds about as many positives as in ``vislwir`` / ``os`` (the same
65 % share, of keypoints instead of image pairs).

Determinism: the split is a seeded permutation of the sorted image-pair ids, and each image pair
draws its keypoint subset and negative partners (patch split: also its keypoint assignment and one
negatives generator per split) from generators derived from ``(seed, its id)``, so its pairs
depend neither on processing order nor on the size of the other splits.

Atomicity: all inputs are checked and every split is built in memory before anything is written;
any existing ``summary.json`` is removed first and written last, each ``.h5`` file is written
atomically, so ``summary.json`` exists only beside a complete, consistent set of files.

The source folder is assumed verified against its manifest by the module that fetched it; this
module still fails with a ``ValueError`` naming the file on every defect it can see (missing
folder or partner file, unreadable or truncated image, wrong affine shape, image smaller than a
patch, figure without the expected 2 x 10 tiles), because a silently skipped image would change
the dataset without anyone noticing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import cv2
import numpy as np

from kglnet.data.keypoints import KEYPOINT_METHODS, detect_keypoints, make_pairs
from kglnet.data.sources import SOURCES
from kglnet.data.pairfile import PATCH_SIZE, write_pairs
from kglnet.utils.io import atomic_write_json, sha256_file
from kglnet.utils.config import dataclass_from_dict

__all__ = [
    "MiniConfig",
    "MiniDataset",
    "MINI_DATASETS",
    "DEFAULT_KEYPOINTS",
    "PATCH_SPLIT_LABEL",
    "VISNIR_ROOT",
    "VISNIR_TRAIN_CATEGORY",
    "VISNIR_TEST_CATEGORIES",
    "test_sets",
    "build_mini",
    "read_gray",
    "unwarp",
    "find_tiles",
]

VISNIR_ROOT = "VIS-NIR registration dataset"
VISNIR_TRAIN_CATEGORY = "country"
VISNIR_TEST_CATEGORIES = (
    "field", "forest", "indoor", "mountain", "oldbuilding", "street", "urban", "water",
)
ROADSCENE_VISIBLE = "crop_LR_visible"
ROADSCENE_LWIR = "cropinfrared"

TRAIN = "train"
VAL = "val"
TEST = "test"
#: Negatives pair points at least one patch width apart (the paper's datasets).
MIN_NEGATIVE_DISTANCE = PATCH_SIZE
#: Pixels eroded from the un-warped NIR validity mask: bilinear interpolation blends the black
#: border into the first valid pixel, and JPEG ringing of the warped image reaches ~1-2 px inside.
MASK_ERODE_PX = 2
#: Gray level at or above which a figure pixel counts as white gutter (SPEC: gutters >= 250).
GUTTER_LEVEL = 250
#: Pixels trimmed from each side of a 3MOS tile: the figures were resampled, so the outermost
#: row/column of a tile is blended with the white gutter (values like 73, 150, 208 seen there).
TILE_TRIM_PX = 2
#: Largest difference in tile width/height tolerated within one figure: the resampled TerraSAR
#: figures have 316 or 317 px wide tiles; all tiles of a figure are cropped to the common size.
TILE_SIZE_TOLERANCE_PX = 2
OS_GRID = (2, 10)  # rows (optical, SAR) x columns (pairs) of a 3MOS figure
#: How the ``*_patchsplit`` datasets are labelled, in each file's ``protocol`` and in the summary.
PATCH_SPLIT_LABEL = (
    "split by patch pair (published protocol): the same images appear in train, val and test"
)

#: Default keypoints per image pair, ``(train, val/test)``, sized so the whole mini configuration
#: trains in minutes on one GPU and a few epochs run on a CPU: visnir about 6.6k train positives
#: (44 country pairs x 150) and 1.6k pairs per test scene (20 x 40 x 2); vislwir about 5.2k train
#: positives (144 x 36) and 2.1k test pairs; os about 5k train positives (156 x 32) and 2.3k test
#: pairs. Val/test use fewer points per image: they need enough pairs for a stable FPR95, not more.
#: The patch-split variants have one pool per image pair shared by all splits (val/test budget
#: None), equal to the image split's train budget, so train is about as large: vislwir_patchsplit
#: about 5.1k train positives and 3.1k test pairs (221 x 23, 221 x 7 x 2), os_patchsplit about 5k
#: and 2.9k (240 x 21, 240 x 6 x 2).
DEFAULT_KEYPOINTS: dict[str, tuple[int, int | None]] = {
    "visnir": (150, 40),
    "vislwir": (36, 24),
    "os": (32, 24),
    "vislwir_patchsplit": (36, None),
    "os_patchsplit": (32, None),
}


# ---------------------------------------------------------------------------------------- config


@dataclass
class MiniConfig:
    """Everything that determines a mini dataset, given its (verified) source files.

    Attributes:
        seed: master seed of the split and of every image pair's keypoint subset and negatives.
        keypoint_method: "fast" or "sift", detected on the visible image converted to gray.
        keypoints_per_image: keypoints per image pair in the train split (patch-split datasets:
            per image pair for all splits together); None = the dataset's default
            (:data:`DEFAULT_KEYPOINTS`).
        eval_keypoints_per_image: keypoints per image pair in val and test splits; None = the
            dataset's default. Unused by the patch-split datasets (recorded as None there).
        val_fraction: share of the training image pairs held out for validation (visnir: of the
            52 country pairs; vislwir, os: of all pairs; patch-split datasets: of each image
            pair's keypoints).
        test_fraction: share of all image pairs used for test (vislwir and os only; visnir's test
            sets are fixed, the 8 non-country categories; patch-split datasets: share of each
            image pair's keypoints).
        min_spacing: minimum distance between keypoints of one image, pixels.
    """

    seed: int = 0
    keypoint_method: str = "fast"
    keypoints_per_image: int | None = None
    eval_keypoints_per_image: int | None = None
    val_fraction: float = 0.15
    test_fraction: float = 0.2
    min_spacing: int = 8

    def __post_init__(self) -> None:
        problems = []
        if self.keypoint_method not in KEYPOINT_METHODS:
            problems.append(
                f"keypoint_method must be one of {KEYPOINT_METHODS}, got {self.keypoint_method!r}"
            )
        for name in ("keypoints_per_image", "eval_keypoints_per_image"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
                problems.append(f"{name} must be None or an integer >= 1, got {value!r}")
        for name in ("val_fraction", "test_fraction"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                problems.append(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if self.val_fraction + self.test_fraction >= 1.0:
            problems.append("val_fraction + test_fraction must be < 1 (train needs image pairs)")
        if int(self.min_spacing) != self.min_spacing or self.min_spacing < 0:
            problems.append(f"min_spacing must be an integer >= 0, got {self.min_spacing!r}")
        if problems:
            raise ValueError("invalid MiniConfig: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, data: dict) -> "MiniConfig":
        """Build from a plain dict (e.g. parsed YAML); unknown keys are an error naming them."""
        return dataclass_from_dict(cls, data, "MiniConfig keys:")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def keypoints(self, name: str) -> tuple[int, int | None]:
        """``(train, val/test)`` keypoints per image pair for dataset ``name``, defaults filled in;
        for a patch-split dataset ``(pool shared by all splits, None)``."""
        train, evaluation = DEFAULT_KEYPOINTS[name]
        train = int(self.keypoints_per_image) if self.keypoints_per_image is not None else train
        if evaluation is None:
            return train, None
        return (
            train,
            int(self.eval_keypoints_per_image) if self.eval_keypoints_per_image is not None
            else evaluation,
        )


# ------------------------------------------------------------------------------------ image I/O


def _check_complete(path: Path, data: bytes) -> None:
    """Reject a truncated JPEG/PNG: OpenCV decodes a truncated JPEG with a mere warning (the
    missing rows come out gray), so a short download would otherwise pass as a valid image."""
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        if not data.rstrip(b"\x00\r\n\t ").endswith(b"\xff\xd9"):
            raise ValueError(f"{path}: truncated JPEG (no end-of-image marker)")
    elif suffix == ".png":
        if b"IEND" not in data[-32:]:
            raise ValueError(f"{path}: truncated PNG (no IEND chunk)")


def read_gray(path: str | Path, min_size: int = PATCH_SIZE) -> np.ndarray:
    """Read an image file as uint8 gray [H, W].

    Colour is converted with OpenCV's BGR->gray weights; an alpha channel is composited over white
    (the page colour of the 3MOS figures) rather than dropped, so a transparent pixel reads as
    gutter, not as whatever colour happens to be stored under it.

    Raises:
        ValueError: naming the file, if it is missing, unreadable, truncated, not 8-bit, or
            smaller than ``min_size`` in either dimension.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read image ({exc.strerror or exc})") from None
    _check_complete(path, data)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path}: unreadable image (OpenCV cannot decode it)")
    if image.dtype != np.uint8:
        raise ValueError(f"{path}: expected an 8-bit image, got dtype {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3:
        if image.shape[2] == 4:
            alpha = image[:, :, 3:4].astype(np.float32) / 255.0
            bgr = image[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
            image = cv2.cvtColor(np.clip(np.rint(bgr), 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY)
        elif image.shape[2] == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        else:
            raise ValueError(f"{path}: unsupported image with {image.shape[2]} channels")
    elif image.ndim != 2:
        raise ValueError(f"{path}: unsupported image shape {list(image.shape)}")
    h, w = image.shape
    if h < min_size or w < min_size:
        raise ValueError(
            f"{path}: image is {w}x{h} (WxH), smaller than a {min_size}x{min_size} patch"
        )
    return np.ascontiguousarray(image)


def _load_affine(path: Path) -> np.ndarray:
    """The 2x3 float affine of a VIS-NIR registration pair, checked."""
    try:
        matrix = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the affine matrix ({exc})") from None
    if matrix.shape != (2, 3):
        raise ValueError(f"{path}: affine matrix must have shape (2, 3), got {list(matrix.shape)}")
    if not np.issubdtype(matrix.dtype, np.number):
        raise ValueError(f"{path}: affine matrix must be numeric, got dtype {matrix.dtype}")
    matrix = matrix.astype(np.float64)
    if not np.isfinite(matrix).all() or abs(np.linalg.det(matrix[:, :2])) < 1e-6:
        raise ValueError(f"{path}: affine matrix is not finite and invertible: {matrix.tolist()}")
    return matrix


def sample_affine(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Bilinear resampling ``out[y, x] = image(matrix @ (x, y, 1))``, zero outside the image.

    ``cv2.warpAffine(image, inverse, ...)`` computes the same up to its fixed-point arithmetic
    (weights on a 1/32-pixel grid), and that arithmetic changed between OpenCV 4.13 and 5.0: the
    eight mini VIS-NIR test files (un-warped) built with each had other sha256 digests, while the
    train and validation files (no un-warp) were identical. Plain float64 element-wise NumPy (no
    reductions, no library kernels) gives the same bytes on every machine.

    Args:
        image: [H, W] or [H, W, C] array (any real dtype); channels share the coordinates.
        matrix: [2, 3] float affine taking output (x, y) to input coordinates.

    Returns:
        float64 array of the input's shape.
    """
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    sx = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]
    sy = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = sx - x0, sy - y0
    # One pixel of zeros around the image: indices clipped to [-1, w] (and [-1, h]) read a zero
    # for every neighbour outside, however far outside it lies.
    channels = image.shape[2:]
    padded = np.pad(image.astype(np.float64, copy=False), [(1, 1), (1, 1)] + [(0, 0)] * len(channels))
    flat = padded.reshape((h + 2) * (w + 2), *channels)
    rows = [(np.clip(y0 + k, -1, h).astype(np.intp) + 1) * (w + 2) for k in (0, 1)]
    cols = [np.clip(x0 + k, -1, w).astype(np.intp) + 1 for k in (0, 1)]
    if channels:
        fx, fy = fx[..., None], fy[..., None]
    top = (1 - fx) * flat[rows[0] + cols[0]] + fx * flat[rows[0] + cols[1]]
    bottom = (1 - fx) * flat[rows[1] + cols[0]] + fx * flat[rows[1] + cols[1]]
    return (1 - fy) * top + fy * bottom


def _invert_affine(matrix: np.ndarray) -> np.ndarray:
    """[2, 3] inverse of an invertible [2, 3] affine, written out (no LAPACK: same bits everywhere)."""
    (a, b, c), (d, e, f) = matrix.astype(np.float64)
    det = a * e - b * d
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    return np.array([[ia, ib, -(ia * c + ib * f)], [id_, ie, -(id_ * c + ie * f)]])


def unwarp(
    nir: np.ndarray, matrix: np.ndarray, erode: int = MASK_ERODE_PX
) -> tuple[np.ndarray, np.ndarray]:
    """Undo ``nir = cv2.warpAffine(original, matrix, (w, h))``.

    Resamples with :func:`sample_affine`, not OpenCV, so the pair files are byte-identical
    whichever OpenCV a machine has.

    Returns:
        (original, mask): the un-warped uint8 image (same size) and bool [H, W], True where the
        un-warped pixel came from inside the warped image. The mask is obtained by sending an
        all-ones image through the same two warps (so it is exactly the area the data covers),
        thresholded at "fully valid" and eroded by ``erode`` pixels against interpolation and JPEG
        edges.
    """
    h, w = nir.shape
    inverse = _invert_affine(matrix)
    # Ones warped forward as the dataset warped the original (sampled at the inverse), then back
    # with the image, sharing its coordinates.
    forward_ones = sample_affine(np.ones((h, w)), inverse)
    both = sample_affine(np.stack([nir.astype(np.float64), forward_ones], axis=-1), matrix)
    original = np.clip(np.rint(both[..., 0]), 0, 255).astype(np.uint8)
    covered = both[..., 1]
    mask = covered >= 0.999
    if erode > 0:
        kernel = np.ones((2 * erode + 1, 2 * erode + 1), np.uint8)
        mask = cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT,
                         borderValue=0).astype(bool)
    return original, mask


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges of the maximal runs of False in a 1-D bool array."""
    padded = np.concatenate([[True], flags.astype(bool), [True]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def find_tiles(
    gray: np.ndarray, name: str = "figure", grid: tuple[int, int] = OS_GRID
) -> list[list[tuple[int, int, int, int]]]:
    """Locate the tiles of a figure from its white gutters.

    A row (column) whose pixels are all >= :data:`GUTTER_LEVEL` over the whole figure separates
    tiles; the maximal runs of other rows (columns) are the tile extents. Projections over the full
    figure, not per tile row, are used so a bright edge in one tile cannot split it, and the
    optical and SAR tiles of a column get the same x-range by construction.

    Returns:
        ``boxes[r][c] = (y0, y1, x0, x1)`` (half-open) for ``grid = (rows, cols)``.

    Raises:
        ValueError: naming ``name`` unless exactly ``rows x cols`` tiles are found whose heights
            and widths agree within :data:`TILE_SIZE_TOLERANCE_PX`.
    """
    white = gray >= GUTTER_LEVEL
    row_runs = _runs(white.all(axis=1))
    col_runs = _runs(white.all(axis=0))
    rows, cols = grid
    if len(row_runs) != rows or len(col_runs) != cols:
        raise ValueError(
            f"{name}: found {len(row_runs)} rows x {len(col_runs)} columns of tiles between white "
            f"gutters, expected {rows} x {cols}"
        )
    heights = [b - a for a, b in row_runs]
    widths = [b - a for a, b in col_runs]
    spread = max(max(heights) - min(heights), max(widths) - min(widths))
    if spread > TILE_SIZE_TOLERANCE_PX:
        raise ValueError(
            f"{name}: tiles differ in size (heights {sorted(set(heights))}, widths "
            f"{sorted(set(widths))}); expected equal-size tiles"
        )
    return [[(y0, y1, x0, x1) for x0, x1 in col_runs] for y0, y1 in row_runs]


# ------------------------------------------------------------------------------------ planning


@dataclass
class _ImagePair:
    """One image pair of a source: an id unique within the dataset, its scene, its input files and
    a loader returning ``(visible gray, other gray, valid mask or None)``."""

    id: str
    scene: str
    files: list[Path]
    load: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray | None]]


class _Plan(NamedTuple):
    """What a dataset builder returns: split name -> image pairs, a protocol phrase per split."""

    splits: dict[str, list[_ImagePair]]
    describe: Callable[[str], str]


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise ValueError(f"{path}: missing {what} folder")
    return path


def _split_ids(
    ids: list[str], fractions: dict[str, float], seed: int, tag: str
) -> dict[str, list[str]]:
    """Seeded split of sorted ids: each named split takes ``round(fraction * n)`` ids (at least 1
    when its fraction is > 0), the rest go to train. Sorted input makes it independent of the
    file system's listing order."""
    ids = sorted(ids)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(tag.encode())]))
    order = [ids[i] for i in rng.permutation(len(ids))]
    out: dict[str, list[str]] = {}
    start = 0
    for split, fraction in fractions.items():
        count = max(1, int(round(fraction * len(ids)))) if fraction > 0 else 0
        out[split] = sorted(order[start : start + count])
        start += count
    out[TRAIN] = sorted(order[start:])
    if not out[TRAIN]:
        raise ValueError(
            f"{tag}: {len(ids)} image pairs leave none for train with fractions {fractions}"
        )
    return out


def _visnir_pairs(folder: Path, category: str, warped: bool) -> list[_ImagePair]:
    """Check the files of one category and return its image pairs (loaded lazily)."""
    _require_dir(folder, f"VIS-NIR category {category!r}")
    rgbs = sorted(folder.glob("*_rgb.jpg"))
    if not rgbs:
        raise ValueError(f"{folder}: no NNNN_rgb.jpg images in category {category!r}")
    stems = {p.name[: -len("_rgb.jpg")] for p in rgbs}
    for nir in sorted(folder.glob("*_nir.jpg")):
        if nir.name[: -len("_nir.jpg")] not in stems:
            raise ValueError(f"{nir}: NIR image without its RGB partner {nir.name[:-8]}_rgb.jpg")
    pairs = []
    for rgb in rgbs:
        stem = rgb.name[: -len("_rgb.jpg")]
        nir = folder / f"{stem}_nir.jpg"
        if not nir.is_file():
            raise ValueError(f"{rgb}: RGB image without its NIR partner {nir.name}")
        files = [rgb, nir]
        matrix = None
        if warped:
            npy = folder / f"{stem}_nir.npy"
            if not npy.is_file():
                raise ValueError(f"{rgb}: warped pair without its affine matrix {npy.name}")
            matrix = _load_affine(npy)  # checked now: a bad matrix fails before any work
            files.append(npy)

        def load(rgb=rgb, nir=nir, matrix=matrix):
            vis = read_gray(rgb)
            other = read_gray(nir)
            if other.shape != vis.shape:
                raise ValueError(
                    f"{nir}: size {other.shape[1]}x{other.shape[0]} differs from its RGB partner "
                    f"{rgb.name} ({vis.shape[1]}x{vis.shape[0]})"
                )
            if matrix is None:
                return vis, other, None
            other, mask = unwarp(other, matrix)
            return vis, other, mask

        pairs.append(_ImagePair(f"{category}/{stem}", category, files, load))
    return pairs


def _plan_visnir(source_dir: Path, cfg: MiniConfig) -> _Plan:
    root = _require_dir(source_dir / VISNIR_ROOT, "VIS-NIR registration dataset")
    train_pairs = _visnir_pairs(root / VISNIR_TRAIN_CATEGORY, VISNIR_TRAIN_CATEGORY, warped=False)
    by_id = {p.id: p for p in train_pairs}
    split = _split_ids(list(by_id), {VAL: cfg.val_fraction}, cfg.seed, "visnir")
    splits = {TRAIN: [by_id[i] for i in split[TRAIN]], VAL: [by_id[i] for i in split[VAL]]}
    for category in VISNIR_TEST_CATEGORIES:
        splits[category] = _visnir_pairs(root / category, category, warped=True)

    def describe(name: str) -> str:
        if name in (TRAIN, VAL):
            return (f"VIS-NIR registration dataset (EPFL RGB-NIR scenes), category country "
                    f"(pixel-aligned), {name} share of its image pairs")
        return (f"VIS-NIR registration dataset (EPFL RGB-NIR scenes), test category {name}: NIR "
                f"un-warped with the inverse of the affine in NNNN_nir.npy, patches inside the "
                f"valid area only (mask eroded {MASK_ERODE_PX} px)")

    return _Plan(splits, describe)


def _roadscene_pairs(source_dir: Path) -> dict[str, _ImagePair]:
    """The RoadScene visible / LWIR image pairs by id (``FLIR_NNNNN``), checked, loaded lazily."""
    vis_dir = _require_dir(source_dir / ROADSCENE_VISIBLE, "RoadScene visible")
    ir_dir = _require_dir(source_dir / ROADSCENE_LWIR, "RoadScene infrared")
    # Only FLIR_*.jpg: the visible folder also holds a Windows Thumbs.db.
    vis = {p.name: p for p in vis_dir.glob("FLIR_*.jpg")}
    ir = {p.name: p for p in ir_dir.glob("FLIR_*.jpg")}
    for name in sorted(set(vis) ^ set(ir)):
        lone = vis.get(name) or ir[name]
        other = ir_dir if name in vis else vis_dir
        raise ValueError(f"{lone}: no partner {name} in {other}")
    if not vis:
        raise ValueError(f"{vis_dir}: no FLIR_*.jpg images")

    def make(name: str) -> _ImagePair:
        v, i = vis[name], ir[name]

        def load():
            a, b = read_gray(v), read_gray(i)
            if a.shape != b.shape:
                raise ValueError(
                    f"{i}: size {b.shape[1]}x{b.shape[0]} differs from its visible partner {v} "
                    f"({a.shape[1]}x{a.shape[0]})"
                )
            return a, b, None

        return _ImagePair(Path(name).stem, "roadscene", [v, i], load)

    return {Path(n).stem: make(n) for n in vis}


def _os_pairs(source_dir: Path) -> dict[str, _ImagePair]:
    """The 3MOS optical / SAR tile pairs by id (``<figure stem>/<column>``), cut from figures."""
    _require_dir(source_dir, "3MOS")
    figures = sorted(source_dir.glob("*.png"))
    if not figures:
        raise ValueError(f"{source_dir}: no <satellite>_<scene>.png figures")
    pairs: dict[str, _ImagePair] = {}
    for figure in figures:
        gray = read_gray(figure)
        boxes = find_tiles(gray, str(figure))
        # Common size per figure (resampled figures have tiles 1 px wider than others), minus the
        # blended edge on each side.
        th = min(y1 - y0 for y0, y1, _, _ in (row[0] for row in boxes)) - 2 * TILE_TRIM_PX
        tw = min(x1 - x0 for _, _, x0, x1 in boxes[0]) - 2 * TILE_TRIM_PX
        if th < PATCH_SIZE or tw < PATCH_SIZE:
            raise ValueError(
                f"{figure}: tiles are {tw}x{th} (WxH) after trimming, smaller than a "
                f"{PATCH_SIZE}x{PATCH_SIZE} patch"
            )
        for col in range(len(boxes[0])):
            tiles = []
            for row in range(2):
                y0, _, x0, _ = boxes[row][col]
                y0, x0 = y0 + TILE_TRIM_PX, x0 + TILE_TRIM_PX
                tiles.append(np.ascontiguousarray(gray[y0 : y0 + th, x0 : x0 + tw]))
            optical, sar = tiles

            def load(optical=optical, sar=sar):
                return optical, sar, None

            pid = f"{figure.stem}/{col:02d}"
            pairs[pid] = _ImagePair(pid, figure.stem, [figure], load)
    return pairs


class MiniDataset(NamedTuple):
    """A mini dataset: its source folder name, its planner, its test set (file) names and whether
    it is split by patch pair (published protocol) rather than by image pair."""

    source: str
    builder: Callable[[Path, MiniConfig], _Plan]
    test_sets: tuple[str, ...]
    by_patch: bool = False


def _train_val_test(
    source: str, collect: Callable[[Path], dict[str, _ImagePair]], tag: str, phrase: str,
    unit: str, by_patch: bool = False,
) -> MiniDataset:
    """A dataset with one ``test`` split over the image pairs that ``collect`` finds.

    By image pair: a seeded split of the pair ids (seeded by ``tag``). By patch pair: every split
    lists every image pair; :func:`_build_patch_splits` then splits each pair's keypoints.
    ``phrase`` describes the source and ``unit`` names its image pairs ("tile pair" for os).
    """

    def plan(source_dir: Path, cfg: MiniConfig) -> _Plan:
        pairs = collect(source_dir)
        if by_patch:
            every = [pairs[i] for i in sorted(pairs)]
            splits = {s: every for s in (TRAIN, VAL, TEST)}
        else:
            split = _split_ids(list(pairs), {TEST: cfg.test_fraction, VAL: cfg.val_fraction},
                               cfg.seed, tag)
            splits = {s: [pairs[i] for i in split[s]] for s in (TRAIN, VAL, TEST)}

        def describe(name: str) -> str:
            if by_patch:
                return f"{phrase}, {name} share of every {unit}'s keypoints"
            return f"{phrase}, {name} share, split by {unit}"

        return _Plan(splits, describe)

    return MiniDataset(source, plan, (TEST,), by_patch)


ROADSCENE_PHRASE = "RoadScene aligned visible / LWIR (FLIR ADAS) image pairs"
OS_PHRASE = (
    f"3MOS optical / SAR tile pairs cut from the figures' 2x10 grids (found from the white "
    f"gutters, {TILE_TRIM_PX} px trimmed per side)"
)

MINI_DATASETS: dict[str, MiniDataset] = {
    "visnir": MiniDataset("visnir-registration", _plan_visnir, VISNIR_TEST_CATEGORIES),
    "vislwir": _train_val_test("roadscene", _roadscene_pairs, "vislwir", ROADSCENE_PHRASE,
                               "image pair"),
    "os": _train_val_test("3mos", _os_pairs, "os", OS_PHRASE, "tile pair"),
    # The published protocol, on the same sources and image pairs (labelled PATCH_SPLIT_LABEL).
    "vislwir_patchsplit": _train_val_test("roadscene", _roadscene_pairs, "vislwir",
                                          ROADSCENE_PHRASE, "image pair", by_patch=True),
    "os_patchsplit": _train_val_test("3mos", _os_pairs, "os", OS_PHRASE, "tile pair",
                                     by_patch=True),
}


def _dataset(name: str) -> MiniDataset:
    if name not in MINI_DATASETS:
        raise ValueError(f"unknown mini dataset {name!r}; choose from {sorted(MINI_DATASETS)}")
    return MINI_DATASETS[name]


def test_sets(name: str) -> list[str]:
    """Test set names of a mini dataset (each is written to ``<name>.h5``): visnir: the 8 scene
    categories; the others: ``["test"]``."""
    return list(_dataset(name).test_sets)


# Not a pytest test despite the name.
test_sets.__test__ = False  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------- building


def _pair_rngs(seed: int, pair_id: str, count: int = 2) -> list[np.random.Generator]:
    """Generators of one image pair, a pure function of the seed and the pair's id, so a pair's
    patches do not depend on which split or order it is in: [0] keypoint subset, [1] negatives +
    shuffle (patch split: keypoint assignment), then (patch split) one negatives + shuffle
    generator per split. The first ones do not depend on ``count``."""
    children = np.random.SeedSequence([int(seed), zlib.crc32(pair_id.encode("utf-8"))]).spawn(count)
    return [np.random.default_rng(child) for child in children]


class _SplitPairs:
    """Collects the patch pairs of one split, image pair by image pair."""

    def __init__(self, split: str, pairs: list[_ImagePair]) -> None:
        self.split = split
        self.n_image_pairs = len(pairs)
        self.scene_names = sorted({p.scene for p in pairs})
        self.scene_index = {s: i for i, s in enumerate(self.scene_names)}
        self.lefts: list[np.ndarray] = []
        self.rights: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.scenes: list[np.ndarray] = []
        self.empty = 0

    def add(self, pair: _ImagePair, vis: np.ndarray, other: np.ndarray, xy: np.ndarray,
            rng: np.random.Generator) -> None:
        """Pairs of keypoints ``xy`` of ``pair``: positives only for train, else balanced."""
        if len(xy) == 0:
            self.empty += 1
            return
        left, right, lab = make_pairs(vis, other, xy, rng=rng, positives_only=self.split == TRAIN,
                                      min_negative_distance=MIN_NEGATIVE_DISTANCE)
        if len(lab) == 0:
            self.empty += 1
            return
        self.lefts.append(left)
        self.rights.append(right)
        self.labels.append(lab)
        self.scenes.append(np.full(len(lab), self.scene_index[pair.scene], np.int64))

    def result(self, label: str) -> dict[str, Any]:
        if not self.labels:
            raise ValueError(
                f"{label} split {self.split!r}: no patch pairs from its {self.n_image_pairs} image "
                "pairs (no usable keypoints)"
            )
        return {
            "left": np.concatenate(self.lefts),
            "right": np.concatenate(self.rights),
            "label": np.concatenate(self.labels),
            "scene": np.concatenate(self.scenes),
            "scene_names": self.scene_names,
            "empty": self.empty,
        }


def _detect(vis: np.ndarray, mask: np.ndarray | None, cfg: MiniConfig, keypoints: int,
            rng: np.random.Generator) -> np.ndarray:
    return detect_keypoints(vis, method=cfg.keypoint_method, max_points=keypoints, rng=rng,
                            mask=mask, min_spacing=cfg.min_spacing)


def _build_split(
    pairs: list[_ImagePair], split: str, cfg: MiniConfig, keypoints: int, progress: bool,
    label: str,
) -> dict[str, Any]:
    """One split of a dataset split by image pair: ``keypoints`` per image pair, all its own."""
    from tqdm import tqdm

    out = _SplitPairs(split, pairs)
    for pair in tqdm(pairs, desc=f"{label} {split}", unit="img", disable=not progress,
                     leave=False):
        vis, other, mask = pair.load()
        r_kp, r_pairs = _pair_rngs(cfg.seed, pair.id)
        out.add(pair, vis, other, _detect(vis, mask, cfg, keypoints, r_kp), r_pairs)
    return out.result(label)


def _assign_keypoints(
    count: int, cfg: MiniConfig, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Patch split of one image pair's ``count`` keypoints: a seeded permutation gives
    ``round(test_fraction * count)`` to test, ``round((test_fraction + val_fraction) * count)``
    minus those to val (cumulative rounding: the shares stay as close to the fractions as
    possible) and the rest to train. Returns split -> sorted keypoint indices."""
    n_test = int(round(cfg.test_fraction * count))
    n_eval = int(round((cfg.test_fraction + cfg.val_fraction) * count))
    order = rng.permutation(count)
    return {
        TEST: np.sort(order[:n_test]),
        VAL: np.sort(order[n_test:n_eval]),
        TRAIN: np.sort(order[n_eval:]),
    }


def _build_patch_splits(
    pairs: list[_ImagePair], cfg: MiniConfig, keypoints: int, progress: bool, label: str,
) -> dict[str, dict[str, Any]]:
    """All splits of a dataset split by patch pair (published protocol), in one pass: each image
    pair's keypoints (at most ``keypoints``) are detected once and divided among train, val and
    test by :func:`_assign_keypoints`; val/test negatives pair keypoints of the same split."""
    from tqdm import tqdm

    order = (TRAIN, VAL, TEST)
    out = {split: _SplitPairs(split, pairs) for split in order}
    for pair in tqdm(pairs, desc=f"{label} (all splits)", unit="img", disable=not progress,
                     leave=False):
        vis, other, mask = pair.load()
        r_kp, r_assign, *r_splits = _pair_rngs(cfg.seed, pair.id, 2 + len(order))
        xy = _detect(vis, mask, cfg, keypoints, r_kp)
        assigned = _assign_keypoints(len(xy), cfg, r_assign)
        for split, rng in zip(order, r_splits):
            out[split].add(pair, vis, other, xy[assigned[split]], rng)
    return {split: out[split].result(label) for split in order}


def _inputs_digest(files: list[Path], root: Path, cache: dict[Path, str]) -> str:
    """sha256 over the sorted ``relative path<TAB>sha256`` lines of the input files."""
    lines = []
    for path in sorted(set(files)):
        if path not in cache:
            cache[path] = sha256_file(path)
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            rel = path.as_posix()
        lines.append(f"{rel}\t{cache[path]}\n")
    return hashlib.sha256("".join(sorted(lines)).encode("utf-8")).hexdigest()


def _protocol(base: str, cfg: MiniConfig, split: str, keypoints: int, by_patch: bool) -> str:
    same = " and the same split" if by_patch else ""
    balance = (
        "positives only"
        if split == TRAIN
        else "balanced: one positive and one negative per keypoint, negatives pair a point with a "
        f"different keypoint of the same image pair{same} >= {MIN_NEGATIVE_DISTANCE} px away"
    )
    budget = (
        f"{keypoints} per image pair for all splits together, each keypoint assigned to one "
        f"split by a seeded permutation (test {cfg.test_fraction:g}, val {cfg.val_fraction:g}, the "
        f"rest train)"
        if by_patch
        else f"{keypoints} per image pair"
    )
    return (
        f"{base}; {cfg.keypoint_method} keypoints on the visible image converted to gray, <= "
        f"{budget}, >= {cfg.min_spacing} px apart; {PATCH_SIZE}x{PATCH_SIZE} "
        f"patches rows y-32..y+31, cols x-32..x+31; positives at the same (x, y) in both images; "
        f"{balance}; {PATCH_SPLIT_LABEL if by_patch else 'split by image pair'}, seed {cfg.seed}"
    )


def _count_line(name: str, splits: dict[str, dict], seconds: float) -> str:
    cells = [
        f"{s} {e['pairs']} (+{e['positives']}/-{e['negatives']}, {e['image_pairs']} img)"
        for s, e in splits.items()
    ]
    return f"{name}: " + " | ".join(cells) + f" | {seconds:.1f} s"


def build_mini(
    name: str, source_dir: str | Path, out_dir: str | Path, cfg: MiniConfig, progress: bool = True,
) -> dict:
    """Build mini dataset ``name`` from a verified source folder.

    Writes ``out_dir/train.h5``, ``out_dir/val.h5`` and ``out_dir/<test set>.h5`` for each of
    :func:`test_sets` ``(name)``, then ``out_dir/summary.json``. File attributes: ``source``
    (``"<source>@<commit7> (<repo>)"``), ``protocol``, ``seed``, ``split``, ``inputs_sha256 =
    {"images": sha256 of the sorted (path, sha256) list of the input files}``, ``input_files``
    (their count), ``dataset``, ``image_pairs`` (ids of the image pairs in the split) and
    ``config`` (with the keypoint counts resolved). Every file stores ``scene`` (visnir: the
    category; os: the figure ``<satellite>_<scene>``; vislwir: ``roadscene``).

    A patch-split dataset (``*_patchsplit``) lists every image pair in every split, says
    :data:`PATCH_SPLIT_LABEL` in each ``protocol`` and adds ``"split_protocol":
    PATCH_SPLIT_LABEL`` to the summary; its config records ``eval_keypoints_per_image`` as None.

    Args:
        name: a key of :data:`MINI_DATASETS` ("visnir", "vislwir", "os", "vislwir_patchsplit",
            "os_patchsplit").
        source_dir: folder laid out like ``<data>/<source>``, e.g. ``../shared/data/roadscene``.
        out_dir: output folder (created).
        cfg: the configuration.
        progress: show progress bars and print a one-line count table.

    Returns:
        The summary written to ``summary.json``: ``{"dataset", "source", "config",
        "test_sets", "splits": {split: {"file", "sha256", "pairs", "positives", "negatives",
        "image_pairs", "empty_image_pairs", "image_pair_ids", "scenes", "inputs_sha256",
        "input_files"}}}``. It holds no timestamps or machine paths: a pure function of the inputs
        and the config.

    Raises:
        ValueError: naming the file or folder, for any defect of the source; nothing is written.
    """
    dataset = _dataset(name)
    source_dir = Path(source_dir)
    out = Path(out_dir)
    start = time.perf_counter()
    train_kp, eval_kp = cfg.keypoints(name)
    config = cfg.to_dict()
    config.update(keypoints_per_image=train_kp, eval_keypoints_per_image=eval_kp)
    if name == "visnir":
        config["test_fraction"] = None  # fixed test categories: the fraction plays no part
    repo, commit = SOURCES[dataset.source].repo, SOURCES[dataset.source].commit
    source = f"{dataset.source}@{commit[:7]} ({repo})"

    plan = dataset.builder(source_dir, cfg)
    order = [TRAIN, VAL, *dataset.test_sets]
    if dataset.by_patch:
        built = _build_patch_splits(plan.splits[TRAIN], cfg, train_kp, progress, name)
    else:
        built = {}
        for split in order:
            kp = train_kp if split == TRAIN else eval_kp
            built[split] = _build_split(plan.splits[split], split, cfg, kp, progress, name)

    # Everything is in memory and valid: only now touch out_dir. The old summary goes first so an
    # interrupted write never leaves a summary describing a mix of old and new files.
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").unlink(missing_ok=True)
    sha_cache: dict[Path, str] = {}
    splits: dict[str, dict] = {}
    for split in order:
        data, pairs = built[split], plan.splits[split]
        kp = train_kp if split == TRAIN or dataset.by_patch else eval_kp
        files = [f for p in pairs for f in p.files]
        digest = _inputs_digest(files, source_dir, sha_cache)
        ids = [p.id for p in pairs]
        path = out / f"{split}.h5"
        write_pairs(
            path, data["left"], data["right"], data["label"],
            scene=data["scene"], scene_names=data["scene_names"],
            attrs={
                "source": source,
                "protocol": _protocol(plan.describe(split), cfg, split, kp, dataset.by_patch),
                "seed": int(cfg.seed),
                "split": split,
                "inputs_sha256": {"images": digest},
                "input_files": len(set(files)),
                "dataset": name,
                "image_pairs": ids,
                "config": config,
            },
        )
        positives = int(np.count_nonzero(data["label"]))
        splits[split] = {
            "file": path.name,
            "sha256": sha256_file(path),
            "pairs": int(len(data["label"])),
            "positives": positives,
            "negatives": int(len(data["label"])) - positives,
            "image_pairs": len(ids),
            "empty_image_pairs": int(data["empty"]),
            "image_pair_ids": ids,
            "scenes": data["scene_names"],
            "inputs_sha256": {"images": digest},
            "input_files": len(set(files)),
        }
    summary = {
        "dataset": name,
        "source": source,
        "config": config,
        "test_sets": list(dataset.test_sets),
        "splits": splits,
    }
    if dataset.by_patch:
        summary["split_protocol"] = PATCH_SPLIT_LABEL
    atomic_write_json(out / "summary.json", summary)
    if progress:
        print(_count_line(name, splits, time.perf_counter() - start), file=sys.stdout, flush=True)
    return summary
