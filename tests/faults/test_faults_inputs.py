"""Issue 8, item 3: corrupt inputs are detected before use and reported with the file and the problem.

Each row damages one input of a real command (``kglnet train``, ``evaluate``, ``match``,
``convert``, ``fetch``, ``make-mini``, run in this process) and checks that the command stops with
exit status 2 and one error naming the damaged file and what is wrong with it, and that it wrote
no output (nothing a later step could trust) and changed no existing one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import h5py
import numpy as np
import pytest
import torch

from faultkit import MICRO, changed, cli, flip_bit, h5_dataset_offset, temp_files, tree

CATEGORY = "corrupt-input"


@dataclass
class Case:
    argv: list                 # the kglnet command
    bad: Path                  # the damaged file the error must name
    problem: str               # fragment of the problem the error must state
    outputs: Path              # folder the command writes into (must gain nothing)
    keep: list[str] = field(default_factory=list)  # files allowed to appear there (the log)


CASES: dict[str, Callable[..., Case]] = {}


def case(name: str):
    def register(make):
        CASES[name] = make
        return make
    return register


def _train_argv(train: Path, val: Path, out: Path) -> list:
    return ["train", "--train", train, "--val", val, "--out-dir", out, "--device", "cpu", "--no-progress",
            "--config", json.dumps({**MICRO, "epochs": 1})]


def _evaluate_argv(checkpoint: Path, pairs: Path, out: Path) -> list:
    return ["evaluate", "--checkpoint", checkpoint, "--pairs", pairs, "--device", "cpu",
            "--metrics-out", out / "metrics.json", "--roc-out", out / "roc.json"]


# -- HDF5 pair files ------------------------------------------------------------------------------

@case("h5-truncated")
def _(tmp, data, ckpt, mp):
    bad = tmp / "test.h5"
    shutil.copy(data["test"], bad)
    with open(bad, "r+b") as handle:
        handle.truncate(bad.stat().st_size // 2)
    return Case(_evaluate_argv(ckpt("kglnet"), bad, tmp / "out"), bad, "truncated", tmp / "out")


@case("h5-bitflip-patches")
def _(tmp, data, ckpt, mp):
    bad = tmp / "train.h5"
    shutil.copy(data["train"], bad)
    offset, size = h5_dataset_offset(bad, "left")
    flip_bit(bad, offset + size // 2)  # one bit in the middle of the compressed patches
    return Case(_train_argv(bad, data["val"], tmp / "out"), bad, "cannot read dataset 'left'", tmp / "out",
                keep=["train.log"])


@case("h5-bitflip-labels")
def _(tmp, data, ckpt, mp):
    bad = tmp / "val.h5"
    shutil.copy(data["val"], bad)
    offset, size = h5_dataset_offset(bad, "label")
    flip_bit(bad, offset + size // 2, bit=0)  # a label silently turned 0 <-> 1
    return Case(_train_argv(data["train"], bad, tmp / "out"), bad, "cannot read dataset 'label'", tmp / "out",
                keep=["train.log"])


@case("h5-missing-dataset")
def _(tmp, data, ckpt, mp):
    bad = tmp / "test.h5"
    shutil.copy(data["test"], bad)
    with h5py.File(bad, "r+") as f:
        del f["right"]
    return Case(_evaluate_argv(ckpt("kglnet"), bad, tmp / "out"), bad, "missing dataset 'right'", tmp / "out")


@case("h5-wrong-dtype")
def _(tmp, data, ckpt, mp):
    bad = tmp / "train.h5"
    shutil.copy(data["train"], bad)
    with h5py.File(bad, "r+") as f:  # patches stored as floats in [0, 1], as another tool might
        left = f["left"][()].astype(np.float32) / 255.0
        del f["left"]
        f["left"] = left
    return Case(_train_argv(bad, data["val"], tmp / "out"), bad, "dataset 'left' has dtype float32, expected uint8",
                tmp / "out", keep=["train.log"])


# -- checkpoints ----------------------------------------------------------------------------------

@case("ckpt-truncated")
def _(tmp, data, ckpt, mp):
    bad = tmp / "best.pt"
    raw = ckpt("kglnet").read_bytes()
    bad.write_bytes(raw[: len(raw) * 2 // 3])
    return Case(_evaluate_argv(bad, data["test"], tmp / "out"), bad, "not a readable checkpoint", tmp / "out")


@case("ckpt-foreign")
def _(tmp, data, ckpt, mp):
    bad = tmp / "model.pt"  # a plain state dict of the right network, saved by some other script
    torch.save({"state_dict": torch.load(ckpt("kglnet"), weights_only=True)["model_state"]}, bad)
    return Case(_evaluate_argv(bad, data["test"], tmp / "out"), bad, "not a kglnet checkpoint", tmp / "out")


@case("ckpt-truncated-resume")
def _(tmp, data, ckpt, mp):
    out = tmp / "out"
    out.mkdir()
    bad = out / "last.pt"  # damaged on disk after it was written (atomic writes never cut it)
    raw = ckpt("kglnet").read_bytes()
    bad.write_bytes(raw[: len(raw) // 2])
    return Case(_train_argv(data["train"], data["val"], out), bad, "not a readable checkpoint", out,
                keep=["train.log"])


@case("ckpt-foreign-model-resume")
def _(tmp, data, ckpt, mp):
    out = tmp / "out"
    out.mkdir()
    bad = out / "last.pt"  # another model's run in this run's folder
    shutil.copy(ckpt("hardnet"), bad)
    return Case(_train_argv(data["train"], data["val"], out), bad,
                "checkpoint is of model 'hardnet', expected 'kglnet'", out, keep=["train.log"])


# -- images ---------------------------------------------------------------------------------------

def _texture(size: int = 160, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.normal(size=(size, size)).astype(np.float32), (0, 0), 2.0)
    return cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def _truncated_image(path: Path, fraction: float = 0.6) -> Path:
    ok, encoded = cv2.imencode(path.suffix, _texture())
    assert ok
    raw = encoded.tobytes()
    path.write_bytes(raw[: int(len(raw) * fraction)])
    return path


@case("image-truncated-jpeg")
def _(tmp, data, ckpt, mp):
    bad = _truncated_image(tmp / "vis.jpg")
    good = tmp / "nir.png"
    cv2.imwrite(str(good), _texture(seed=1))
    argv = ["match", "--checkpoint", ckpt("kglnet"), "--image0", bad, "--image1", good, "--out-dir", tmp / "out",
            "--device", "cpu"]
    return Case(argv, bad, "truncated JPEG", tmp / "out")


@case("image-truncated-png")
def _(tmp, data, ckpt, mp):
    images = tmp / "images"
    images.mkdir()
    cv2.imwrite(str(images / "nir.png"), _texture(seed=1))
    bad = _truncated_image(images / "rgb.png")
    csv = tmp / "pairs.csv"
    csv.write_text("type,rgb,rgb_x,rgb_y,nir,nir_x,nir_y\npositive,rgb.png,80,80,nir.png,80,80\n"
                   "negative,rgb.png,80,80,nir.png,40,40\n")
    argv = ["convert", "--format", "aguilera-csv", "--input", csv, "--root", images, "--out", tmp / "out" / "t.h5"]
    return Case(argv, bad, "cannot decode image", tmp / "out")


# -- source manifests -----------------------------------------------------------------------------

FILES = {"a/one.png": b"first image bytes", "b/two.png": bytes(range(256)) * 4}


def _fake_source(tmp: Path, monkeypatch, name: str):
    from kglnet.data.sources import SOURCES, Source

    tsv = tmp / f"{name}.tsv"
    tsv.write_text("".join(f"{p}\t{len(b)}\t{hashlib.sha256(b).hexdigest()}\n" for p, b in FILES.items()))
    monkeypatch.setitem(SOURCES, name, Source(name=name, repo="owner/fake", commit="0" * 40, licence="test",
                                              manifest_file=tsv))
    monkeypatch.delenv("KGLNET_MIRROR", raising=False)


def _lay_out(root: Path) -> None:
    for rel, raw in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(raw)


@case("manifest-mismatch-mirror")
def _(tmp, data, ckpt, mp):
    _fake_source(tmp, mp, "fake")
    _lay_out(tmp / "mirror" / "fake")
    bad = tmp / "mirror" / "fake" / "b/two.png"
    flip_bit(bad, 100)
    argv = ["fetch", "--source", "fake", "--dest", tmp / "out", "--mirror", tmp / "mirror", "--no-download",
            "--no-progress"]
    # the good file is placed (verified); the bad one and the verified-marker are not
    return Case(argv, bad, "do not match the manifest", tmp / "out", keep=["a/one.png"])


@case("manifest-mismatch-source")
def _(tmp, data, ckpt, mp):
    from kglnet.data.mini import MINI_DATASETS

    _fake_source(tmp, mp, MINI_DATASETS["visnir"].source)
    _lay_out(tmp / "raw")
    flip_bit(tmp / "raw" / "a/one.png", 3)  # changed after it was fetched: same size, other bytes
    argv = ["make-mini", "--dataset", "visnir", "--source-dir", tmp / "raw", "--out-dir", tmp / "out",
            "--no-progress"]
    return Case(argv, Path("a/one.png"), "sha256", tmp / "out")


@pytest.fixture(scope="module")
def data(tiny_dataset, micro_data) -> dict[str, Path]:
    return {"train": micro_data["train"], "val": micro_data["val"], "test": tiny_dataset / "test.h5"}


@pytest.mark.parametrize("name", list(CASES))
def test_corrupt_input_is_detected_before_use(name, fault, data, untrained_checkpoint, tmp_path, monkeypatch,
                                             capsys):
    c = CASES[name](tmp_path, data, untrained_checkpoint, monkeypatch)
    before = tree(c.outputs)
    inputs_before = {p: p.read_bytes() for p in (data["train"], data["val"], data["test"])}

    rc, err = cli(c.argv, capsys)

    after = tree(c.outputs)
    new_or_changed = [p for p in changed(before, after) if p not in c.keep]
    inputs_changed = [str(p) for p, raw in inputs_before.items() if p.read_bytes() != raw]
    fault.lost(len(new_or_changed) + len(inputs_changed) + len(temp_files(c.outputs)),
               new_or_changed + inputs_changed)
    assert rc == 2, err
    assert err.startswith(f"kglnet {c.argv[0]}: error: "), err
    assert str(c.bad) in err and c.problem in err, err
    assert len(err.strip().splitlines()) <= 4, err  # an error message, not a traceback
    assert new_or_changed == [] and inputs_changed == [] and temp_files(c.outputs) == []
