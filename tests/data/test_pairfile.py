"""The HDF5 pair-file contract: round trip, validation errors that name the file, atomic writes."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from kglnet.data import pairfile
from kglnet.data.pairfile import (
    PATCH_SIZE,
    PairFileError,
    read_pairs,
    validate_pairs,
    write_pairs,
)

ATTRS = {
    "source": "unit-test",
    "protocol": "random patches",
    "seed": 7,
    "split": "test",
    "inputs_sha256": {"a.png": "0" * 64, "b.png": "f" * 64},
    "extra_list": [1, 2, "three"],
    "ratio": 0.25,
    "flag": True,
    "nothing": None,
}


def _arrays(n=10, seed=0):
    rng = np.random.default_rng(seed)
    left = rng.integers(0, 256, (n, PATCH_SIZE, PATCH_SIZE), dtype=np.uint8)
    right = rng.integers(0, 256, (n, PATCH_SIZE, PATCH_SIZE), dtype=np.uint8)
    label = np.arange(n) % 2
    return left, right, label


def _raw_file(path, *, left=None, right=None, label=None, scene=None, attrs=None, n=6):
    """Write a pair file with h5py directly, bypassing write_pairs' validation."""
    defaults = _arrays(n)
    with h5py.File(path, "w") as f:
        for name, value, default in (("left", left, defaults[0]), ("right", right, defaults[1]),
                                     ("label", label, defaults[2].astype(np.uint8))):
            if value is False:  # leave the dataset out
                continue
            f.create_dataset(name, data=default if value is None else value)
        if scene is not None:
            f.create_dataset("scene", data=scene)
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
    return path


def test_round_trip_arrays_scenes_and_attrs(tmp_path):
    left, right, label = _arrays(12)
    scene = np.array([0, 1, 2] * 4)
    path = tmp_path / "pairs.h5"
    write_pairs(path, left, right, label, scene=scene, scene_names=["field", "forest", "urban"],
                attrs=ATTRS)
    pairs = read_pairs(path)
    assert len(pairs) == 12
    np.testing.assert_array_equal(pairs.left, left)
    np.testing.assert_array_equal(pairs.right, right)
    np.testing.assert_array_equal(pairs.label, label)
    assert pairs.left.dtype == pairs.right.dtype == pairs.label.dtype == np.uint8
    np.testing.assert_array_equal(pairs.scene, scene)
    assert pairs.scene_names == ["field", "forest", "urban"]
    for key, value in ATTRS.items():
        assert pairs.attrs[key] == value, key
    assert pairs.attrs["format_version"] == pairfile.FORMAT_VERSION
    assert "scene_names" not in pairs.attrs and "json_attrs" not in pairs.attrs

    sub = pairs.scene_subset("forest")
    assert len(sub) == 4 and (sub.scene == 1).all()
    np.testing.assert_array_equal(sub.left, left[scene == 1])
    with pytest.raises(KeyError, match="water"):
        pairs.scene_subset("water")

    info = validate_pairs(path)
    assert info["pairs"] == 12 and info["positives"] == 6 and info["negatives"] == 6
    assert info["scenes"] == ["field", "forest", "urban"]
    assert info["scene_pairs"] == {"field": 4, "forest": 4, "urban": 4}


def test_layout_is_chunked_compressed_and_records_required_attrs(tmp_path):
    path = tmp_path / "p.h5"
    write_pairs(path, *_arrays(5))
    with h5py.File(path, "r") as f:
        assert f["left"].chunks == (5, PATCH_SIZE, PATCH_SIZE)
        assert f["left"].compression is not None
    attrs = read_pairs(path).attrs
    for key in pairfile.REQUIRED_ATTRS:
        assert key in attrs
    assert attrs["source"] is None  # omitted provenance is recorded as unknown, not invented
    assert read_pairs(path).scene is None and validate_pairs(path)["scenes"] == []


def test_foreign_file_without_attributes_is_accepted(tmp_path):
    path = _raw_file(tmp_path / "foreign.h5", attrs={"note": '{"a": 1}'})
    pairs = read_pairs(path, require_both_labels=True)
    assert len(pairs) == 6 and pairs.attrs["note"] == {"a": 1}


def _bad_files(tmp_path):
    n = 6
    cases = {}
    cases["missing"] = (tmp_path / "missing.h5", "not found")
    text = tmp_path / "text.h5"
    text.write_text("this is not hdf5\n" * 10)
    cases["not_hdf5"] = (text, "not an HDF5 file")
    good = tmp_path / "truncated.h5"
    write_pairs(good, *_arrays(300))
    size = good.stat().st_size
    with open(good, "r+b") as handle:
        handle.truncate(size // 2)
    cases["truncated"] = (good, "truncated")
    for name in ("left", "right", "label"):
        kwargs = {name: False}
        cases[f"no_{name}"] = (_raw_file(tmp_path / f"no_{name}.h5", **kwargs), f"missing dataset '{name}'")
    cases["shape"] = (_raw_file(tmp_path / "shape.h5", left=np.zeros((n, 32, 32), np.uint8)),
                      "[6, 32, 32]")
    cases["shape_2d"] = (_raw_file(tmp_path / "shape2d.h5", right=np.zeros((n, 64), np.uint8)),
                         "[6, 64]")
    cases["dtype"] = (_raw_file(tmp_path / "dtype.h5", left=np.zeros((n, 64, 64), np.float32)),
                      "float32")
    cases["length"] = (_raw_file(tmp_path / "length.h5", right=np.zeros((n - 1, 64, 64), np.uint8)),
                       "length mismatch")
    cases["empty"] = (_raw_file(tmp_path / "empty.h5", left=np.zeros((0, 64, 64), np.uint8),
                                right=np.zeros((0, 64, 64), np.uint8), label=np.zeros(0, np.uint8)),
                      "empty")
    cases["labels"] = (_raw_file(tmp_path / "labels.h5", label=np.array([0, 1, 2, 1, 0, 1], np.uint8)),
                       "labels must be 0 or 1, found [2]")
    cases["label_wraps"] = (_raw_file(tmp_path / "wrap.h5", label=np.array([0, 1, 256, 1, 0, 1])),
                            "found [256]")
    cases["scene_range"] = (_raw_file(tmp_path / "scene.h5", scene=np.array([0, 1, 2, 0, 1, 3]),
                                      attrs={"scene_names": '["a", "b", "c"]'}),
                            "scene ids out of range")
    cases["scene_no_names"] = (_raw_file(tmp_path / "scene_nn.h5", scene=np.zeros(n, np.int64)),
                               "'scene_names' missing")
    return cases


CASES = ["missing", "not_hdf5", "truncated", "no_left", "no_right", "no_label", "shape", "shape_2d",
         "dtype", "length", "empty", "labels", "label_wraps", "scene_range", "scene_no_names"]


@pytest.mark.parametrize("reader", [read_pairs, validate_pairs], ids=["read", "validate"])
@pytest.mark.parametrize("case", CASES)
def test_bad_files_raise_pair_file_error_naming_file_and_problem(tmp_path, case, reader):
    path, problem = _bad_files(tmp_path)[case]
    with pytest.raises(PairFileError) as info:
        reader(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert problem in message, message
    assert isinstance(info.value, ValueError)


def test_require_both_labels(tmp_path):
    left, right, _ = _arrays(4)
    path = tmp_path / "positives.h5"
    write_pairs(path, left, right, np.ones(4, np.uint8))
    assert len(read_pairs(path)) == 4  # training files hold positives only: fine by default
    for reader in (read_pairs, validate_pairs):
        with pytest.raises(PairFileError, match="no negative pairs") as info:
            reader(path, require_both_labels=True)
        assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda a: {**a, "left": a["left"].astype(np.float32)}, "dtype uint8, got float32"),
        (lambda a: {**a, "right": a["right"][:, :32]}, "shape [N,64,64], got [10, 32, 64]"),
        (lambda a: {**a, "right": a["right"][:9]}, "length mismatch"),
        (lambda a: {**a, "label": np.full(10, 2)}, "labels must be 0 or 1"),
        (lambda a: {**a, "label": np.ones(10, np.float32)}, "integer or bool"),
        (lambda a: {**a, "left": a["left"][:0], "right": a["right"][:0], "label": a["label"][:0]},
         "N == 0"),
        (lambda a: {**a, "scene": np.zeros(10, int)}, "together"),
        (lambda a: {**a, "scene": np.full(10, 3), "scene_names": ["a", "b"]}, "scene ids"),
        (lambda a: {**a, "attrs": {"format_version": 2}}, "set by write_pairs"),
        (lambda a: {**a, "attrs": {"bad": {"x": object()}}}, "not JSON-serialisable"),
    ],
)
def test_write_pairs_validates_inputs(tmp_path, change, problem):
    left, right, label = _arrays(10)
    args = change({"left": left, "right": right, "label": label})
    path = tmp_path / "out.h5"
    with pytest.raises(ValueError) as info:
        write_pairs(path, args.pop("left"), args.pop("right"), args.pop("label"), **args)
    assert problem in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_no_temp_file_and_keeps_existing(tmp_path, monkeypatch):
    path = tmp_path / "pairs.h5"
    write_pairs(path, *_arrays(8), attrs={"source": "first"})
    before = path.read_bytes()

    original = h5py.Group.create_dataset

    def failing(self, name, *args, **kwargs):
        if name == "right":  # fail half-way, after 'left' was written to the temp file
            raise OSError("disk full")
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(OSError, match="disk full"):
        write_pairs(path, *_arrays(8, seed=1), attrs={"source": "second"})
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["pairs.h5"]
    assert path.read_bytes() == before
    assert read_pairs(path).attrs["source"] == "first"


def test_same_content_gives_same_bytes(tmp_path):
    # Reproducible files let data versioning (sha256) detect real changes only.
    for name in ("a.h5", "b.h5"):
        write_pairs(tmp_path / name, *_arrays(20), attrs=ATTRS)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


def test_full_disk_is_an_error_naming_the_file_not_a_crash(tmp_path):
    """HDF5 2.0 crashes the process (SIGSEGV) when it closes a file whose write failed; written
    through DeferredErrorFile, a full disk is an OSError naming the file and the process exits
    normally. Run in a child process: the crash came at close or at interpreter exit."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import resource, signal, sys
        import numpy as np
        from kglnet.data.pairfile import write_pairs
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, resource.RLIM_INFINITY))
        noise = np.random.default_rng(0).integers(0, 256, (400, 64, 64), dtype=np.uint8)
        try:
            write_pairs({str(tmp_path / 'train.h5')!r}, noise, noise[::-1], np.arange(400) % 2)
        except OSError as exc:
            print(exc)
            sys.exit(3)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, (proc.returncode, proc.stderr[-2000:])
    assert "could not write" in proc.stdout and "train.h5" in proc.stdout and "File too large" in proc.stdout
    assert os.listdir(tmp_path) == []  # neither the file nor its temporary
