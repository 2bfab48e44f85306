"""Converters of the published dataset forms: exact pixels, labels, provenance and every error."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from kglnet.data import converters
from kglnet.data.converters import (
    ConversionError,
    convert_aguilera_csv,
    convert_kglnet_bundle,
    convert_os_list,
    convert_vislwir_list,
)
from kglnet.data.pairfile import read_pairs
from kglnet.utils.io import sha256_file

H, W = 128, 160  # test images: x in [32, 128], y in [32, 96] are the usable patch centres


def _image(path: Path, seed: int, colour: bool = False) -> np.ndarray:
    """Write a random 8-bit image (lossless unless .jpg) and return it as written."""
    rng = np.random.default_rng(seed)
    shape = (H, W, 3) if colour else (H, W)
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return image


def _gray(path: Path) -> np.ndarray:
    """The reference grayscale of an image: cv2.cvtColor(BGR2GRAY) on colour files."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image


def _patch(gray: np.ndarray, x: int, y: int) -> np.ndarray:
    return gray[y - 32 : y + 32, x - 32 : x + 32]  # rows y-32..y+31, cols x-32..x+31


def _assert_nothing_written(out: Path) -> None:
    assert not out.exists()
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]
    assert leftovers == []


def _raises(call, out: Path, *fragments: str) -> ConversionError:
    """Run ``call``, expect ConversionError containing every fragment; check no output remains."""
    with pytest.raises(ConversionError) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    _assert_nothing_written(out)
    return info.value


# ------------------------------------------------------------------------------------ bundle


def _bundle(tmp_path: Path, name="country", n=6, ids=(5, 5, 7, 8, 9, 9), seed=0, info=None):
    folder = tmp_path / name
    folder.mkdir()
    sos = np.random.default_rng(seed).integers(0, 256, (n, 1, 64, 64), dtype=np.uint8)
    np.save(folder / f"{name}_sos.npy", sos)
    text = info if info is not None else "".join(f"{i}\n" for i in ids)
    (folder / f"{name}_info.txt").write_text(text)
    return folder, sos


def test_bundle_round_trip(tmp_path):
    folder, sos = _bundle(tmp_path)
    out = tmp_path / "out" / "country.h5"
    summary = convert_kglnet_bundle(folder, out, split="train")
    assert summary == {"pairs": 3, "positives": 2, "negatives": 1, "out": str(out)}
    ps = read_pairs(out)
    np.testing.assert_array_equal(ps.left, sos[0::2, 0])  # patch 2k is visible
    np.testing.assert_array_equal(ps.right, sos[1::2, 0])
    assert ps.label.tolist() == [1, 0, 1]
    assert ps.scene is None
    assert ps.attrs["split"] == "train" and ps.attrs["source"] == "kglnet-bundle"
    assert ps.attrs["inputs_sha256"] == {
        "country_sos.npy": sha256_file(folder / "country_sos.npy"),
        "country_info.txt": sha256_file(folder / "country_info.txt"),
    }


def test_bundle_accepts_savetxt_floats_blank_lines_3d_array_and_scene(tmp_path):
    folder = tmp_path / "field"
    folder.mkdir()
    sos = np.random.default_rng(1).integers(0, 256, (4, 64, 64), dtype=np.uint8)
    np.save(folder / "field_sos.npy", sos)
    np.savetxt(folder / "field_info.txt", np.array([3.0, 3.0, 4.0, 5.0]))  # "3.000...e+00"
    with open(folder / "field_info.txt", "a") as f:
        f.write("\n  \n")
    out = tmp_path / "field.h5"
    convert_kglnet_bundle(folder, out, split="test", scene="field")
    ps = read_pairs(out)
    assert ps.label.tolist() == [1, 0]
    assert ps.scene_names == ["field"] and ps.scene.tolist() == [0, 0]
    np.testing.assert_array_equal(ps.right, sos[1::2])


def test_bundle_errors(tmp_path):
    out = tmp_path / "o.h5"
    _raises(lambda: convert_kglnet_bundle(tmp_path / "nope", out, split="test"), out, "nope", "not found")

    folder, _ = _bundle(tmp_path, name="a")
    (folder / "a_sos.npy").unlink()
    _raises(lambda: convert_kglnet_bundle(folder, out, split="test"), out, "a_sos.npy", "not found", "a_info.txt")

    folder, _ = _bundle(tmp_path, name="b")
    (folder / "b_info.txt").unlink()
    _raises(lambda: convert_kglnet_bundle(folder, out, split="test"), out, "b_info.txt", "not found")

    folder, _ = _bundle(tmp_path, name="c", n=5, ids=range(5))
    _raises(lambda: convert_kglnet_bundle(folder, out, split="test"), out, "c_sos.npy", "odd", "5")

    folder = tmp_path / "d"
    folder.mkdir()
    np.save(folder / "d_sos.npy", np.zeros((4, 1, 32, 32), np.uint8))
    (folder / "d_info.txt").write_text("1\n1\n2\n2\n")
    _raises(lambda: convert_kglnet_bundle(folder, out, split="test"), out, "d_sos.npy", "shape", "[4, 1, 32, 32]")

    np.save(folder / "d_sos.npy", np.zeros((4, 1, 64, 64), np.float32))
    _raises(lambda: convert_kglnet_bundle(folder, out, split="test"), out, "d_sos.npy", "dtype float32")

    np.save(folder / "d_sos.npy", np.zeros((4, 1, 64, 64), np.uint8))
    data = (folder / "d_sos.npy").read_bytes()
    (folder / "d_sos.npy").write_bytes(data[: len(data) // 2])  # truncated download
    _raises(lambda: convert_kglnet_bundle(folder, out, split="test"), out, "d_sos.npy")

    (folder / "d_sos.npy").write_bytes(b"not numpy")
    _raises(lambda: convert_kglnet_bundle(folder, out, split="test"), out, "d_sos.npy", ".npy")

    folder, _ = _bundle(tmp_path, name="e", ids=(1, 1, 2, 2, 3))
    _raises(lambda: convert_kglnet_bundle(folder, out, split="test"), out, "e_info.txt", "5 point ids", "6 patches")

    folder, _ = _bundle(tmp_path, name="f", info="1\n1\n\n2\nx7\n3\n3\n")
    err = _raises(lambda: convert_kglnet_bundle(folder, out, split="test"), out, "f_info.txt:5:", "'x7'")
    assert err.line == 5 and err.path == folder / "f_info.txt"

    folder, _ = _bundle(tmp_path, name="g", info="1\n1\n2.5\n2\n3\n3\n")
    _raises(lambda: convert_kglnet_bundle(folder, out, split="test"), out, "g_info.txt:3:", "not an integer")

    folder, _ = _bundle(tmp_path, name="h")
    with pytest.raises(ValueError, match="split"):
        convert_kglnet_bundle(folder, out, split="training")


def test_bundle_validation_carve_never_shares_a_point(tmp_path):
    # Points 0..39: positives (i, i) for every point, plus negatives linking 2j with 2j+1, so the
    # linked groups are {0,1}, {2,3}, ... (20 groups) and a point appears in up to two pairs.
    ids = []
    for i in range(40):
        ids += [i, i]
    for j in range(20):
        ids += [2 * j, 2 * j + 1]
    folder, sos = _bundle(tmp_path, name="country", n=len(ids), ids=ids)
    train_out, val_out = tmp_path / "train.h5", tmp_path / "val.h5"
    summary = convert_kglnet_bundle(folder, train_out, split="train", val_out=val_out,
                                    val_fraction=0.25, seed=3)
    assert summary["groups"] == 20 and summary["val_groups"] == 5
    train, val = read_pairs(train_out), read_pairs(val_out)
    assert len(train) + len(val) == len(ids) // 2 == summary["pairs"] + summary["val"]["pairs"]
    assert val.attrs["split"] == "val" and train.attrs["split"] == "train"
    assert "5 of 20 groups" in val.attrs["protocol"] and val.attrs["seed"] == 3
    # Every patch identifies its pair index in the bundle; map back to point ids.
    index = {sos[2 * k, 0].tobytes(): k for k in range(len(ids) // 2)}
    def points(ps):
        return {ids[2 * index[l.tobytes()] + s] for l in ps.left for s in (0, 1)}
    val_points, train_points = points(val), points(train)
    assert len(val_points) == 10 and not val_points & train_points
    assert val.positives == 10 and val.negatives == 5  # 5 groups x (2 positives + 1 negative)
    # Seeded: the same seed carves the same pairs, another seed others.
    again = tmp_path / "again.h5"
    convert_kglnet_bundle(folder, tmp_path / "t2.h5", split="train", val_out=again,
                          val_fraction=0.25, seed=3)
    assert np.array_equal(read_pairs(again).left, val.left)
    convert_kglnet_bundle(folder, tmp_path / "t3.h5", split="train", val_out=again,
                          val_fraction=0.25, seed=4)
    assert not np.array_equal(read_pairs(again).left, val.left)


def test_bundle_validation_carve_errors(tmp_path):
    folder, _ = _bundle(tmp_path, name="one", n=4, ids=(1, 1, 1, 1))
    train_out, val_out = tmp_path / "train.h5", tmp_path / "val.h5"
    _raises(lambda: convert_kglnet_bundle(folder, train_out, split="train", val_out=val_out),
            train_out, "one_sos.npy", "one group")
    assert not val_out.exists()
    with pytest.raises(ValueError, match="val_fraction"):
        convert_kglnet_bundle(folder, train_out, split="train", val_out=val_out, val_fraction=1.0)


def test_bundle_carve_writes_both_files_or_neither(tmp_path, monkeypatch):
    ids = [i // 2 for i in range(40)]  # 20 positive pairs, 20 groups
    folder, _ = _bundle(tmp_path, name="country", n=40, ids=ids)
    train_out, val_out = tmp_path / "train.h5", tmp_path / "val.h5"
    real_write = converters.write_pairs
    calls = []

    def failing_second_write(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")  # a full disk while writing train.h5
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(converters, "write_pairs", failing_second_write)
    with pytest.raises(OSError, match="No space"):
        convert_kglnet_bundle(folder, train_out, split="train", val_out=val_out)
    assert calls == [val_out, train_out]
    _assert_nothing_written(train_out)
    _assert_nothing_written(val_out)


def test_failed_conversion_keeps_existing_output(tmp_path):
    folder, sos = _bundle(tmp_path, name="ok")
    out = tmp_path / "set.h5"
    convert_kglnet_bundle(folder, out, split="test")
    before = out.read_bytes()
    bad, _ = _bundle(tmp_path, name="bad", info="1\n")
    with pytest.raises(ConversionError):
        convert_kglnet_bundle(bad, out, split="test")
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".set.h5")] == []


# ----------------------------------------------------------------------------------- Aguilera

HEADER = "type,rgb,rgb_x,rgb_y,nir,nir_x,nir_y\n"


@pytest.fixture()
def nirscene(tmp_path):
    images = tmp_path / "images"
    _image(images / "country" / "0001_rgb.png", 1, colour=True)
    _image(images / "country" / "0001_nir.png", 2)
    _image(images / "country" / "0002_rgb.png", 3, colour=True)
    _image(images / "country" / "0002_nir.png", 4)
    return images


def test_aguilera_pixels_labels_scene_and_hashes(tmp_path, nirscene):
    rows = [
        ("positive", "country/0001_rgb.png", 32, 32, "country/0001_nir.png", 32, 32),  # corner
        ("negative", "country/0001_rgb.png", 128, 96, "country/0001_nir.png", 50, 40),  # far edge
        ("positive", "country/0002_rgb.png", 70, 45, "country/0002_nir.png", 70, 45),
        ("negative", "country\\0002_rgb.png", 33, 90, "country/0002_nir.png", 127, 33),
    ]
    csv_path = tmp_path / "country.csv"
    csv_path.write_text(HEADER + "\n".join(",".join(map(str, r)) for r in rows) + "\n\n")
    out = tmp_path / "country.h5"
    summary = convert_aguilera_csv(csv_path, nirscene, out, scene="country")
    assert summary == {"pairs": 4, "positives": 2, "negatives": 2, "out": str(out)}
    ps = read_pairs(out)
    for i, (_, rgb, rx, ry, nir, nx, ny) in enumerate(rows):
        rgb_gray = _gray(nirscene / rgb.replace("\\", "/"))
        assert rgb_gray.ndim == 2
        np.testing.assert_array_equal(ps.left[i], _patch(rgb_gray, rx, ry))
        np.testing.assert_array_equal(ps.right[i], _patch(_gray(nirscene / nir), nx, ny))
    # The row/column convention itself: pixel (row y-32, col x-32) is the patch's top-left.
    colour = cv2.imread(str(nirscene / "country/0001_rgb.png"))
    gray = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)
    assert ps.left[1][0, 0] == gray[96 - 32, 128 - 32] and ps.left[1][63, 63] == gray[96 + 31, 128 + 31]
    assert ps.label.tolist() == [1, 0, 1, 0]
    assert ps.scene_names == ["country"] and ps.scene.tolist() == [0, 0, 0, 0]
    assert ps.attrs["split"] == "test"
    expected = {"country.csv": sha256_file(csv_path)}
    for name in ("0001_rgb", "0001_nir", "0002_rgb", "0002_nir"):
        expected[f"country/{name}.png"] = sha256_file(nirscene / "country" / f"{name}.png")
    assert ps.attrs["inputs_sha256"] == expected


def test_aguilera_decodes_each_image_once_header_order_and_no_header(tmp_path, nirscene, monkeypatch):
    calls = []
    real = converters.cv2.imdecode
    monkeypatch.setattr(converters.cv2, "imdecode", lambda *a: calls.append(1) or real(*a))
    body = "".join(
        f"{t},country/0001_rgb.png,{40 + i},50,country/0001_nir.png,60,{40 + i}\n"
        for i, t in enumerate(["positive", "NEGATIVE"] * 5)
    )
    csv_path = tmp_path / "plain.csv"
    csv_path.write_text(body)  # no header: columns in the published order
    out = tmp_path / "plain.h5"
    assert convert_aguilera_csv(csv_path, nirscene, out)["pairs"] == 10
    assert len(calls) == 2  # one rgb, one nir image, decoded once each
    plain = read_pairs(out)

    # Same rows under a header naming the columns in another order.
    reordered = tmp_path / "reordered.csv"
    lines = ["nir,nir_x,nir_y,type,rgb,rgb_x,rgb_y"]
    for line in body.splitlines():
        t, rgb, rx, ry, nir, nx, ny = line.split(",")
        lines.append(",".join([nir, nx, ny, t, rgb, rx, ry]))
    reordered.write_text("\n".join(lines) + "\n")
    out2 = tmp_path / "reordered.h5"
    convert_aguilera_csv(reordered, nirscene, out2)
    again = read_pairs(out2)
    np.testing.assert_array_equal(again.left, plain.left)
    np.testing.assert_array_equal(again.right, plain.right)
    assert again.label.tolist() == plain.label.tolist() == [1, 0] * 5


def _csv(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "cat.csv"
    path.write_text(header + body)
    return path


def test_aguilera_errors(tmp_path, nirscene):
    out = tmp_path / "cat.h5"
    good = "positive,country/0001_rgb.png,40,40,country/0001_nir.png,40,40\n"

    def run(csv_path):
        return lambda: convert_aguilera_csv(csv_path, nirscene, out)

    p = _csv(tmp_path, good, header="kind,rgb,rgb_x,rgb_y,nir,nir_x,nir_y\n")
    _raises(run(p), out, "cat.csv:1:", "bad header")

    p = _csv(tmp_path, good + "maybe,country/0001_rgb.png,40,40,country/0001_nir.png,40,40\n")
    _raises(run(p), out, "cat.csv:3:", "unknown type 'maybe'")

    p = _csv(tmp_path, good + "\n" + "positive,country/0009_rgb.png,40,40,country/0001_nir.png,40,40\n")
    err = _raises(run(p), out, "cat.csv:4:", str(nirscene / "country/0009_rgb.png"), "not found")
    assert err.line == 4

    for x, y, coord in ((31, 40, "x=31"), (129, 40, "x=129"), (40, 31, "y=31"), (40, 97, "y=97")):
        p = _csv(tmp_path, good + f"negative,country/0001_rgb.png,40,40,country/0001_nir.png,{x},{y}\n")
        _raises(run(p), out, "cat.csv:3:", coord, "outside image", "0001_nir.png", "160x128")

    (nirscene / "country" / "broken.png").write_bytes(b"\x89PNG garbage")
    p = _csv(tmp_path, good + "positive,country/broken.png,40,40,country/0001_nir.png,40,40\n")
    _raises(run(p), out, "broken.png", "cannot decode")

    cv2.imwrite(str(nirscene / "country" / "deep.png"), np.zeros((H, W), np.uint16))
    p = _csv(tmp_path, good + "positive,country/0001_rgb.png,40,40,country/deep.png,40,40\n")
    _raises(run(p), out, "deep.png", "uint16", "8-bit")

    p = _csv(tmp_path, good + "positive,country/0001_rgb.png,40,40,country/0001_nir.png,40\n")
    _raises(run(p), out, "cat.csv:3:", "expected 7 fields")

    p = _csv(tmp_path, good + "positive,country/0001_rgb.png,40.5,40,country/0001_nir.png,40,40\n")
    _raises(run(p), out, "cat.csv:3:", "rgb_x", "40.5")

    p = _csv(tmp_path, "\n\n")
    _raises(run(p), out, "cat.csv", "no pairs")

    _raises(lambda: convert_aguilera_csv(tmp_path / "missing.csv", nirscene, out), out, "missing.csv", "not found")


# ----------------------------------------------------------------------------------- VIS-LWIR


@pytest.fixture()
def lwir_root(tmp_path):
    root = tmp_path / "lwir"
    _image(root / "rgb1.png", 10, colour=True)
    _image(root / "lwir1.png", 11)
    _image(root / "rgb2.bmp", 12, colour=True)
    _image(root / "lwir2.tif", 13)
    _image(root / "lwir2.jpg", 14)  # .jpg precedes .tif in the search order
    (root / "rgb1.txt").write_text("40.4\t50.6\t7.0\n\n100\t60\t3\n")
    (root / "lwir1.txt").write_text("41\t51\t7\n99.5\t60.2\t3\n128\t96\t2\n")  # rint(99.5) = 100
    (root / "rgb2.txt").write_text("32\t32\t1\n")
    (root / "lwir2.txt").write_text("33\t34\t1\n")
    return root


def test_vislwir_pixels_labels_extension_search_and_hashes(tmp_path, lwir_root):
    lst = tmp_path / "test.txt"
    lst.write_text("img,lwir_idx,rgb_idx,label\n1,0,0,1\n\n1,2,1,0\n2,0,0,1\n1,1,1,1\n")
    out = tmp_path / "lwir_test.h5"
    summary = convert_vislwir_list(lst, lwir_root, out)
    assert summary == {"pairs": 4, "positives": 3, "negatives": 1, "out": str(out)}
    ps = read_pairs(out)
    rgb1, lwir1 = _gray(lwir_root / "rgb1.png"), _gray(lwir_root / "lwir1.png")
    rgb2, lwir2 = _gray(lwir_root / "rgb2.bmp"), _gray(lwir_root / "lwir2.jpg")
    expected = [
        (_patch(rgb1, 40, 51), _patch(lwir1, 41, 51)),
        (_patch(rgb1, 100, 60), _patch(lwir1, 128, 96)),
        (_patch(rgb2, 32, 32), _patch(lwir2, 33, 34)),
        (_patch(rgb1, 100, 60), _patch(lwir1, 100, 60)),
    ]
    for i, (left, right) in enumerate(expected):
        np.testing.assert_array_equal(ps.left[i], left)
        np.testing.assert_array_equal(ps.right[i], right)
    assert ps.label.tolist() == [1, 0, 1, 1]
    hashes = ps.attrs["inputs_sha256"]
    assert set(hashes) == {
        "test.txt", "rgb1.png", "lwir1.png", "rgb2.bmp", "lwir2.jpg",
        "rgb1.txt", "lwir1.txt", "rgb2.txt", "lwir2.txt",
    }
    assert hashes["lwir2.jpg"] == sha256_file(lwir_root / "lwir2.jpg")
    assert hashes["test.txt"] == sha256_file(lst)


def test_vislwir_index_base_and_templates(tmp_path, lwir_root):
    sub = lwir_root / "kp"
    sub.mkdir()
    (sub / "v001.csv").write_text("40\t50\t1\n60\t70\t1\n")
    (sub / "t001.csv").write_text("45\t55\t1\n")
    lst = tmp_path / "l.txt"
    lst.write_text("1 1 2 0\n")  # whitespace-separated, no header, 1-based indices
    out = tmp_path / "l.h5"
    convert_vislwir_list(
        lst, lwir_root, out, rgb_keypoints="kp/v{i:03d}.csv", lwir_keypoints="kp/t{i:03d}.csv",
        index_base=1, split="train",
    )
    ps = read_pairs(out)
    np.testing.assert_array_equal(ps.left[0], _patch(_gray(lwir_root / "rgb1.png"), 60, 70))
    np.testing.assert_array_equal(ps.right[0], _patch(_gray(lwir_root / "lwir1.png"), 45, 55))
    assert ps.label.tolist() == [0] and ps.attrs["split"] == "train"


def test_vislwir_errors(tmp_path, lwir_root):
    out = tmp_path / "o.h5"
    lst = tmp_path / "list.txt"

    def run(text, **kw):
        lst.write_text(text)
        return lambda: convert_vislwir_list(lst, lwir_root, out, **kw)

    _raises(run("1,0,0,1\n1,0,2,1\n"), out, "list.txt:2:", "rgb_idx 2 out of range", "rgb1.txt", "2 keypoints")
    _raises(run("1,3,0,1\n"), out, "list.txt:1:", "lwir_idx 3", "lwir1.txt")
    _raises(run("1,0,1,0\n", index_base=1), out, "list.txt:1:", "lwir_idx 0 out of range")
    _raises(run("1,0,0,2\n"), out, "list.txt:1:", "bad label '2'")
    _raises(run("1,0,0,yes\n"), out, "list.txt:1:", "bad label")
    _raises(run("img,lwir,rgb,label\n1,0,0,1\n"), out, "list.txt:1:", "bad header")
    _raises(run("1,0,0\n"), out, "list.txt:1:", "expected 4 fields")
    _raises(run("x,0,0,1\n"), out, "list.txt:1:", "bad header")  # first line neither data nor header
    _raises(run("1,0,0,1\nx,0,0,1\n"), out, "list.txt:2:", "img 'x' is not an integer")

    (lwir_root / "rgb3.txt").write_text("40\t40\t1\n")
    (lwir_root / "lwir3.txt").write_text("40\t40\t1\n")
    _image(lwir_root / "rgb3.png", 20)
    err = _raises(run("1,0,0,1\n3,0,0,1\n"), out, "list.txt:2:", "lwir3", "not found", "tried")
    assert err.line == 2

    _raises(run("4,0,0,1\n"), out, "list.txt:1:", "keypoint file", "rgb4.txt", "not found")

    (lwir_root / "rgb5.txt").write_text("40\t40\t1\n\n40\tabc\t1\n")
    _image(lwir_root / "rgb5.png", 21)
    _image(lwir_root / "lwir5.png", 22)
    (lwir_root / "lwir5.txt").write_text("40\t40\t1\n")
    _raises(run("5,0,0,1\n"), out, "rgb5.txt:3:", "y 'abc'")

    (lwir_root / "rgb5.txt").write_text("40\t40\t1\n\n140\t40\t1\n")
    _raises(
        run("5,0,0,1\n\n5,0,1,1\n"), out, "list.txt:3:", "x=140", "outside image", "rgb5.txt:3", "rgb5.png"
    )


# ----------------------------------------------------------------------------------------- OS


@pytest.fixture()
def os_root(tmp_path):
    root = tmp_path / "os"
    _image(root / "f1" / "opt3.png", 30, colour=True)
    _image(root / "f1" / "sar3.png", 31)
    _image(root / "f2" / "opt7.png", 32)
    _image(root / "f2" / "sar7.png", 33)
    return root


def test_os_pixels_labels_and_hashes(tmp_path, os_root):
    lst = tmp_path / "os_test.txt"
    lst.write_text(
        "folder,img,opt_x,opt_y,sar_x,sar_y,label\n"
        "f1,3,40,50,40,50,1\n"
        "f1,3,40.4,50.5,120,90,0\n"  # rint: (40, 50)
        "\n"
        "f2,7,128,96,32,32,1\n"
    )
    out = tmp_path / "os_test.h5"
    summary = convert_os_list(lst, os_root, out)
    assert summary == {"pairs": 3, "positives": 2, "negatives": 1, "out": str(out)}
    ps = read_pairs(out)
    opt3, sar3 = _gray(os_root / "f1/opt3.png"), _gray(os_root / "f1/sar3.png")
    opt7, sar7 = _gray(os_root / "f2/opt7.png"), _gray(os_root / "f2/sar7.png")
    expected = [
        (_patch(opt3, 40, 50), _patch(sar3, 40, 50)),
        (_patch(opt3, 40, 50), _patch(sar3, 120, 90)),
        (_patch(opt7, 128, 96), _patch(sar7, 32, 32)),
    ]
    for i, (left, right) in enumerate(expected):
        np.testing.assert_array_equal(ps.left[i], left)
        np.testing.assert_array_equal(ps.right[i], right)
    assert ps.label.tolist() == [1, 0, 1]
    assert ps.attrs["inputs_sha256"] == {
        "os_test.txt": sha256_file(lst),
        **{k: sha256_file(os_root / k) for k in ("f1/opt3.png", "f1/sar3.png", "f2/opt7.png", "f2/sar7.png")},
    }
    assert ps.attrs["name_templates"] == {
        "optical_image": "{folder}/opt{img}.png", "sar_image": "{folder}/sar{img}.png"
    }


def test_os_custom_templates_without_header(tmp_path):
    root = tmp_path / "osd"
    _image(root / "a" / "opt" / "9.bmp", 40)
    _image(root / "a" / "sar" / "9.bmp", 41)
    lst = tmp_path / "l.txt"
    lst.write_text("a,9,60,60,61,62,1\n")
    out = tmp_path / "l.h5"
    convert_os_list(lst, root, out, optical_image="{folder}/opt/{img}", sar_image="{folder}/sar/{img}")
    ps = read_pairs(out)
    np.testing.assert_array_equal(ps.right[0], _patch(_gray(root / "a/sar/9.bmp"), 61, 62))


def test_os_errors(tmp_path, os_root):
    out = tmp_path / "o.h5"
    lst = tmp_path / "os.txt"

    def run(text):
        lst.write_text(text)
        return lambda: convert_os_list(lst, os_root, out)

    good = "f1,3,40,50,40,50,1\n"
    _raises(run(good + "f1,4,40,50,40,50,1\n"), out, "os.txt:2:", str(os_root / "f1" / "opt4.png"), "not found")
    _raises(run(good + "f1,3,40,50,40,50,-1\n"), out, "os.txt:2:", "bad label '-1'")
    _raises(run(good + "f1,3,40,50,20,50,0\n"), out, "os.txt:2:", "x=20", "outside image", "sar3.png")
    _raises(run(good + "f1,3,40,50,40,nan,0\n"), out, "os.txt:2:", "sar_y", "not finite")
    _raises(run(good + "f1,3,40,50,40,z,0\n"), out, "os.txt:2:", "sar_y 'z'")
    _raises(run("folder,image,opt_x,opt_y,sar_x,sar_y,label\n" + good), out, "os.txt:1:", "bad header")
    _raises(run(good + "f1,3,40,50\n"), out, "os.txt:2:", "expected 7 fields")
    _raises(run("\n"), out, "os.txt", "no pairs")
    (os_root / "f1" / "opt5.png").write_bytes(b"")
    _image(os_root / "f1" / "sar5.png", 1)
    _raises(run(good + "f1,5,40,50,40,50,1\n"), out, "opt5.png", "cannot decode")


def test_conversion_error_format(tmp_path):
    e = ConversionError(tmp_path / "a.csv", "bad thing", 3)
    assert str(e) == f"{tmp_path / 'a.csv'}:3: bad thing" and isinstance(e, ValueError)
    assert re.fullmatch(r".*b\.npy: x", str(ConversionError("b.npy", "x")))
