"""The HDF5 pair-file contract: one file per split, shared by every data source and by evaluation.

Layout of a pair file (format version 1)::

    left    uint8 [N, 64, 64]   visible patch of each pair
    right   uint8 [N, 64, 64]   other-spectrum patch (NIR, LWIR, SAR, ...)
    label   uint8 [N]           1 = same physical point, 0 = different points
    scene   int   [N]           optional; index into the file attribute ``scene_names``

File attributes: ``source``, ``protocol``, ``seed``, ``split``, ``inputs_sha256`` (name -> sha256
of the inputs the file was made from), ``format_version`` and any extra caller attributes.
Scalars (str, int, float, bool) are stored natively so any HDF5 tool can read them; dicts, lists
and ``None`` are stored as JSON strings and their names listed in the attribute ``json_attrs`` so
they decode back to the same Python values.

Readers are lenient about *who* made a file (no attribute is required on read: evaluation must
accept any file of this shape) but strict about its *shape*: every defect raises
:class:`PairFileError` whose message names the file and the problem.

Every dataset is written chunked with HDF5's fletcher32 checksum filter, which HDF5 checks on
every read: a bit flipped in the stored pairs makes :func:`read_pairs` fail instead of returning
other pairs (files of other writers, without checksums, are still read).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import h5py
import numpy as np

from kglnet.utils.io import DeferredErrorFile, atomic_path

__all__ = [
    "PATCH_SIZE",
    "FORMAT_VERSION",
    "REQUIRED_ATTRS",
    "PairFileError",
    "PairSet",
    "write_pairs",
    "read_pairs",
    "validate_pairs",
]

PATCH_SIZE = 64
FORMAT_VERSION = 1
#: Attributes every writer records. ``write_pairs`` fills any the caller omits with ``None``
#: (stored as JSON ``null``) so a file always says explicitly that its provenance is unknown.
REQUIRED_ATTRS = ("source", "protocol", "seed", "split", "inputs_sha256", "format_version")
DATASETS = ("left", "right", "label")
# Attribute names the writer manages itself; callers may not set them through ``attrs``.
_RESERVED_ATTRS = ("format_version", "scene_names", "json_attrs")
# Chunks of up to 256 patches (1 MiB) keep lzf decompression cheap and let a reader slice batches
# without touching the whole file; lzf decodes several times faster than gzip at a modest ratio.
_CHUNK_PATCHES = 256
_COMPRESSION = "lzf"


class PairFileError(ValueError):
    """A pair file is missing or malformed. ``str(e) == f"{path}: {problem}"``."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass
class PairSet:
    """Pairs loaded from one pair file.

    Attributes:
        path: the file they came from.
        left: uint8 [N, 64, 64] visible patches.
        right: uint8 [N, 64, 64] other-spectrum patches.
        label: uint8 [N], 1 = matching pair, 0 = non-matching.
        scene: int64 [N] scene id per pair, or None when the file has no scenes.
        scene_names: names of the scene ids (index = id), or None.
        attrs: the file attributes, JSON-encoded ones decoded (``scene_names``/``json_attrs``
            are not repeated here).
    """

    path: Path
    left: np.ndarray
    right: np.ndarray
    label: np.ndarray
    scene: np.ndarray | None = None
    scene_names: list[str] | None = None
    attrs: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.label.shape[0])

    @property
    def positives(self) -> int:
        return int(np.count_nonzero(self.label == 1))

    @property
    def negatives(self) -> int:
        return len(self) - self.positives

    def scene_subset(self, name: str) -> "PairSet":
        """The pairs of scene ``name`` (scene ids and names are kept unchanged).

        Raises KeyError for an unknown name and ValueError when the file has no scenes.
        """
        if self.scene is None or self.scene_names is None:
            raise ValueError(f"{self.path}: file has no scenes, cannot select scene {name!r}")
        if name not in self.scene_names:
            raise KeyError(f"{self.path}: no scene {name!r}; scenes are {self.scene_names}")
        keep = self.scene == self.scene_names.index(name)
        return PairSet(
            path=self.path,
            left=self.left[keep],
            right=self.right[keep],
            label=self.label[keep],
            scene=self.scene[keep],
            scene_names=list(self.scene_names),
            attrs=dict(self.attrs),
        )


# --------------------------------------------------------------------------------------- writing


def _to_attr_value(key: str, value: Any) -> tuple[Any, bool]:
    """Return (value as stored in HDF5, whether it is JSON-encoded)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (str, bool, int, float)):
        return value, False
    if value is None or isinstance(value, (dict, list, tuple)):
        try:
            return json.dumps(value, sort_keys=True), True
        except (TypeError, ValueError) as exc:
            raise ValueError(f"attribute {key!r} is not JSON-serialisable: {exc}") from None
    raise ValueError(
        f"attribute {key!r} has unsupported type {type(value).__name__}; "
        "use str, int, float, bool, None, list or dict"
    )


def _check_patches(name: str, array: Any) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(array).__name__}")
    if array.ndim != 3 or array.shape[1:] != (PATCH_SIZE, PATCH_SIZE):
        raise ValueError(
            f"{name} must have shape [N,{PATCH_SIZE},{PATCH_SIZE}], got {list(array.shape)}"
        )
    if array.dtype != np.uint8:
        # No silent casting: a float patch in [0,1] cast to uint8 would become all zeros.
        raise ValueError(f"{name} must have dtype uint8, got {array.dtype}")
    return np.ascontiguousarray(array)


def write_pairs(
    path: str | os.PathLike,
    left: np.ndarray,
    right: np.ndarray,
    label: np.ndarray,
    *,
    scene: np.ndarray | None = None,
    scene_names: Iterable[str] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> None:
    """Validate and atomically write one pair file.

    Args:
        path: destination ``.h5`` file; written to a temporary name and renamed on success, so a
            failed write never leaves a partial file nor clobbers an existing one.
        left, right: uint8 [N, 64, 64] patches (visible, other spectrum); N >= 1.
        label: [N] integer or bool array of 0/1 values (stored as uint8).
        scene: optional integer [N] scene ids, each in ``range(len(scene_names))``.
        scene_names: scene names, required together with ``scene``.
        attrs: file attributes (str/int/float/bool stored natively; dict/list/None as JSON).
            Any of ``source``, ``protocol``, ``seed``, ``split``, ``inputs_sha256`` left out is
            recorded as None. ``format_version`` is set by this function.

    Raises:
        ValueError: naming the problem, before anything is written.
    """
    left = _check_patches("left", left)
    right = _check_patches("right", right)
    n = left.shape[0]
    if n == 0:
        raise ValueError("no pairs to write (N == 0)")
    if right.shape[0] != n:
        raise ValueError(f"length mismatch: left has {n} pairs, right has {right.shape[0]}")
    label = np.asarray(label)
    if label.shape != (n,):
        raise ValueError(f"label must have shape [{n}], got {list(label.shape)}")
    if not (np.issubdtype(label.dtype, np.integer) or label.dtype == np.bool_):
        raise ValueError(f"label must be an integer or bool array, got dtype {label.dtype}")
    bad = ~np.isin(label, (0, 1))
    if bad.any():
        raise ValueError(f"labels must be 0 or 1, found {np.unique(label[bad]).tolist()[:5]}")
    label = label.astype(np.uint8)

    names: list[str] | None = None
    if scene is not None or scene_names is not None:
        if scene is None or scene_names is None:
            raise ValueError("scene and scene_names must be given together")
        names = list(scene_names)
        if not names or not all(isinstance(s, str) for s in names):
            raise ValueError("scene_names must be a non-empty list of str")
        if len(set(names)) != len(names):
            raise ValueError(f"scene_names has duplicates: {names}")
        scene = np.asarray(scene)
        if scene.shape != (n,) or not np.issubdtype(scene.dtype, np.integer):
            raise ValueError(
                f"scene must be an integer array of shape [{n}], "
                f"got {scene.dtype} {list(scene.shape)}"
            )
        if scene.min() < 0 or scene.max() >= len(names):
            raise ValueError(
                f"scene ids must be in [0, {len(names)}), found {int(scene.min())}..{int(scene.max())}"
            )
        scene = scene.astype(np.int32 if len(names) < 2**31 else np.int64)

    stored: dict[str, Any] = {}
    json_keys: list[str] = []
    user = dict(attrs or {})
    for key in _RESERVED_ATTRS:
        if key in user:
            raise ValueError(f"attribute {key!r} is set by write_pairs, do not pass it")
    for key in REQUIRED_ATTRS:
        user.setdefault(key, None)
    user["format_version"] = FORMAT_VERSION
    for key, value in user.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"attribute names must be non-empty str, got {key!r}")
        stored[key], is_json = _to_attr_value(key, value)
        if is_json:
            json_keys.append(key)
    if names is not None:
        stored["scene_names"] = json.dumps(names)
        json_keys.append("scene_names")
    stored["json_attrs"] = json.dumps(sorted(json_keys))

    chunk = (min(n, _CHUNK_PATCHES), PATCH_SIZE, PATCH_SIZE)
    with atomic_path(path) as tmp, DeferredErrorFile(tmp) as sink:
        # HDF5 writes through ``sink``: a full disk becomes an OSError raised below, after HDF5 has
        # closed the file, instead of a crash of the process when it closes (see DeferredErrorFile).
        # track_times=False keeps the bytes a pure function of the content (reproducible hashes).
        with h5py.File(sink, "w", track_order=True) as f:
            # fletcher32: every chunk carries a checksum that HDF5 verifies on read, so a flipped
            # bit in the stored data is an error (PairFileError), never silently different pairs.
            for name, data in (("left", left), ("right", right)):
                f.create_dataset(
                    name, data=data, chunks=chunk, compression=_COMPRESSION, fletcher32=True,
                    track_times=False,
                )
            f.create_dataset("label", data=label, chunks=(n,), fletcher32=True, track_times=False)
            if scene is not None:
                f.create_dataset("scene", data=scene, chunks=(n,), fletcher32=True, track_times=False)
            for key, value in stored.items():
                f.attrs[key] = value
        sink.close()
        sink.raise_deferred(path)


# --------------------------------------------------------------------------------------- reading


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return _plain(value.item())
    return value


def _decode_attrs(path: Path, raw: Mapping[str, Any]) -> dict:
    attrs = {key: _plain(value) for key, value in raw.items()}
    marker = attrs.pop("json_attrs", None)
    if marker is not None:
        try:
            json_keys = set(json.loads(marker))
        except (TypeError, ValueError):
            raise PairFileError(path, f"attribute 'json_attrs' is not a JSON list: {marker!r}")
    else:
        # A file made by another tool: decode strings that look like JSON containers.
        json_keys = {
            k for k, v in attrs.items() if isinstance(v, str) and v[:1] in ("{", "[")
        }
    for key in json_keys:
        if key not in attrs:
            continue
        try:
            attrs[key] = json.loads(attrs[key])
        except (TypeError, ValueError):
            if marker is not None:
                raise PairFileError(path, f"attribute {key!r} is not valid JSON: {attrs[key]!r}")
    return attrs


def _scene_names(path: Path, f: h5py.File, attrs: dict) -> list[str] | None:
    names = attrs.pop("scene_names", None)
    if names is None and "scene" in f:
        # Also accept the names on the dataset itself (another writer's choice).
        names = _plain(f["scene"].attrs.get("scene_names"))
        if isinstance(names, str):
            try:
                names = json.loads(names)
            except ValueError:
                raise PairFileError(path, f"attribute 'scene_names' is not a JSON list: {names!r}")
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(s, str) for s in names):
        raise PairFileError(path, f"attribute 'scene_names' must be a list of str, got {names!r}")
    return names


def _open(path: str | os.PathLike) -> tuple[Path, h5py.File]:
    path = Path(path)
    if not path.exists():
        raise PairFileError(path, "file not found")
    if not path.is_file():
        raise PairFileError(path, "not a regular file")
    try:
        return path, h5py.File(path, "r")
    except OSError as exc:
        if not h5py.is_hdf5(path):
            raise PairFileError(path, "not an HDF5 file (no HDF5 signature)") from None
        raise PairFileError(path, f"HDF5 file truncated or corrupt ({exc})") from None


def _read(path: Path, ds: h5py.Dataset) -> np.ndarray:
    try:
        return ds[()]
    except (OSError, RuntimeError, ValueError) as exc:
        raise PairFileError(
            path, f"cannot read dataset {ds.name.lstrip('/')!r}, file truncated or corrupt ({exc})"
        ) from None


def _check_structure(path: Path, f: h5py.File) -> int:
    """Check datasets, shapes and dtypes without reading patch data; return N."""
    for name in DATASETS:
        if name not in f:
            raise PairFileError(path, f"missing dataset {name!r} (found {sorted(f.keys())})")
        if not isinstance(f[name], h5py.Dataset):
            raise PairFileError(path, f"{name!r} is not a dataset")
    for name in ("left", "right"):
        ds = f[name]
        if ds.ndim != 3 or ds.shape[1:] != (PATCH_SIZE, PATCH_SIZE):
            raise PairFileError(
                path,
                f"dataset {name!r} has shape {list(ds.shape)}, expected [N,{PATCH_SIZE},{PATCH_SIZE}]",
            )
        if ds.dtype != np.uint8:
            raise PairFileError(path, f"dataset {name!r} has dtype {ds.dtype}, expected uint8")
    lab = f["label"]
    if lab.ndim != 1:
        raise PairFileError(path, f"dataset 'label' has shape {list(lab.shape)}, expected [N]")
    if not (np.issubdtype(lab.dtype, np.integer) or lab.dtype == np.bool_):
        raise PairFileError(path, f"dataset 'label' has dtype {lab.dtype}, expected uint8")
    lengths = {name: f[name].shape[0] for name in DATASETS}
    if "scene" in f:
        sc = f["scene"]
        if not isinstance(sc, h5py.Dataset) or sc.ndim != 1:
            raise PairFileError(path, "'scene' must be a 1-D dataset")
        if not np.issubdtype(sc.dtype, np.integer):
            raise PairFileError(path, f"dataset 'scene' has dtype {sc.dtype}, expected integer")
        lengths["scene"] = sc.shape[0]
    if len(set(lengths.values())) != 1:
        detail = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise PairFileError(path, f"length mismatch between datasets ({detail})")
    n = lengths["left"]
    if n == 0:
        raise PairFileError(path, "empty file: 0 pairs")
    return n


def _check_values(
    path: Path, label: np.ndarray, scene: np.ndarray | None, names: list[str] | None,
    require_both_labels: bool,
) -> None:
    bad = ~np.isin(label, (0, 1))
    if bad.any():
        values = np.unique(label[bad]).tolist()[:5]
        raise PairFileError(
            path, f"labels must be 0 or 1, found {values} in {int(bad.sum())} pairs"
        )
    if require_both_labels:
        pos = int(np.count_nonzero(label == 1))
        if pos == 0 or pos == label.shape[0]:
            missing = "positive" if pos == 0 else "negative"
            raise PairFileError(
                path, f"no {missing} pairs ({pos} positives, {label.shape[0] - pos} negatives); "
                "evaluation needs both"
            )
    if scene is not None:
        if names is None:
            raise PairFileError(path, "dataset 'scene' present but attribute 'scene_names' missing")
        lo, hi = int(scene.min()), int(scene.max())
        if lo < 0 or hi >= len(names):
            raise PairFileError(
                path, f"scene ids out of range: found {lo}..{hi}, "
                f"but scene_names has {len(names)} entries"
            )
    elif names is not None:
        raise PairFileError(path, "attribute 'scene_names' present but dataset 'scene' missing")


def read_pairs(path: str | os.PathLike, *, require_both_labels: bool = False) -> PairSet:
    """Load and validate a pair file.

    Args:
        path: the ``.h5`` pair file.
        require_both_labels: raise if the file has no positives or no negatives (evaluation
            needs both to compute FPR95).

    Returns:
        A :class:`PairSet` with the patches in memory (uint8 [N,64,64] each), labels as uint8 [N]
        and scene ids as int64 [N] (or None).

    Raises:
        PairFileError: ``"{path}: {problem}"`` for any defect.
    """
    path, f = _open(path)
    with f:
        _check_structure(path, f)
        attrs = _decode_attrs(path, f.attrs)
        names = _scene_names(path, f, attrs)
        raw_label = _read(path, f["label"])
        scene = _read(path, f["scene"]).astype(np.int64) if "scene" in f else None
        # Check before casting: a label of 256 in an int64 file must not wrap to 0.
        _check_values(path, raw_label, scene, names, require_both_labels)
        label = raw_label.astype(np.uint8, copy=False)
        left = _read(path, f["left"])
        right = _read(path, f["right"])
    return PairSet(path, left, right, label, scene, names, attrs)


def validate_pairs(path: str | os.PathLike, *, require_both_labels: bool = False) -> dict:
    """Check a pair file without loading its patches.

    Reads only the structure, attributes, labels, scene ids and the last patch of each side, so it
    is cheap even for large files (damage in the middle of a patch dataset is only detected by
    :func:`read_pairs`).

    Returns:
        ``{"pairs": N, "positives": int, "negatives": int, "scenes": [names present],
        "scene_pairs": {name: count}}``; the scene entries are empty when the file has none.

    Raises:
        PairFileError: ``"{path}: {problem}"`` for any defect.
    """
    path, f = _open(path)
    with f:
        n = _check_structure(path, f)
        attrs = _decode_attrs(path, f.attrs)
        names = _scene_names(path, f, attrs)
        label = _read(path, f["label"])
        scene = _read(path, f["scene"]).astype(np.int64) if "scene" in f else None
        _check_values(path, label, scene, names, require_both_labels)
        # Truncation usually cuts the end of the file: reading the last patch of each side
        # catches it for the price of one chunk.
        for name in ("left", "right"):
            try:
                f[name][n - 1]
            except (OSError, RuntimeError, ValueError) as exc:
                raise PairFileError(
                    path, f"cannot read dataset {name!r}, file truncated or corrupt ({exc})"
                ) from None
    positives = int(np.count_nonzero(label == 1))
    scene_pairs: dict[str, int] = {}
    if scene is not None and names is not None:
        counts = np.bincount(scene, minlength=len(names))
        scene_pairs = {names[i]: int(c) for i, c in enumerate(counts) if c > 0}
    return {
        "pairs": int(n),
        "positives": positives,
        "negatives": int(n) - positives,
        "scenes": list(scene_pairs),
        "scene_pairs": scene_pairs,
    }
