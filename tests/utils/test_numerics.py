"""Portable CPU numerics (kglnet.utils.numerics): the environment, the backends, and training
that comes out bit-identical whichever code paths the processor's libraries would pick."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from kglnet.utils.numerics import PORTABLE_CPU_ENV, portable_cpu_environment, portable_cpu_requested

KGLNET = Path(sys.executable).with_name("kglnet")


def test_portable_environment_adds_the_settings_and_keeps_the_rest():
    base = {"PATH": "/bin", "MKL_CBWR": "AUTO", "OTHER": "x"}
    env = portable_cpu_environment(base)
    assert env == {"PATH": "/bin", "OTHER": "x", "ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2",
                   "KGLNET_PORTABLE_CPU": "1"}
    assert base["MKL_CBWR"] == "AUTO"  # a copy
    assert portable_cpu_requested(env) and not portable_cpu_requested(base)
    assert not portable_cpu_requested({"KGLNET_PORTABLE_CPU": "0"})


@pytest.mark.parametrize("portable", [True, False])
def test_the_kglnet_command_turns_off_onednn_and_nnpack_only_when_asked(portable):
    code = ("import torch; from kglnet.utils.numerics import apply_portable_cpu_backends as a; r = a(); "
            "print(r, torch.backends.mkldnn.enabled, torch._C._get_nnpack_enabled())")
    env = portable_cpu_environment() if portable else {k: v for k, v in os.environ.items()
                                                       if k not in PORTABLE_CPU_ENV}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == (["True", "False", "False"] if portable else ["False", "True", "True"])


@pytest.fixture(scope="module")
def micro_files(tiny_dataset, tmp_path_factory):
    """16 positive training pairs and 16 validation pairs (8 each way), from the tiny files."""
    folder = tmp_path_factory.mktemp("numerics")
    for split, take in (("train", lambda label: np.flatnonzero(label == 1)[:16]),
                        ("val", lambda label: np.r_[np.flatnonzero(label == 1)[:8], np.flatnonzero(label == 0)[:8]])):
        with h5py.File(tiny_dataset / f"{split}.h5", "r") as f:
            label = f["label"][:]
            rows = take(label)
            left, right = f["left"][:][rows], f["right"][:][rows]
        with h5py.File(folder / f"{split}.h5", "w") as f:
            f["left"], f["right"], f["label"] = left, right, label[rows]
    return folder / "train.h5", folder / "val.h5"


def _train(files, out: Path, env: dict[str, str]) -> dict[str, torch.Tensor]:
    train, val = files
    cmd = [str(KGLNET), "train", "--train", str(train), "--val", str(val), "--out-dir", str(out), "--config",
           '{"epochs": 1, "batch_size": 8, "seed": 0}', "--device", "cpu", "--threads", "2", "--no-progress"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return torch.load(out / "last.pt", map_location="cpu", weights_only=True)["model_state"]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _has_avx512() -> bool:
    try:
        return " avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def test_portable_training_ignores_the_instruction_sets_the_libraries_would_use(micro_files, tmp_path):
    """Two training steps of KGL-Net through `kglnet train`, with the portable settings, and again
    with oneDNN and MKL held to AVX2 as on a processor without AVX-512: the same weights, bit for
    bit. Without the portable settings, on an AVX-512 processor, the same change moves them."""
    if not _has_avx512():
        # AVX2 is then what the libraries pick anyway: both runs would take the same code paths and
        # the comparison could not fail (25 s of the suite on a 2-core AMD EPYC without AVX-512)
        pytest.skip("needs an AVX-512 processor, where holding the libraries to AVX2 changes their code paths")
    plain = {k: v for k, v in os.environ.items() if k not in PORTABLE_CPU_ENV}
    avx2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    portable = _train(micro_files, tmp_path / "portable", portable_cpu_environment(plain))
    portable_avx2 = _train(micro_files, tmp_path / "portable_avx2", {**portable_cpu_environment(plain), **avx2})
    assert _same(portable, portable_avx2)
    native = _train(micro_files, tmp_path / "native", plain)
    native_avx2 = _train(micro_files, tmp_path / "native_avx2", {**plain, **avx2})
    assert not _same(native, native_avx2)
    assert not _same(native, portable)
