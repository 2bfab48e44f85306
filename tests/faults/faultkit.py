"""Helpers of the fault-injection suite (imported by its test modules as ``faultkit``)."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sys
from pathlib import Path
from typing import Iterator, Sequence

import h5py

#: Training settings of the micro runs (3 steps per epoch).
MICRO = {"batch_size": 4, "eval_batch_size": 64, "seed": 5}


def h5_dataset_offset(path: Path, name: str) -> tuple[int, int]:
    """(byte offset, stored size) of the first chunk of dataset ``name``: where to flip a bit."""
    with h5py.File(path, "r") as f:
        ds = f[name]
        if ds.chunks is None:
            return ds.id.get_offset(), ds.id.get_storage_size()
        info = ds.id.get_chunk_info(0)
        return info.byte_offset, info.size


def flip_bit(path: Path, offset: int, bit: int = 3) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes); temporary files included."""
    root = Path(root)
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def changed(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    """Files of ``before`` that are gone or different in ``after``, and files new in ``after``."""
    gone = [k for k in before if after.get(k) != before[k]]
    new = [k for k in after if k not in before]
    return sorted(gone + new)


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


@contextlib.contextmanager
def disk_full(limit: int) -> Iterator[None]:
    """Simulate a disk that fills up: inside the block, writing beyond ``limit`` bytes of any file
    fails part-way (RLIMIT_FSIZE; the write returns EFBIG, "File too large", instead of raising
    SIGXFSZ), in Python, torch's and HDF5's writers alike."""
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def temp_files(root: Path) -> list[str]:
    """Temporary files of kglnet.utils.io.atomic_path (``.<name>.<random><suffix>.tmp``) under root."""
    root = Path(root)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob(".*.tmp")) if root.exists() else []


def cli(argv: Sequence[str], capsys) -> tuple[int, str]:
    """Run ``kglnet <argv>`` in this process; (exit status, stderr). An exception the command
    does not handle counts as exit status 1 with its traceback on stderr, as in a real process."""
    import traceback

    from kglnet.cli import main

    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse
        rc = exc.code
    except Exception:
        rc = 1
        print(traceback.format_exc(), file=sys.stderr)
    return rc, capsys.readouterr().err


BIN = Path(sys.executable).parent  # kglnet, snakemake and dvc of this environment


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env
