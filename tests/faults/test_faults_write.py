"""Issue 8, item 5: a write that fails part-way (a full disk, simulated) leaves no partial file.

The disk fills up inside :func:`faultkit.disk_full`: any write beyond the limit fails with EFBIG
in whichever library does it (Python, torch's zip writer, the HDF5 C library, OpenCV's encoder
through Python). Each row writes one kind of output over an existing good one; after the failure
the old file must be byte for byte what it was, no temporary file may remain, and the error
must reach the caller (nothing reports success).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from faultkit import MICRO, changed, disk_full, temp_files, tree

CATEGORY = "write-failure"
LIMIT = 256 * 1024  # bytes any file may reach while the disk is "full"

ROWS: dict[str, Callable] = {}


def row(name: str):
    def register(fn):
        ROWS[name] = fn
        return fn
    return register


@row("checkpoint")
def _(folder: Path, ctx):
    """save_checkpoint over an existing checkpoint (torch's zip writer)."""
    from kglnet.checkpoint import read_checkpoint, save_checkpoint
    from kglnet.models import create_model

    target = folder / "best.pt"
    target.write_bytes(ctx["ckpt"]("hardnet").read_bytes())
    model = create_model("kglnet")
    with disk_full(LIMIT):
        yield lambda: save_checkpoint(target, model, epoch=7)
    assert read_checkpoint(target)["model_name"] == "hardnet"


@row("pair-file")
def _(folder: Path, ctx):
    """write_pairs over an existing pair file (the HDF5 library)."""
    from kglnet.data.pairfile import read_pairs, write_pairs

    target = folder / "train.h5"
    target.write_bytes(ctx["data"]["train"].read_bytes())
    big = read_pairs(ctx["tiny"] / "train.h5")
    with disk_full(LIMIT):
        yield lambda: write_pairs(target, big.left, big.right, big.label)
    assert len(read_pairs(target)) == 12


@row("json")
def _(folder: Path, ctx):
    """atomic_write_json over an existing record (metrics, history, summaries)."""
    from kglnet.utils.io import atomic_write_json

    target = folder / "history.json"
    atomic_write_json(target, [{"epoch": 1}])
    with disk_full(LIMIT):
        yield lambda: atomic_write_json(target, [{"epoch": e, "values": list(range(200))} for e in range(400)])
    assert json.loads(target.read_text()) == [{"epoch": 1}]


@row("png")
def _(folder: Path, ctx):
    """write_png over an existing figure."""
    from kglnet.matching.images import write_png

    target = folder / "matches.png"
    write_png(target, np.zeros((8, 8), np.uint8))
    noise = np.random.default_rng(0).integers(0, 256, (1024, 1024), dtype=np.uint8)
    with disk_full(LIMIT):
        yield lambda: write_png(target, noise)


@row("fetch")
def _(folder: Path, ctx):
    """fetch_source copying a mirror file larger than the free space into a verified copy."""
    import hashlib

    from kglnet.data.sources import MARKER_NAME, SOURCES, Source, fetch_source

    payload = np.random.default_rng(1).integers(0, 256, 4 * LIMIT, dtype=np.uint8).tobytes()
    mirror = ctx["tmp"] / "mirror"
    (mirror / "fake").mkdir(parents=True)
    (mirror / "fake" / "big.bin").write_bytes(payload)
    tsv = ctx["tmp"] / "fake.tsv"
    tsv.write_text(f"big.bin\t{len(payload)}\t{hashlib.sha256(payload).hexdigest()}\n")
    ctx["mp"].setitem(SOURCES, "fake", Source(name="fake", repo="o/fake", commit="0" * 40, licence="test",
                                              manifest_file=tsv))
    with disk_full(LIMIT):
        yield lambda: fetch_source("fake", folder, mirror=mirror, allow_download=False, progress=False)
    assert not (folder / "big.bin").exists() and not (folder / MARKER_NAME).exists()


@row("training-epoch")
def _(folder: Path, ctx):
    """Training whose epoch-2 checkpoints do not fit: epoch 1's stay, and the rerun resumes from
    them to the same weights as a run that never failed."""
    from kglnet.checkpoint import read_checkpoint
    from kglnet.train import TrainConfig, train

    data = ctx["data"]
    train(data["train"], data["val"], folder, TrainConfig(epochs=1, **MICRO), resume=False, progress=False)
    with disk_full(8 * 1024 * 1024):  # the logs and JSON fit, no checkpoint does
        yield lambda: train(data["train"], data["val"], folder, TrainConfig(epochs=3, **MICRO), progress=False)
    assert read_checkpoint(folder / "last.pt")["epoch"] == 1
    train(data["train"], data["val"], folder, TrainConfig(epochs=3, **MICRO), progress=False)
    assert "resuming from" in (folder / "train.log").read_text()
    clean = ctx["clean"]()
    for name in ("last.pt", "best.pt"):
        ours, theirs = read_checkpoint(folder / name)["model_state"], read_checkpoint(clean / name)["model_state"]
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs), name


@pytest.mark.parametrize("name", list(ROWS))
def test_failed_write_leaves_no_partial_file(name, fault, micro_data, tiny_dataset, untrained_checkpoint, request,
                                             tmp_path, monkeypatch):
    folder = tmp_path / "out"
    folder.mkdir()
    ctx = {"data": micro_data, "tiny": tiny_dataset, "ckpt": untrained_checkpoint, "tmp": tmp_path, "mp": monkeypatch,
           "clean": lambda: request.getfixturevalue("clean_micro_run")}
    steps = ROWS[name](folder, ctx)
    write = next(steps)  # the old outputs are in place; inside disk_full from here
    before = tree(folder)
    try:
        with pytest.raises((OSError, RuntimeError)) as info:
            write()
        after = tree(folder)
    finally:
        next(steps, None)  # leaves disk_full and runs the row's own checks
    # Only the log may grow (and a run's config.json is rewritten whole when it starts); any other
    # change is a damaged old output or a new partial one.
    lost = [p for p in changed(before, after) if p not in ("train.log", "config.json")] + temp_files(folder)
    fault.lost(len(lost), lost)
    fault.note(f"{type(info.value).__name__}: {str(info.value).splitlines()[0][:120]}")
    assert lost == []


def test_cli_reports_full_disk_in_one_line(tmp_path, capsys):
    """``kglnet make-synthetic`` on a full disk: exit status 1 and one line naming the file and
    the cause, not a traceback (nor a crash of the HDF5 library), and no file left behind."""
    from faultkit import cli

    out = tmp_path / "data"
    settings = json.dumps({"images": {"train": 6, "val": 3, "test": 3}, "keypoints_per_image": 24, "image_size": 160})
    with disk_full(LIMIT):
        rc, err = cli(["make-synthetic", "--out-dir", out, "--config", settings, "--no-progress"], capsys)
    assert rc == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kglnet make-synthetic: error: "), err
    assert "could not write" in lines[0] and "train.h5" in lines[0] and "File too large" in lines[0], err
    assert temp_files(tmp_path) == [] and not (out / "train.h5").exists()
