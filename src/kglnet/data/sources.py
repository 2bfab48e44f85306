"""The three real cross-spectral image sources: where they come from and how they are checked.

The imagery itself is never part of the project (licences, size). What *is* part of the project is
each source's manifest (``path<TAB>bytes<TAB>sha256`` per file, in ``kglnet/data/manifests``): the
facts that let :func:`fetch_source` obtain the exact files of a pinned commit and prove it did.

Files are taken, in order of preference, from

1. the destination itself, when a file there already has the right size and sha256 (reruns are free);
2. a local mirror folder laid out ``<mirror>/<source name>/<manifest path>`` (argument
   ``mirror``, else the environment variable ``KGLNET_MIRROR``), for offline machines and CI;
3. ``raw.githubusercontent.com`` at the pinned commit.

Every file copied or downloaded is written under a temporary name, checked, and only then renamed,
so nothing under a final name is ever partial or corrupt: a later run may trust any file whose
hash matches and needs no other bookkeeping. A mirror file with the wrong hash is an error, not a
reason to fall back to the network: a corrupt mirror must be repaired, not papered over.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.resources
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Iterable

from tqdm import tqdm

from kglnet.utils.io import atomic_path, atomic_write_json, sha256_file

MIRROR_ENV = "KGLNET_MIRROR"
MIRROR_CONFIG_KEY = "mirror"
MARKER_NAME = ".kglnet-verified.json"
RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"

# How many paths an error message lists before it only counts the rest: enough to act on, short
# enough that the message stays readable for a 900-file source.
_LIST_LIMIT = 10
_CHUNK = 1 << 20
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class SourceError(RuntimeError):
    """A source's files cannot be obtained or do not match its manifest; the message says which."""


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a source: its path relative to the source root, size in bytes and sha256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Source:
    """A public repository pinned at one commit, with the committed manifest of the files used.

    ``manifest_file`` overrides the committed manifest (``kglnet/data/manifests/<name>.tsv``);
    it exists so tests and users can describe a source of their own without touching the package.
    """

    name: str
    repo: str
    commit: str
    licence: str
    manifest_file: str | os.PathLike | None = field(default=None, compare=False, repr=False)

    def manifest_bytes(self) -> bytes:
        """The manifest exactly as committed; its sha256 identifies the file set in summaries."""
        if self.manifest_file is not None:
            return Path(self.manifest_file).read_bytes()
        # importlib.resources, not a path relative to __file__, so the manifests are found in
        # wheels and zip installs too (they must be listed as package data for that).
        resource = importlib.resources.files("kglnet.data").joinpath(f"manifests/{self.name}.tsv")
        try:
            return resource.read_bytes()
        except FileNotFoundError as exc:
            raise SourceError(
                f"source {self.name!r}: manifest kglnet/data/manifests/{self.name}.tsv is missing "
                "from the installed package (is it listed as package data?)"
            ) from exc

    def manifest(self) -> list[ManifestEntry]:
        """The manifest entries, parsed and validated."""
        origin = str(self.manifest_file) if self.manifest_file is not None else f"manifests/{self.name}.tsv"
        return parse_manifest(self.manifest_bytes().decode("utf-8"), origin=origin)

    def url(self, path: str) -> str:
        """Raw download URL of ``path`` at the pinned commit (paths contain spaces: quoted)."""
        return RAW_URL.format(repo=self.repo, commit=self.commit, path=urllib.parse.quote(path, safe="/"))


SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        Source(
            name="visnir-registration",
            repo="YuChuang1205/VIS-NIR-registration-dataset",
            commit="af400e46600cbbf49bdf851403001658ba5d9ec6",
            licence="none stated; EPFL RGB-NIR Scene images, research use "
            "(cite Brown & Susstrunk, CVPR 2011)",
        ),
        Source(
            name="roadscene",
            repo="hanna-xu/RoadScene",
            commit="ab71420f8fc96396eeb97eecf3694909b3feb656",
            licence="none stated; FLIR ADAS frames (cite FusionDN / U2Fusion)",
        ),
        Source(
            name="3mos",
            repo="3M-OS/3MOS",
            commit="84585de974783a51a0bff97f22bca85811b3f7c8",
            licence="Apache-2.0",
        ),
    )
}


def parse_manifest(text: str, origin: str = "<manifest>") -> list[ManifestEntry]:
    """Parse ``path<TAB>bytes<TAB>sha256`` lines; every defect raises :class:`SourceError`.

    Paths are checked to stay inside the source root: a manifest decides where files are written,
    so ``..`` or an absolute path would let it write anywhere.
    """
    entries: list[ManifestEntry] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{origin} line {number}"
        fields = line.split("\t")
        if len(fields) != 3:
            raise SourceError(f"{where}: expected 'path<TAB>bytes<TAB>sha256', got {line!r}")
        path, size_text, digest = fields
        pure = PurePosixPath(path)
        if not path or pure.is_absolute() or ".." in pure.parts or "\\" in path or path != str(pure):
            raise SourceError(f"{where}: path {path!r} must be a plain relative POSIX path")
        if path in seen:
            raise SourceError(f"{where}: path {path!r} is listed twice")
        try:
            size = int(size_text)
        except ValueError:
            size = -1
        if size < 0:
            raise SourceError(f"{where}: size {size_text!r} is not a non-negative integer")
        if not _SHA256_RE.fullmatch(digest):
            raise SourceError(f"{where}: {digest!r} is not a lowercase hex sha256")
        seen.add(path)
        entries.append(ManifestEntry(path=path, size=size, sha256=digest))
    if not entries:
        raise SourceError(f"{origin}: manifest lists no files")
    return entries


def get_source(name: str) -> Source:
    """The :class:`Source` called ``name``; an unknown name lists the known ones."""
    try:
        return SOURCES[name]
    except KeyError:
        raise SourceError(f"unknown source {name!r}; known sources: {', '.join(sorted(SOURCES))}") from None


def resolve_mirror(mirror: str | os.PathLike | None) -> Path | None:
    """The mirror folder to use: the explicit argument, else ``$KGLNET_MIRROR``, else ``None``.

    An empty string counts as unset, so ``KGLNET_MIRROR=`` switches an inherited mirror off.
    """
    if mirror is not None and str(mirror) != "":
        return Path(mirror).expanduser()
    env = os.environ.get(MIRROR_ENV, "")
    return Path(env).expanduser() if env else None


def summary(source: Source, entries: list[ManifestEntry] | None = None) -> dict[str, Any]:
    """What a verified copy is: deterministic (no timestamps), so an unchanged rerun rewrites it
    byte for byte and workflow tools see no change."""
    entries = source.manifest() if entries is None else entries
    return {
        "source": source.name,
        "repo": source.repo,
        "commit": source.commit,
        "files": len(entries),
        "bytes": sum(entry.size for entry in entries),
        "manifest_sha256": hashlib.sha256(source.manifest_bytes()).hexdigest(),
    }


def _matches(path: Path, entry: ManifestEntry) -> bool:
    """True when ``path`` is a file with the manifest's size and sha256 (size first: it is free)."""
    try:
        if not path.is_file() or path.stat().st_size != entry.size:
            return False
    except OSError:
        return False
    return sha256_file(path) == entry.sha256


def _listing(items: Iterable[str], limit: int = _LIST_LIMIT) -> str:
    """Indented lines for the first ``limit`` items, then a count of the rest."""
    items = list(items)
    lines = [f"  {item}" for item in items[:limit]]
    if len(items) > limit:
        lines.append(f"  ... and {len(items) - limit} more")
    return "\n".join(lines)


class _Mismatch(Exception):
    """A copied or downloaded file's bytes differ from the manifest (raised inside atomic_path so
    the temporary file is deleted)."""

    def __init__(self, size: int, digest: str):
        super().__init__(size, digest)
        self.size = size
        self.digest = digest


def _write_checked(reader: BinaryIO, final: Path, entry: ManifestEntry, progress_bar: Any) -> None:
    """Stream ``reader`` into a temporary file beside ``final``, hashing the very bytes written,
    and rename it onto ``final`` only when size and sha256 match the manifest."""
    digest = hashlib.sha256()
    size = 0
    with atomic_path(final) as tmp:
        with open(tmp, "wb") as out:
            for block in iter(lambda: reader.read(_CHUNK), b""):
                out.write(block)
                digest.update(block)
                size += len(block)
                progress_bar.update(len(block))
        if size != entry.size or digest.hexdigest() != entry.sha256:
            raise _Mismatch(size, digest.hexdigest())


def _is_connection_failure(exc: BaseException) -> bool:
    """Network unreachable / DNS / timeout, as opposed to one missing file (HTTP 404).

    After a connection failure every other download would fail the same way, each after
    ``timeout`` seconds, so the remaining files are reported missing without trying.
    """
    if isinstance(exc, urllib.error.HTTPError):
        return False
    return isinstance(exc, (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError))


def fetch_source(
    name: str,
    dest: str | os.PathLike,
    *,
    mirror: str | os.PathLike | None = None,
    allow_download: bool = True,
    progress: bool = True,
    timeout: float = 30,
) -> dict[str, Any]:
    """Make ``dest/<path>`` for every manifest entry of source ``name`` and verify it.

    See the module docstring for where files come from. Writes ``dest/.kglnet-verified.json``
    with :func:`summary` and returns that dict. Raises one :class:`SourceError` listing every
    corrupt mirror or download file (with expected and actual sha256) and every file that could
    not be obtained, with the two ways to supply them.
    """
    source = get_source(name)
    entries = source.manifest()
    root = Path(dest)
    mirror_root = resolve_mirror(mirror)
    if mirror_root is not None and not mirror_root.is_dir():
        # A mirror that was named but does not exist is a typo or an unmounted disk: saying so
        # beats silently downloading hundreds of files.
        raise SourceError(
            f"mirror folder {mirror_root} does not exist (from "
            f"{'the mirror argument' if mirror is not None and str(mirror) != '' else '$' + MIRROR_ENV})"
        )
    marker = root / MARKER_NAME
    marker_cleared = False

    corrupt: list[str] = []
    missing: list[str] = []
    download_error: str | None = None
    offline = not allow_download

    bar = tqdm(
        total=sum(e.size for e in entries), unit="B", unit_scale=True,
        desc=f"fetch {name}", disable=not progress, leave=False,
    )
    try:
        for entry in entries:
            final = root / entry.path
            if _matches(final, entry):
                bar.update(entry.size)
                continue
            if not marker_cleared:
                # dest is about to change: until it verifies again it must not claim to be verified.
                marker.unlink(missing_ok=True)
                marker_cleared = True

            if mirror_root is not None:
                mirror_file = mirror_root / source.name / entry.path
                if mirror_file.is_file():
                    try:
                        with open(mirror_file, "rb") as reader:
                            _write_checked(reader, final, entry, bar)
                    except _Mismatch as bad:
                        corrupt.append(
                            f"mirror file {mirror_file}: expected {entry.size} bytes sha256 {entry.sha256}, "
                            f"got {bad.size} bytes sha256 {bad.digest}"
                        )
                    continue
                # A partial mirror (e.g. only some folders) is legitimate: fall through to download.

            if offline:
                missing.append(entry.path)
                continue
            url = source.url(entry.path)
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    _write_checked(response, final, entry, bar)
            except _Mismatch as bad:
                corrupt.append(
                    f"download {url}: expected {entry.size} bytes sha256 {entry.sha256}, "
                    f"got {bad.size} bytes sha256 {bad.digest}"
                )
            except (OSError, http.client.HTTPException, ValueError) as exc:
                # URLError and HTTPError are OSErrors; HTTPException covers a connection cut mid-body.
                missing.append(entry.path)
                if download_error is None:
                    download_error = f"{url}: {exc}"
                if _is_connection_failure(exc):
                    offline = True
    finally:
        bar.close()

    if corrupt or missing:
        raise SourceError(_fetch_error(source, root, mirror_root, allow_download, corrupt, missing, download_error))

    result = summary(source, entries)
    atomic_write_json(marker, result)
    return result


def _fetch_error(
    source: Source,
    root: Path,
    mirror_root: Path | None,
    allow_download: bool,
    corrupt: list[str],
    missing: list[str],
    download_error: str | None,
) -> str:
    """One message for everything that went wrong, with what to do about it."""
    parts = [f"source {source.name!r} into {root}:"]
    if corrupt:
        parts.append(f"{len(corrupt)} file(s) do not match the manifest (nothing was written for them):")
        parts.append(_listing(corrupt))
    if missing:
        if mirror_root is None:
            mirror_note = "no mirror was given"
        else:
            mirror_note = f"not in mirror {mirror_root / source.name}"
        if not allow_download:
            net_note = "download disabled"
        elif download_error is not None:
            net_note = f"download failed: {download_error}"
        else:
            net_note = "download not attempted"
        parts.append(f"{len(missing)} of the source's files could not be obtained ({mirror_note}; {net_note}):")
        parts.append(_listing(missing))
        parts.append(
            "Supply them in either way:\n"
            f"  - set the config key '{MIRROR_CONFIG_KEY}' or the environment variable {MIRROR_ENV} to a "
            f"folder laid out like <mirror>/{source.name}/<path> (e.g. a copy of ../shared/data), or\n"
            f"  - allow network access to github.com (raw.githubusercontent.com) for "
            f"{source.repo}@{source.commit}."
        )
    return "\n".join(parts)


def verify_source(name: str, root: str | os.PathLike) -> dict[str, Any]:
    """Re-check every manifest file under ``root`` (size and sha256); return :func:`summary`.

    Raises one :class:`SourceError` naming every missing or mismatching file. Files under ``root``
    that the manifest does not list are ignored (a mirror keeps its MANIFEST.tsv beside the data).
    """
    source = get_source(name)
    entries = source.manifest()
    base = Path(root)
    problems: list[str] = []
    for entry in entries:
        path = base / entry.path
        if not path.is_file():
            problems.append(f"{entry.path}: missing")
            continue
        size = path.stat().st_size
        if size != entry.size:
            problems.append(f"{entry.path}: {size} bytes, expected {entry.size}")
            continue
        digest = sha256_file(path)
        if digest != entry.sha256:
            problems.append(f"{entry.path}: sha256 {digest}, expected {entry.sha256}")
    if problems:
        raise SourceError(
            f"source {source.name!r} under {base}: {len(problems)} of {len(entries)} file(s) "
            f"missing or not matching the manifest:\n{_listing(problems)}"
        )
    return summary(source, entries)


__all__ = [
    "MARKER_NAME",
    "MIRROR_CONFIG_KEY",
    "MIRROR_ENV",
    "ManifestEntry",
    "SOURCES",
    "Source",
    "SourceError",
    "fetch_source",
    "get_source",
    "parse_manifest",
    "resolve_mirror",
    "summary",
    "verify_source",
]
