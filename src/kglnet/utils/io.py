"""File helpers: atomic writes and checksums.

Every output of the workflow is written to a temporary name beside its final path and renamed
only when complete, so an interrupted run never leaves a half-written file that a rerun trusts.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The temporary file lives in the same directory so the final ``os.replace`` is atomic on POSIX.
    On any exception the temporary file is removed and the exception propagates.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.name}.", suffix=suffix if suffix is not None else final.suffix + ".tmp",
        dir=final.parent,
    )
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates the file 0600; give the output the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically, UTF-8 whatever the locale."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


class DeferredErrorFile(io.RawIOBase):
    """A binary file that remembers its first failed write instead of raising it.

    For C libraries that do not survive a failed write: with HDF5 2.0 (h5py 3.16), a write that
    fails while a file is being closed (a full disk) makes the later ``H5Fclose`` crash the whole
    process with a segmentation fault. Given this object instead of a path (h5py's file-object
    driver), the library sees every write succeed; the first ``OSError`` is kept, the bytes after
    it are dropped (the file is discarded anyway), and :meth:`raise_deferred` raises it once the
    library has closed cleanly. The bytes written are the same as through a path.
    """

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self.path = Path(path)
        self._handle = open(self.path, "w+b", buffering=0)
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._handle.readinto(buffer)

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if self.error is None:
            try:
                done = 0
                while done < len(view):  # a raw write may be partial
                    done += self._handle.write(view[done:])
            except OSError as exc:
                self.error = exc
        return len(view)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self._handle.truncate(size)
            except OSError as exc:
                self.error = exc
        return self.tell() if size is None else size

    def close(self) -> None:
        if not self.closed:
            try:
                self._handle.close()
            except OSError as exc:
                self.error = self.error or exc
        super().close()

    def raise_deferred(self, what: str | os.PathLike | None = None) -> None:
        """Raise the first failed write as ``OSError`` naming ``what`` (default: this file)."""
        if self.error is not None:
            exc = self.error
            raise OSError(exc.errno, f"could not write {what or self.path}: {exc.strerror or exc}") from exc


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()
