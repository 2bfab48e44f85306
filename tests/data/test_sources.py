"""Real-image sources: fetch from a mirror or the network, keep verified files, never expose a bad one.

Most tests use a fake three-file source in tmp_path (one path with spaces, two subfolders) so they
are fast and need no network; the last ones check the committed manifests against the shared
mirror ../shared/data when this machine has it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from kglnet.data.sources import (
    MARKER_NAME,
    SOURCES,
    Source,
    SourceError,
    fetch_source,
    parse_manifest,
    resolve_mirror,
    verify_source,
)

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
FAKE_FILES = {
    "README.md": b"fake source\n",
    "sub dir/b c.bin": bytes(range(256)) * 3,
    "sub dir/deeper/c.dat": b"x" * 1000 + b"end",
}
FAKE_REPO = "owner/fake"
FAKE_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tree(root: Path) -> set[str]:
    """Every file under root, relative POSIX paths (temporary files included: they must not remain)."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _flip_byte(path: Path, offset: int = 5) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A registered source 'fake' with its manifest, a mirror laid out <mirror>/fake/<path>, and
    an empty dest. Network access fails the test unless a test installs its own urlopen."""
    mirror = tmp_path / "mirror"
    for rel, data in FAKE_FILES.items():
        target = mirror / "fake" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    tsv = tmp_path / "fake.tsv"
    tsv.write_text("".join(f"{rel}\t{len(data)}\t{_sha(data)}\n" for rel, data in FAKE_FILES.items()))
    source = Source(name="fake", repo=FAKE_REPO, commit=FAKE_COMMIT, licence="test", manifest_file=tsv)
    monkeypatch.setitem(SOURCES, "fake", source)
    monkeypatch.delenv("KGLNET_MIRROR", raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError(f"unexpected network access: {args}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return {"mirror": mirror, "dest": tmp_path / "dest", "tsv": tsv, "source": source}


def _serve(monkeypatch, files: dict[str, bytes]) -> list[str]:
    """Install a fake urlopen serving ``files`` by raw URL; returns the list of requested URLs."""
    requested: list[str] = []
    prefix = f"https://raw.githubusercontent.com/{FAKE_REPO}/{FAKE_COMMIT}/"

    def urlopen(url, timeout=None):
        requested.append(url)
        assert url.startswith(prefix) and " " not in url
        rel = urllib.parse.unquote(url[len(prefix):])
        if rel not in files:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        return io.BytesIO(files[rel])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return requested


def test_committed_manifests_load_as_package_data():
    assert set(SOURCES) == {"visnir-registration", "roadscene", "3mos"}
    for source in SOURCES.values():
        assert source.manifest_file is None  # read through importlib.resources, not a test path
        entries = source.manifest()
        assert len(entries) > 20
        assert len(source.commit) == 40 and int(source.commit, 16) >= 0
    assert any(" " in e.path for e in SOURCES["visnir-registration"].manifest())


def test_fetch_from_mirror_copies_and_verifies(fake):
    result = fetch_source("fake", fake["dest"], mirror=fake["mirror"], progress=False)
    assert _tree(fake["dest"]) == set(FAKE_FILES) | {MARKER_NAME}  # no temporary files left behind
    for rel, data in FAKE_FILES.items():
        assert (fake["dest"] / rel).read_bytes() == data
    assert result == {
        "source": "fake",
        "repo": FAKE_REPO,
        "commit": FAKE_COMMIT,
        "files": 3,
        "bytes": sum(len(d) for d in FAKE_FILES.values()),
        "manifest_sha256": _sha(fake["tsv"].read_bytes()),
    }
    assert json.loads((fake["dest"] / MARKER_NAME).read_text()) == result
    assert verify_source("fake", fake["dest"]) == result


def test_second_fetch_keeps_verified_files(fake):
    fetch_source("fake", fake["dest"], mirror=fake["mirror"], progress=False)
    old = 1_000_000_000_000_000_000
    for rel in FAKE_FILES:
        os.utime(fake["dest"] / rel, ns=(old, old))
    # Without mirror or network it can only succeed by keeping what is there.
    fetch_source("fake", fake["dest"], mirror=None, allow_download=False, progress=False)
    for rel in FAKE_FILES:
        assert (fake["dest"] / rel).stat().st_mtime_ns == old


def test_corrupt_mirror_file_is_reported_and_never_placed(fake):
    bad = fake["mirror"] / "fake" / "sub dir" / "b c.bin"
    _flip_byte(bad)
    with pytest.raises(SourceError) as info:
        # allow_download stays True: a corrupt mirror must not silently fall back to the network
        # (the fixture's urlopen fails the test if it is called).
        fetch_source("fake", fake["dest"], mirror=fake["mirror"], progress=False)
    message = str(info.value)
    assert str(bad) in message
    assert _sha(FAKE_FILES["sub dir/b c.bin"]) in message  # expected
    assert _sha(bad.read_bytes()) in message  # actual
    # The good files were placed; the bad one, its temporary file and the marker were not.
    assert _tree(fake["dest"]) == {"README.md", "sub dir/deeper/c.dat"}


def test_truncated_dest_file_is_replaced_from_mirror(fake):
    fetch_source("fake", fake["dest"], mirror=fake["mirror"], progress=False)
    target = fake["dest"] / "sub dir" / "deeper" / "c.dat"
    target.write_bytes(FAKE_FILES["sub dir/deeper/c.dat"][:100])
    with pytest.raises(SourceError, match="c.dat"):
        verify_source("fake", fake["dest"])
    # A fetch that cannot repair dest must not leave the old "verified" marker claiming it is fine.
    with pytest.raises(SourceError, match="1 of the source's files"):
        fetch_source("fake", fake["dest"], allow_download=False, progress=False)
    assert not (fake["dest"] / MARKER_NAME).exists()
    fetch_source("fake", fake["dest"], mirror=fake["mirror"], progress=False)
    assert target.read_bytes() == FAKE_FILES["sub dir/deeper/c.dat"]
    assert _tree(fake["dest"]) == set(FAKE_FILES) | {MARKER_NAME}


def _assert_missing_message(message: str) -> None:
    assert "3 of the source's files could not be obtained" in message
    for rel in FAKE_FILES:
        assert rel in message
    assert "KGLNET_MIRROR" in message
    assert "config key 'mirror'" in message
    assert f"{FAKE_REPO}@{FAKE_COMMIT}" in message and "github.com" in message


def test_offline_without_mirror_and_download_disabled(fake):
    with pytest.raises(SourceError) as info:
        fetch_source("fake", fake["dest"], allow_download=False, progress=False)
    _assert_missing_message(str(info.value))
    assert "download disabled" in str(info.value)
    assert not fake["dest"].exists() or _tree(fake["dest"]) == set()


def test_failed_download_raises_one_error_and_stops_trying(fake, monkeypatch):
    calls = []

    def offline(url, timeout=None):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(SourceError) as info:
        fetch_source("fake", fake["dest"], progress=False, timeout=0.1)
    _assert_missing_message(str(info.value))
    assert "name resolution" in str(info.value)
    # Offline is detected once, not paid for with one timeout per file.
    assert len(calls) == 1
    assert not fake["dest"].exists() or _tree(fake["dest"]) == set()


def test_download_quotes_paths_and_verifies(fake, monkeypatch):
    requested = _serve(monkeypatch, FAKE_FILES)
    result = fetch_source("fake", fake["dest"], progress=False)
    assert result["files"] == 3
    assert f"https://raw.githubusercontent.com/{FAKE_REPO}/{FAKE_COMMIT}/sub%20dir/b%20c.bin" in requested
    for rel, data in FAKE_FILES.items():
        assert (fake["dest"] / rel).read_bytes() == data


def test_corrupt_download_is_an_error_and_not_placed(fake, monkeypatch):
    served = dict(FAKE_FILES)
    served["README.md"] = b"<html>captive portal</html>"
    _serve(monkeypatch, served)
    with pytest.raises(SourceError) as info:
        fetch_source("fake", fake["dest"], progress=False)
    assert "README.md" in str(info.value) and _sha(served["README.md"]) in str(info.value)
    assert "README.md" not in _tree(fake["dest"])


def test_partial_mirror_falls_back_to_download(fake, monkeypatch):
    (fake["mirror"] / "fake" / "README.md").unlink()
    requested = _serve(monkeypatch, FAKE_FILES)
    fetch_source("fake", fake["dest"], mirror=fake["mirror"], progress=False)
    assert len(requested) == 1 and requested[0].endswith("/README.md")
    assert (fake["dest"] / "README.md").read_bytes() == FAKE_FILES["README.md"]


def test_mirror_from_environment(fake, monkeypatch, tmp_path):
    monkeypatch.setenv("KGLNET_MIRROR", str(fake["mirror"]))
    fetch_source("fake", fake["dest"], allow_download=False, progress=False)
    assert _tree(fake["dest"]) == set(FAKE_FILES) | {MARKER_NAME}
    # An explicit argument beats the environment.
    empty = tmp_path / "empty-mirror"
    empty.mkdir()
    assert resolve_mirror(empty) == empty
    with pytest.raises(SourceError):
        fetch_source("fake", tmp_path / "dest2", mirror=empty, allow_download=False, progress=False)


def test_resolve_mirror(monkeypatch, tmp_path):
    monkeypatch.delenv("KGLNET_MIRROR", raising=False)
    assert resolve_mirror(None) is None
    monkeypatch.setenv("KGLNET_MIRROR", "")
    assert resolve_mirror(None) is None
    monkeypatch.setenv("KGLNET_MIRROR", str(tmp_path))
    assert resolve_mirror(None) == tmp_path
    assert resolve_mirror(tmp_path / "x") == tmp_path / "x"


def test_nonexistent_mirror_is_an_error(fake, tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        fetch_source("fake", fake["dest"], mirror=tmp_path / "typo", progress=False)


def test_verify_source_names_every_bad_file(fake):
    fetch_source("fake", fake["dest"], mirror=fake["mirror"], progress=False)
    _flip_byte(fake["dest"] / "sub dir" / "b c.bin")
    (fake["dest"] / "README.md").unlink()
    with pytest.raises(SourceError) as info:
        verify_source("fake", fake["dest"])
    message = str(info.value)
    assert "2 of 3" in message
    assert "sub dir/b c.bin" in message and "README.md: missing" in message
    assert "sub dir/deeper/c.dat" not in message


@pytest.mark.parametrize(
    "line",
    [
        "../escape.txt\t1\t" + "0" * 64,
        "/abs.txt\t1\t" + "0" * 64,
        "a.txt\tten\t" + "0" * 64,
        "a.txt\t1\tnothex",
        "a.txt\t1",
    ],
)
def test_parse_manifest_rejects_bad_lines(line):
    with pytest.raises(SourceError, match="line 1"):
        parse_manifest(line + "\n", origin="t.tsv")


def test_parse_manifest_rejects_duplicates_and_empty():
    line = "a.txt\t1\t" + "0" * 64 + "\n"
    with pytest.raises(SourceError, match="twice"):
        parse_manifest(line + line)
    with pytest.raises(SourceError, match="no files"):
        parse_manifest("\n")


def test_unknown_source_lists_known():
    with pytest.raises(SourceError, match="3mos"):
        fetch_source("nope", "/nonexistent", progress=False)


# --- the real mirror (../shared/data), present on CI and the development machine ----------------

needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"{SHARED_DATA} not present")


@needs_shared
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_committed_manifest_equals_shared(name):
    shared = SHARED_DATA / name / "MANIFEST.tsv"
    if not shared.is_file():
        pytest.skip(f"{shared} not present")
    committed = SOURCES[name].manifest_bytes().decode("utf-8").splitlines()
    assert committed == shared.read_text(encoding="utf-8").splitlines()


@needs_shared
def test_real_3mos_mirror_verifies():
    result = verify_source("3mos", SHARED_DATA / "3mos")
    # 24 figure PNGs plus the repository's LICENSE and README.md.
    assert result["files"] == 26 and result["commit"] == SOURCES["3mos"].commit


@needs_shared
def test_fetch_real_files_from_shared_mirror(tmp_path, monkeypatch):
    # Two real files (one path with spaces) under a filtered manifest: the real layout and hashes,
    # without copying the whole data set. The copies live only in tmp_path.
    real = SOURCES["visnir-registration"]
    picked = [e for e in real.manifest() if e.path.startswith("VIS-NIR registration dataset/country/0000_")]
    assert len(picked) == 2
    tsv = tmp_path / "filtered.tsv"
    tsv.write_text("".join(f"{e.path}\t{e.size}\t{e.sha256}\n" for e in picked))
    monkeypatch.setitem(
        SOURCES, real.name,
        Source(name=real.name, repo=real.repo, commit=real.commit, licence=real.licence, manifest_file=tsv),
    )
    monkeypatch.setattr(urllib.request, "urlopen", pytest.fail)
    result = fetch_source(real.name, tmp_path / "dest", mirror=SHARED_DATA, progress=False)
    assert result["files"] == 2
    assert _tree(tmp_path / "dest") == {e.path for e in picked} | {MARKER_NAME}
