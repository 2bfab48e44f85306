"""Converters from the paper's published dataset forms (SPEC section 7) into the pair-file contract.

The datasets cannot be downloaded on this project's machines: the user points a converter at a
local copy. Each converter

* checks its input completely *before* writing anything and raises :class:`ConversionError`
  (a ``ValueError``) whose message names the offending file, the line number for list/CSV/keypoint
  files, and the problem;
* writes the output with :func:`kglnet.data.pairfile.write_pairs`, which is atomic: on any error no
  output (and no temporary file) remains and an existing output file is left untouched;
* records ``inputs_sha256`` (name -> sha256) of every input file it used;
* returns ``{"pairs": N, "positives": P, "negatives": N - P, "out": str(out_path)}``.

Conventions shared by all converters:

* ``left`` is the visible / optical patch, ``right`` the other spectrum (NIR, LWIR, SAR).
* The patch of point (x, y) is rows ``y-32 .. y+31`` and columns ``x-32 .. x+31`` (0-based) of the
  grayscale image (:func:`kglnet.data.keypoints.cut_patches`), so a point is usable only when
  ``32 <= x <= W-32`` and ``32 <= y <= H-32``; any other point is an error, never clipped or padded.
* Images are decoded with ``cv2.IMREAD_UNCHANGED`` (so EXIF orientation is NOT applied: the
  published coordinates refer to the stored pixel grid) and colour images are converted with
  ``cv2.COLOR_BGR2GRAY`` (``COLOR_BGRA2GRAY`` for 4 channels). Only 8-bit images are accepted.
* Each image file is read once (its bytes are both hashed and decoded) and decoded once, however
  many lines refer to it; only one decoded image is held in memory at a time.
* Lines holding only whitespace are skipped everywhere (they keep their line numbers in messages).
  Text files are read as UTF-8; a leading byte-order mark is ignored.
* When a file has several problems, the first one found is reported: file-level and per-line
  problems in line order, then points outside their image (per image, in order of first use).
"""

from __future__ import annotations

import csv
import hashlib
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np

from kglnet.data.keypoints import HALF, cut_patches
from kglnet.data.pairfile import PATCH_SIZE, write_pairs
from kglnet.utils.io import sha256_file

__all__ = [
    "ConversionError",
    "IMAGE_EXTENSIONS",
    "AGUILERA_COLUMNS",
    "VISLWIR_COLUMNS",
    "OS_COLUMNS",
    "bundle_set_files",
    "check_bundle",
    "convert_kglnet_bundle",
    "convert_aguilera_csv",
    "convert_vislwir_list",
    "convert_os_list",
]

#: Extensions tried, in this order, for an image name given without one (first existing wins).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
AGUILERA_COLUMNS = ("type", "rgb", "rgb_x", "rgb_y", "nir", "nir_x", "nir_y")
VISLWIR_COLUMNS = ("img", "lwir_idx", "rgb_idx", "label")
OS_COLUMNS = ("folder", "img", "opt_x", "opt_y", "sar_x", "sar_y", "label")
SPLITS = ("train", "val", "test")


class ConversionError(ValueError):
    """An input of a converter is missing or malformed.

    ``str(e)`` is ``"{path}:{line}: {problem}"`` for a problem on a line of a text file and
    ``"{path}: {problem}"`` otherwise; ``path``, ``line`` (or None) and ``problem`` are attributes.
    """

    def __init__(self, path: str | os.PathLike, problem: str, line: int | None = None):
        self.path = Path(path)
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")


# ------------------------------------------------------------------------------------ helpers


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def _check_scene(scene: str | None) -> str | None:
    if scene is not None and (not isinstance(scene, str) or not scene):
        raise ValueError(f"scene must be a non-empty str or None, got {scene!r}")
    return scene


def _require_file(path: Path, what: str) -> None:
    if not path.exists():
        raise ConversionError(path, f"{what} not found")
    if not path.is_file():
        raise ConversionError(path, f"{what} is not a regular file")


def _require_dir(path: Path, what: str) -> None:
    if not path.exists():
        raise ConversionError(path, f"{what} not found")
    if not path.is_dir():
        raise ConversionError(path, f"{what} is not a folder")


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, stripped line) for each non-blank line of a UTF-8 text file."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            for number, raw in enumerate(handle, start=1):
                line = raw.strip()
                if line:
                    yield number, line
    except UnicodeDecodeError as exc:
        problem = f"not a UTF-8 text file ({exc.reason} at byte {exc.start})"
        raise ConversionError(path, problem) from None


def _fields(line: str) -> list[str]:
    """Comma-separated fields, or whitespace-separated ones when the line has no comma."""
    if "," in line:
        return [f.strip() for f in line.split(",")]
    return line.split()


def _header_or_data(
    path: Path,
    number: int,
    fields: list[str],
    columns: Sequence[str],
    first_is_data: bool,
    any_order: bool = False,
) -> bool:
    """Decide whether the first line is a header; return True when it is.

    A header must name exactly ``columns`` (case-insensitive; in this order unless
    ``any_order``). A first line that looks like data (``first_is_data``) and names none of the
    columns is data, so the header is optional; anything else is reported as a bad header.
    """
    lowered = [f.lower() for f in fields]
    if lowered == list(columns) or (any_order and sorted(lowered) == sorted(columns)):
        return True
    if first_is_data and not set(lowered) & set(columns):
        return False
    raise ConversionError(
        path, f"bad header {','.join(fields)!r}; expected {','.join(columns)!r}", number
    )


def _is_int(token: str) -> bool:
    try:
        int(token)
    except ValueError:
        return False
    return True


def _parse_int(path: Path, number: int, token: str, what: str) -> int:
    try:
        return int(token)
    except ValueError:
        raise ConversionError(path, f"{what} {token!r} is not an integer", number) from None


def _parse_integral(path: Path, number: int, token: str, what: str) -> int:
    """An integer, also written as an integral float ("12.0", "1.2e+01", as np.savetxt writes)."""
    try:
        return int(token)
    except ValueError:
        pass
    try:
        value = float(token)
    except ValueError:
        raise ConversionError(path, f"{what} {token!r} is not a number", number) from None
    if not np.isfinite(value) or not value.is_integer():
        raise ConversionError(path, f"{what} {token!r} is not an integer", number)
    return int(value)


def _parse_float(path: Path, number: int, token: str, what: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise ConversionError(path, f"{what} {token!r} is not a number", number) from None
    if not np.isfinite(value):
        raise ConversionError(path, f"{what} {token!r} is not finite", number)
    return value


def _round_px(value: float) -> int:
    # np.rint (half to even), the rounding detect_keypoints uses for sub-pixel detections.
    return int(np.rint(value))


def _parse_label(path: Path, number: int, token: str) -> int:
    if token not in ("0", "1"):
        raise ConversionError(path, f"bad label {token!r}; expected 0 or 1", number)
    return int(token)


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as a POSIX string (the key used in ``inputs_sha256``)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _resolve_image(root: Path, name: str) -> tuple[Path, list[Path]]:
    """(existing path or the first candidate, all candidates tried) for an image name.

    A name whose suffix is one of :data:`IMAGE_EXTENSIONS` (any case) is taken as is; otherwise
    each extension is appended in turn and the first existing file wins.
    """
    base = root / name
    if base.suffix.lower() in IMAGE_EXTENSIONS:
        return base, [base]
    candidates = [base.with_name(base.name + ext) for ext in IMAGE_EXTENSIONS]
    for candidate in candidates:
        if candidate.is_file():
            return candidate, candidates
    return candidates[0], candidates


def _to_gray(path: Path, image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        raise ConversionError(path, f"image has {image.dtype} pixels; only 8-bit is supported")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return np.ascontiguousarray(image[:, :, 0])
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ConversionError(path, f"image has unsupported shape {list(image.shape)}")


def _load_gray(path: Path) -> tuple[np.ndarray, str]:
    """(uint8 [H, W] grayscale image, sha256 of the file) reading the file once."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    # imdecode on the bytes also copes with non-ASCII paths, which cv2.imread does not everywhere.
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if image is None:
        raise ConversionError(path, "cannot decode image (unreadable, empty or not an image)")
    return _to_gray(path, image), digest


@dataclass
class _Images:
    """Distinct images referenced by a list file, in order of first use."""

    root: Path
    paths: list[Path] = field(default_factory=list)
    _index: dict[Path, int] = field(default_factory=dict)

    def add(self, path: Path, source: Path, number: int, candidates: Sequence[Path] = ()) -> int:
        """Index of image ``path`` (checked to exist), first used on ``source`` line ``number``."""
        index = self._index.get(path)
        if index is not None:
            return index
        if not path.is_file():
            tried = ""
            if len(candidates) > 1:
                tried = f" (tried {', '.join(c.name for c in candidates)})"
            raise ConversionError(source, f"image {path} not found{tried}", number)
        index = self._index[path] = len(self.paths)
        self.paths.append(path)
        return index


@dataclass
class _Side:
    """Where the patches of one side of every pair come from."""

    image: np.ndarray  # int64 [N] index into _Images.paths
    xy: np.ndarray  # int64 [N, 2] integer (x, y) patch centres
    # Optional extra words for an out-of-image error of pair i (e.g. the keypoint file line).
    note: Callable[[int], str] | None = None


def _cut(
    source: Path, lines: np.ndarray, images: _Images, sides: Sequence[_Side]
) -> tuple[list[np.ndarray], dict[str, str]]:
    """Cut every pair's patches; return ([uint8 [N,64,64] per side], image sha256 by name).

    Images are visited in order of first use and each is decoded once and dropped after use, so
    memory holds one decoded image plus the output arrays whatever the dataset size.
    """
    n = len(lines)
    out = [np.empty((n, PATCH_SIZE, PATCH_SIZE), dtype=np.uint8) for _ in sides]
    # Rows of each side grouped by image (stable order keeps pairs in list order within a group).
    groups: list[dict[int, np.ndarray]] = []
    for side in sides:
        order = np.argsort(side.image, kind="stable")
        keys, starts = np.unique(side.image[order], return_index=True)
        groups.append(dict(zip(keys.tolist(), np.split(order, starts[1:]))))
    digests: dict[str, str] = {}
    for k, path in enumerate(images.paths):
        gray, digest = _load_gray(path)
        digests[_relative(path, images.root)] = digest
        h, w = gray.shape
        for s, side in enumerate(sides):
            rows = groups[s].get(k)
            if rows is None:
                continue
            xy = side.xy[rows]
            x_ok = (xy[:, 0] >= HALF) & (xy[:, 0] <= w - HALF)
            bad = ~(x_ok & (xy[:, 1] >= HALF) & (xy[:, 1] <= h - HALF))
            if bad.any():
                bad_rows = rows[bad]
                i = int(bad_rows[np.argmin(lines[bad_rows])])
                x, y = (int(v) for v in side.xy[i])
                note = side.note(i) if side.note is not None else ""
                raise ConversionError(
                    source,
                    f"point (x={x}, y={y}){note} puts its {PATCH_SIZE}x{PATCH_SIZE} patch (rows "
                    f"y-{HALF}..y+{HALF - 1}, cols x-{HALF}..x+{HALF - 1}) outside image {path} "
                    f"of {w}x{h} (WxH); need {HALF} <= x <= {w - HALF} and "
                    f"{HALF} <= y <= {h - HALF}"
                    + (f" ({int(bad.sum())} such points on this image)" if bad.sum() > 1 else ""),
                    int(lines[i]),
                )
            out[s][rows] = cut_patches(gray, xy)
    return out, digests


def _cut_and_write(
    list_file: Path,
    lines: list[int],
    images: _Images,
    sides: Sequence[_Side],
    labels: list[int],
    out_path: str | os.PathLike,
    *,
    attrs: dict,
    scene: str | None = None,
    extra_inputs: dict[str, str] | None = None,
) -> dict:
    """The shared end of the list/CSV converters: cut both sides' patches, record the sha256 of
    the list file, the images and ``extra_inputs``, write the pair file, return its summary."""
    (left, right), digests = _cut(list_file, np.asarray(lines, np.int64), images, sides)
    label = np.asarray(labels, dtype=np.uint8)
    inputs = {list_file.name: sha256_file(list_file), **digests, **(extra_inputs or {})}
    write_pairs(out_path, left, right, label, **_scene_kwargs(scene, len(label)),
                attrs={**attrs, "seed": None, "inputs_sha256": inputs})
    return _summary(out_path, label)


def _summary(out_path: str | os.PathLike, label: np.ndarray) -> dict:
    positives = int(np.count_nonzero(label))
    return {
        "pairs": int(len(label)),
        "positives": positives,
        "negatives": int(len(label)) - positives,
        "out": str(out_path),
    }


def _scene_kwargs(scene: str | None, n: int) -> dict:
    if scene is None:
        return {}
    return {"scene": np.zeros(n, dtype=np.int32), "scene_names": [scene]}


# ------------------------------------------------------------------------- (a) KGL-Net bundle


def bundle_set_files(bundle_dir: str | os.PathLike, set_name: str) -> list[Path]:
    """The two files of set ``set_name`` of the KGL-Net bundle rooted at ``bundle_dir``."""
    folder = Path(bundle_dir) / set_name
    return [folder / f"{set_name}_sos.npy", folder / f"{set_name}_info.txt"]


def check_bundle(bundle_dir: str | os.PathLike | None, sets: Sequence[str]) -> None:
    """Raise one :class:`ConversionError` listing every file of ``sets`` missing under
    ``bundle_dir`` (the ``mydata/`` folder), and how to supply the bundle; ``None`` = not given."""
    how = ("the KGL-Net ready-made bundle cannot be downloaded (its file host needs an account): "
           "get `mydata/` from the authors and pass its path with `--config bundle=/path/to/mydata` "
           "or the environment variable KGLNET_BUNDLE")
    if bundle_dir is None or str(bundle_dir) == "":
        raise ConversionError("bundle", f"no bundle path given; {how}")
    missing = [str(f) for s in sets for f in bundle_set_files(bundle_dir, s) if not f.is_file()]
    if missing:
        shown = "; ".join(missing[:12]) + (f"; and {len(missing) - 12} more" if len(missing) > 12 else "")
        raise ConversionError(bundle_dir, f"{len(missing)} bundle files missing: {shown}. T{how[1:]}")


def convert_kglnet_bundle(
    set_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    split: str,
    scene: str | None = None,
    val_out: str | os.PathLike | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> dict:
    """Convert one set of the KGL-Net ready-made bundle (``mydata/<set>/``) to a pair file.

    Input, for ``set_dir`` named ``<set>`` (e.g. ``country``, ``lwir_test``, ``os_train``):

    * ``<set>_sos.npy``: uint8 [2M, 1, 64, 64] (uint8 [2M, 64, 64] is accepted too) patches in
      consecutive VIS/other order: patch 2k is visible, patch 2k+1 the other spectrum.
    * ``<set>_info.txt``: one integer point id per patch, one per line (2M non-blank lines);
      equal ids = same physical point. An id may be written as an integral float ("12.0",
      "1.200000000000000000e+01", as ``np.savetxt`` writes by default).

    Output: M pairs; pair k = (patch 2k, patch 2k+1), label 1 when their ids are equal.

    The bundle has no validation sets (the paper selects its epoch on the test set). With
    ``val_out``, a validation file is carved from this set instead: pairs are grouped into the
    connected components of the graph whose nodes are point ids and whose edges are pairs (a
    negative links two points, so a component is a set of points that appear together; with
    positives only it is one point), and a seeded share ``val_fraction`` of the components goes to
    ``val_out`` (split "val"), the rest to ``out_path``. No point id is in both files.

    Args:
        set_dir: the set's folder; its name gives ``<set>``.
        out_path: the ``.h5`` pair file to write.
        split: "train", "val" or "test" (recorded in the attributes).
        scene: optional scene name (e.g. the VIS-NIR category) stored as the file's only scene.
        val_out: optional second pair file receiving the carved validation pairs.
        val_fraction: share of the components held out for ``val_out``, in (0, 1).
        seed: seed of the carve.

    Returns:
        ``{"pairs", "positives", "negatives", "out"}``; with ``val_out`` also ``"val"``, the same
        summary of the validation file, and ``"val_groups"`` / ``"groups"`` (component counts).

    Raises:
        ConversionError: a file is missing, the array is not uint8 [2M,1,64,64] with M >= 1, the
            info file has a non-integer line (its line number is given) or a line count != 2M.
        ValueError: a bad ``split`` or ``scene`` argument.
    """
    _check_split(split)
    _check_scene(scene)
    if val_out is not None and not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    folder = Path(set_dir)
    _require_dir(folder, "bundle set folder")
    name = folder.absolute().name
    npy_path = folder / f"{name}_sos.npy"
    info_path = folder / f"{name}_info.txt"
    for path, what in ((npy_path, "patch array"), (info_path, "point-id list")):
        if not path.is_file():
            present = sorted(p.name for p in folder.iterdir())
            shown = ", ".join(present[:10]) + (", ..." if len(present) > 10 else "")
            raise ConversionError(
                path, f"{what} not found (the bundle folder holds: {shown or 'nothing'})"
            )

    # Memory-mapped: the header is checked before any patch is read, and the patches are read
    # exactly once, straight into the left/right arrays.
    try:
        sos = np.load(npy_path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ConversionError(npy_path, f"not a readable .npy array ({exc})") from None
    if not isinstance(sos, np.ndarray):
        raise ConversionError(npy_path, "is an .npz archive, expected a single .npy array")
    shape = tuple(sos.shape)
    if not (
        (len(shape) == 4 and shape[1:] == (1, PATCH_SIZE, PATCH_SIZE))
        or (len(shape) == 3 and shape[1:] == (PATCH_SIZE, PATCH_SIZE))
    ):
        raise ConversionError(
            npy_path,
            f"patch array has shape {list(shape)}, expected [N,1,{PATCH_SIZE},{PATCH_SIZE}]",
        )
    if sos.dtype != np.uint8:
        raise ConversionError(npy_path, f"patch array has dtype {sos.dtype}, expected uint8")
    n = shape[0]
    if n == 0:
        raise ConversionError(npy_path, "patch array is empty (N == 0)")
    if n % 2:
        raise ConversionError(
            npy_path,
            f"patch array has an odd number of patches ({n}); VIS/other pairs need an even N",
        )

    ids: list[int] = []
    for number, line in _text_lines(info_path):
        tokens = line.split()
        if len(tokens) != 1:
            problem = f"expected one point id, found {len(tokens)} fields"
            raise ConversionError(info_path, problem, number)
        ids.append(_parse_integral(info_path, number, tokens[0], "point id"))
    if len(ids) != n:
        raise ConversionError(
            info_path,
            f"has {len(ids)} point ids but {npy_path.name} has {n} patches (one id per patch)",
        )
    # Compared as Python ints: no overflow whatever the id range.
    same = (a == b for a, b in zip(ids[0::2], ids[1::2]))
    label = np.fromiter(same, dtype=np.uint8, count=n // 2)

    patches = sos.reshape(n, PATCH_SIZE, PATCH_SIZE)
    try:
        left = np.ascontiguousarray(patches[0::2])
        right = np.ascontiguousarray(patches[1::2])
    except (OSError, ValueError) as exc:  # a truncated file fails here, not at np.load
        raise ConversionError(npy_path, f"cannot read the patches ({exc})") from None
    del patches, sos  # release the memory map before hashing and writing

    protocol = (
        f"KGL-Net ready-made bundle set {name!r}: pair k = (patch 2k VIS, patch 2k+1 other "
        "spectrum), label 1 when their point ids are equal"
    )
    attrs = {
        "source": "kglnet-bundle",
        "seed": None,  # a pure re-encoding: no randomness involved
        "set": name,
        "inputs_sha256": {
            npy_path.name: sha256_file(npy_path),
            info_path.name: sha256_file(info_path),
        },
    }
    if val_out is None:
        write_pairs(out_path, left, right, label, **_scene_kwargs(scene, len(label)),
                    attrs={**attrs, "protocol": protocol, "split": split})
        return _summary(out_path, label)

    group = _point_groups(ids)
    n_groups = int(group.max()) + 1
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]))
    n_val = min(n_groups - 1, max(1, int(round(float(val_fraction) * n_groups))))
    if n_val < 1:
        raise ConversionError(
            npy_path, f"all {len(label)} pairs form one group of linked point ids; nothing can be "
            "held out for validation without sharing points with training"
        )
    is_val = np.zeros(n_groups, dtype=bool)
    is_val[rng.permutation(n_groups)[:n_val]] = True
    val_rows = is_val[group]
    carve = (
        f"; validation carved from it: {n_val} of {n_groups} groups of pairs linked by point id "
        f"(val_fraction {float(val_fraction)}, seed {int(seed)}), no point id in both files"
    )
    extra = {"seed": int(seed), "val_fraction": float(val_fraction), "groups": n_groups}
    parts = ((val_out, val_rows, "val"), (out_path, ~val_rows, split))
    written: list[Path] = []
    try:
        for path, rows, part_split in parts:
            write_pairs(path, left[rows], right[rows], label[rows],
                        **_scene_kwargs(scene, int(rows.sum())),
                        attrs={**attrs, **extra, "protocol": protocol + carve, "split": part_split})
            written.append(Path(path))
    except BaseException:
        for path in written:  # the two files exist together or not at all
            path.unlink(missing_ok=True)
        raise
    summary = _summary(out_path, label[~val_rows])
    summary.update(val=_summary(val_out, label[val_rows]), groups=n_groups, val_groups=n_val)
    return summary


def _point_groups(ids: list[int]) -> np.ndarray:
    """Component index (0..G-1, in order of first appearance) of each pair (ids[2k], ids[2k+1]) in
    the graph with point ids as nodes and pairs as edges (union-find with path halving)."""
    parent: dict[int, int] = {}

    def root(a: int) -> int:
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in zip(ids[0::2], ids[1::2]):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[rb] = ra
    index: dict[int, int] = {}
    return np.fromiter(
        (index.setdefault(root(a), len(index)) for a in ids[0::2]), dtype=np.int64,
        count=len(ids) // 2,
    )


# -------------------------------------------------------------------- (b) Aguilera VIS-NIR CSV


def convert_aguilera_csv(
    csv_path: str | os.PathLike,
    image_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    scene: str | None = None,
    split: str = "test",
) -> dict:
    """Convert one VIS-NIR patch-dataset CSV (Aguilera et al. 2016) plus its images.

    CSV format: header ``type,rgb,rgb_x,rgb_y,nir,nir_x,nir_y`` (the columns may come in any
    order; the header may be left out, then the columns are in this order), then one pair per
    line: ``type`` is ``positive`` or ``negative`` (any case); ``rgb``/``nir`` are image file
    names relative to ``image_dir`` (sub-folders allowed, ``\\`` is read as ``/``); the
    coordinates are 0-based pixel integers (integral floats such as ``12.0`` are accepted).

    Pair i = (rows rgb_y-32..rgb_y+31, cols rgb_x-32..rgb_x+31 of the grayscale rgb image,
    the same window around (nir_x, nir_y) of the grayscale nir image), label 1 for positive.

    Args:
        csv_path: the category's CSV file.
        image_dir: folder the image names are relative to.
        out_path: the ``.h5`` pair file to write.
        scene: optional scene name (e.g. the category, "country") stored as the only scene.
        split: "train", "val" or "test".

    Returns:
        ``{"pairs", "positives", "negatives", "out"}``.

    Raises:
        ConversionError: naming the CSV and line for a bad header, wrong field count, unknown
            type, bad coordinate, missing image or a point whose patch leaves its image; naming
            the image for an unreadable one.
    """
    _check_split(split)
    _check_scene(scene)
    csv_file = Path(csv_path)
    root = Path(image_dir)
    _require_file(csv_file, "CSV file")
    _require_dir(root, "image folder")

    images = _Images(root)
    lines: list[int] = []
    labels: list[int] = []
    img = ([], [])  # image index per pair, (rgb, nir)
    xy = ([], [])
    column: dict[str, int] | None = None
    for number, line in _text_lines(csv_file):
        fields = [f.strip() for f in next(csv.reader([line]))]
        if column is None:
            looks_like_data = fields[0].lower() in ("positive", "negative")
            if _header_or_data(
                csv_file, number, fields, AGUILERA_COLUMNS, looks_like_data, any_order=True
            ):
                # Columns are found by name, so a header in another order is read correctly.
                column = {name.lower(): i for i, name in enumerate(fields)}
                continue
            column = {name: i for i, name in enumerate(AGUILERA_COLUMNS)}
        if len(fields) != len(AGUILERA_COLUMNS):
            raise ConversionError(
                csv_file, f"expected {len(AGUILERA_COLUMNS)} fields, found {len(fields)}", number
            )
        kind = fields[column["type"]].lower()
        if kind not in ("positive", "negative"):
            raise ConversionError(
                csv_file,
                f"unknown type {fields[column['type']]!r}; expected positive or negative",
                number,
            )
        for s, name in enumerate(("rgb", "nir")):
            rel = fields[column[name]].replace("\\", "/")
            if not rel:
                raise ConversionError(csv_file, f"empty {name} image name", number)
            x = _parse_integral(csv_file, number, fields[column[f"{name}_x"]], f"{name}_x")
            y = _parse_integral(csv_file, number, fields[column[f"{name}_y"]], f"{name}_y")
            img[s].append(images.add(root / rel, csv_file, number))
            xy[s].append((x, y))
        lines.append(number)
        labels.append(1 if kind == "positive" else 0)
    if not lines:
        raise ConversionError(csv_file, "no pairs (the file has no data lines)")

    sides = [_Side(np.asarray(img[s], np.int64), np.asarray(xy[s], np.int64)) for s in (0, 1)]
    return _cut_and_write(
        csv_file, lines, images, sides, labels, out_path, scene=scene,
        attrs={
            "source": "aguilera-visnir-csv",
            "protocol": (
                "Aguilera et al. VIS-NIR patch CSV: patch rows y-32..y+31, cols x-32..x+31 "
                "(0-based) of the grayscale image (cv2 COLOR_BGR2GRAY); label 1 = positive"
            ),
            "split": split,
        },
    )


# --------------------------------------------------------------------------- (c) VIS-LWIR list


@dataclass
class _Keypoints:
    path: Path
    xy: np.ndarray  # int64 [K, 2], rounded to the nearest pixel
    lines: list[int]  # line number of each keypoint in ``path``


def _read_keypoints(path: Path) -> _Keypoints:
    """Keypoint file: one ``x<TAB>y<TAB>size`` per line (any whitespace or commas; extra
    columns after x and y, such as the size, are ignored but must be numbers)."""
    points: list[tuple[int, int]] = []
    lines: list[int] = []
    for number, line in _text_lines(path):
        tokens = _fields(line)
        if len(tokens) < 2:
            raise ConversionError(path, f"expected x, y, size fields, found {len(tokens)}", number)
        names = ["x", "y", "size"] + [f"field {j}" for j in range(4, len(tokens) + 1)]
        values = [_parse_float(path, number, t, what) for t, what in zip(tokens, names)]
        points.append((_round_px(values[0]), _round_px(values[1])))
        lines.append(number)
    xy = np.asarray(points, dtype=np.int64).reshape(-1, 2)
    return _Keypoints(path, xy, lines)


def _format(template: str, what: str, **values) -> str:
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"{what} template {template!r} cannot be filled with {sorted(values)}: {exc!r}"
        ) from None


def convert_vislwir_list(
    list_path: str | os.PathLike,
    root: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    split: str = "test",
    rgb_image: str = "rgb{i}",
    lwir_image: str = "lwir{i}",
    rgb_keypoints: str = "rgb{i}.txt",
    lwir_keypoints: str = "lwir{i}.txt",
    index_base: int = 0,
) -> dict:
    """Convert the VIS-LWIR patch dataset (list file + images + per-image keypoint files).

    List format: one pair per line, ``img,lwir_idx,rgb_idx,label`` (integers; an optional header
    line naming exactly these columns; whitespace-separated lines are accepted too). ``label`` is
    0 or 1. Pair = (patch of image ``rgb{img}`` at its keypoint ``rgb_idx``, patch of image
    ``lwir{img}`` at its keypoint ``lwir_idx``).

    ASSUMED file layout (SPEC section 7 names the images ``lwir{i}``/``rgb{i}`` but neither their
    extension nor the keypoint files' names; change the templates if your copy differs). All
    names are relative to ``root`` and filled by ``str.format`` with ``i`` = the integer ``img``
    (so ``"rgb{i:03d}"`` gives zero-padded names):

    * images ``rgb_image`` / ``lwir_image``, default ``rgb{i}`` / ``lwir{i}``. A name without an
      image extension is searched as ``<name>.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.tif``,
      ``.tiff`` in this order (:data:`IMAGE_EXTENSIONS`) and the first existing file is used; a
      name with one of these extensions is used as is.
    * keypoint files ``rgb_keypoints`` / ``lwir_keypoints``, default ``rgb{i}.txt`` /
      ``lwir{i}.txt`` beside the images: one keypoint per non-blank line, tab-separated
      ``x y size``; x, y are 0-based pixel coordinates rounded to the nearest pixel (np.rint);
      size is ignored.
    * keypoint indices count the non-blank lines of a keypoint file from ``index_base`` (default
      0: ``rgb_idx = 0`` is the first keypoint; pass 1 for 1-based, MATLAB-made lists).

    Args:
        list_path: the list file (train or test).
        root: folder holding images and keypoint files.
        out_path: the ``.h5`` pair file to write.
        split: "train", "val" or "test".
        rgb_image, lwir_image, rgb_keypoints, lwir_keypoints: name templates (see above).
        index_base: 0 or 1, the index of a file's first keypoint.

    Returns:
        ``{"pairs", "positives", "negatives", "out"}``.

    Raises:
        ConversionError: naming list file and line for a bad header/field/label, a missing image or
            keypoint file, an index out of range (with the keypoint file and its size) or a
            keypoint whose patch leaves the image (with the keypoint file and line); naming the
            keypoint file and line for a malformed keypoint; naming the image for an unreadable one.
    """
    _check_split(split)
    if index_base not in (0, 1):
        raise ValueError(f"index_base must be 0 or 1, got {index_base!r}")
    templates = {
        "rgb_image": rgb_image, "lwir_image": lwir_image,
        "rgb_keypoints": rgb_keypoints, "lwir_keypoints": lwir_keypoints,
    }
    for what, template in templates.items():
        _format(template, what, i=0)  # fail on a bad template before reading anything
    list_file = Path(list_path)
    base = Path(root)
    _require_file(list_file, "list file")
    _require_dir(base, "root folder")

    images = _Images(base)
    keypoint_files: dict[Path, _Keypoints] = {}
    lines: list[int] = []
    labels: list[int] = []
    img = ([], [])  # image index per pair, (rgb, lwir)
    kp_ref = ([], [])  # (keypoint file, keypoint position) per pair, for error messages
    xy = ([], [])
    first = True
    for number, line in _text_lines(list_file):
        fields = _fields(line)
        if first:
            first = False
            if _header_or_data(list_file, number, fields, VISLWIR_COLUMNS, _is_int(fields[0])):
                continue
        if len(fields) != len(VISLWIR_COLUMNS):
            raise ConversionError(
                list_file,
                f"expected {len(VISLWIR_COLUMNS)} fields ({','.join(VISLWIR_COLUMNS)}), "
                f"found {len(fields)}",
                number,
            )
        image_id = _parse_int(list_file, number, fields[0], "img")
        indices = {
            "lwir": _parse_int(list_file, number, fields[1], "lwir_idx"),
            "rgb": _parse_int(list_file, number, fields[2], "rgb_idx"),
        }
        labels.append(_parse_label(list_file, number, fields[3]))
        for s, band in enumerate(("rgb", "lwir")):
            kp_key = f"{band}_keypoints"
            kp_path = base / _format(templates[kp_key], kp_key, i=image_id)
            kps = keypoint_files.get(kp_path)
            if kps is None:
                if not kp_path.is_file():
                    raise ConversionError(list_file, f"keypoint file {kp_path} not found", number)
                kps = keypoint_files[kp_path] = _read_keypoints(kp_path)
            k = indices[band] - index_base
            if not 0 <= k < len(kps.xy):
                raise ConversionError(
                    list_file,
                    f"{band}_idx {indices[band]} out of range: {kp_path} has {len(kps.xy)} "
                    f"keypoints (valid {index_base}..{len(kps.xy) - 1 + index_base})",
                    number,
                )
            name = _format(templates[f"{band}_image"], f"{band}_image", i=image_id)
            path, candidates = _resolve_image(base, name)
            img[s].append(images.add(path, list_file, number, candidates))
            xy[s].append(kps.xy[k])
            kp_ref[s].append((kps, k))
        lines.append(number)
    if not lines:
        raise ConversionError(list_file, "no pairs (the file has no data lines)")

    def note(s: int) -> Callable[[int], str]:
        def describe(i: int) -> str:
            kps, k = kp_ref[s][i]
            return f" of keypoint {k + index_base} ({kps.path}:{kps.lines[k]})"

        return describe

    sides = [
        _Side(np.asarray(img[s], np.int64), np.asarray(xy[s], np.int64).reshape(-1, 2), note(s))
        for s in (0, 1)
    ]
    return _cut_and_write(
        list_file, lines, images, sides, labels, out_path,
        extra_inputs={_relative(kp, base): sha256_file(kp) for kp in keypoint_files},
        attrs={
            "source": "vislwir-list",
            "protocol": (
                "VIS-LWIR patch list img,lwir_idx,rgb_idx,label: pair = (rgb{img} patch at rgb "
                "keypoint rgb_idx, lwir{img} patch at lwir keypoint lwir_idx), keypoints rounded "
                "to the nearest pixel, patch rows y-32..y+31, cols x-32..x+31"
            ),
            "split": split,
            "name_templates": templates,
            "index_base": index_base,
        },
    )


# -------------------------------------------------------------------------------- (d) OS list


def convert_os_list(
    list_path: str | os.PathLike,
    root: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    split: str = "test",
    optical_image: str = "{folder}/opt{img}.png",
    sar_image: str = "{folder}/sar{img}.png",
) -> dict:
    """Convert the OS (optical-SAR) patch dataset list plus the OSdataset images.

    List format: one pair per line, ``folder,img,opt_x,opt_y,sar_x,sar_y,label`` (an optional
    header line naming exactly these columns; whitespace-separated lines are accepted too).
    ``folder`` and ``img`` are used as written; the coordinates are 0-based pixels (SIFT
    sub-pixel values are rounded to the nearest pixel, np.rint); ``label`` is 0 or 1.
    Pair = (optical patch at (opt_x, opt_y), SAR patch at (sar_x, sar_y)).

    ASSUMED image naming (SPEC section 7 does not give it; change the templates if your copy
    differs): ``root/<folder>/opt<img>.png`` and ``root/<folder>/sar<img>.png``, i.e. the
    templates ``optical_image="{folder}/opt{img}.png"`` and ``sar_image="{folder}/sar{img}.png"``
    filled by ``str.format`` with the ``folder`` and ``img`` strings of the line. A template
    result without an image extension is searched with :data:`IMAGE_EXTENSIONS` in order, as in
    :func:`convert_vislwir_list`.

    Args:
        list_path: the list file (train or test).
        root: folder holding the ``<folder>`` image folders.
        out_path: the ``.h5`` pair file to write.
        split: "train", "val" or "test".
        optical_image, sar_image: name templates (see above).

    Returns:
        ``{"pairs", "positives", "negatives", "out"}``.

    Raises:
        ConversionError: naming the list file and line for a bad header, field, label, a missing
            image or a point whose patch leaves its image; naming the image for an unreadable one.
    """
    _check_split(split)
    templates = {"optical_image": optical_image, "sar_image": sar_image}
    for what, template in templates.items():
        _format(template, what, folder="f", img="0")
    list_file = Path(list_path)
    base = Path(root)
    _require_file(list_file, "list file")
    _require_dir(base, "root folder")

    images = _Images(base)
    lines: list[int] = []
    labels: list[int] = []
    img = ([], [])  # image index per pair, (optical, sar)
    xy = ([], [])
    first = True
    for number, line in _text_lines(list_file):
        fields = _fields(line)
        if first:
            first = False
            looks_like_data = len(fields) == len(OS_COLUMNS) and _is_int(fields[-1])
            if _header_or_data(list_file, number, fields, OS_COLUMNS, looks_like_data):
                continue
        if len(fields) != len(OS_COLUMNS):
            raise ConversionError(
                list_file,
                f"expected {len(OS_COLUMNS)} fields ({','.join(OS_COLUMNS)}), found {len(fields)}",
                number,
            )
        folder, image_id = fields[0], fields[1]
        if not folder or not image_id:
            raise ConversionError(list_file, "empty folder or img field", number)
        coords = [
            _round_px(_parse_float(list_file, number, token, what))
            for token, what in zip(fields[2:6], OS_COLUMNS[2:6])
        ]
        labels.append(_parse_label(list_file, number, fields[6]))
        for s, key in enumerate(("optical_image", "sar_image")):
            name = _format(templates[key], key, folder=folder, img=image_id)
            path, candidates = _resolve_image(base, name)
            img[s].append(images.add(path, list_file, number, candidates))
            xy[s].append(coords[2 * s : 2 * s + 2])
        lines.append(number)
    if not lines:
        raise ConversionError(list_file, "no pairs (the file has no data lines)")

    sides = [_Side(np.asarray(img[s], np.int64), np.asarray(xy[s], np.int64)) for s in (0, 1)]
    return _cut_and_write(
        list_file, lines, images, sides, labels, out_path,
        attrs={
            "source": "os-list",
            "protocol": (
                "OS patch list folder,img,opt_x,opt_y,sar_x,sar_y,label: pair = (optical patch "
                "at (opt_x, opt_y), SAR patch at (sar_x, sar_y)), coordinates rounded to the "
                "nearest pixel, patch rows y-32..y+31, cols x-32..x+31"
            ),
            "split": split,
            "name_templates": templates,
        },
    )
