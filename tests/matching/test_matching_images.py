"""kglnet.matching.images: any-depth reading to grey uint8, clear errors naming the file, PNG writing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kglnet.data.mini import read_gray
from kglnet.matching.images import read_image, to_gray_uint8, write_png


def _write(path, image):
    assert cv2.imwrite(str(path), image)
    return path


def test_8bit_grey_is_returned_as_stored(tmp_path, texture):
    path = _write(tmp_path / "grey.png", texture)
    out = read_image(path)
    assert out.dtype == np.uint8 and np.array_equal(out, texture)


def test_16bit_grey_is_stretched_by_its_own_min_and_max(tmp_path):
    rng = np.random.default_rng(1)
    image = rng.integers(7000, 8001, size=(70, 90)).astype(np.uint16)   # a narrow band, as thermal counts
    image[0, 0], image[0, 1] = 7000, 8000
    path = _write(tmp_path / "thermal16.png", image)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    out = read_image(path)
    expected = np.rint((image.astype(np.float64) - 7000) * 255.0 / 1000).astype(np.uint8)
    assert out.dtype == np.uint8 and out.shape == (70, 90)
    assert np.array_equal(out, expected)
    assert out.min() == 0 and out.max() == 255


def test_constant_16bit_image_reads_as_zeros(tmp_path):
    path = _write(tmp_path / "flat16.png", np.full((64, 64), 12345, np.uint16))
    assert not read_image(path).any()


def test_8bit_colour_uses_opencv_grey_weights_like_read_gray(tmp_path, texture):
    bgr = np.dstack([texture, 255 - texture, texture // 2])
    path = _write(tmp_path / "colour.png", bgr)
    out = read_image(path)
    assert np.array_equal(out, cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    assert np.array_equal(out, read_gray(path))


def test_16bit_colour_is_converted_then_stretched(tmp_path):
    rng = np.random.default_rng(2)
    bgr = rng.integers(0, 65536, size=(64, 80, 3)).astype(np.uint16)
    path = _write(tmp_path / "colour16.tif", bgr)
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float64)
    expected = np.rint((grey - grey.min()) * 255.0 / (grey.max() - grey.min())).astype(np.uint8)
    assert np.array_equal(read_image(path), expected)


def test_alpha_is_composited_over_white(tmp_path):
    bgra = np.zeros((64, 64, 4), np.uint8)
    bgra[:, :32, 3] = 255            # left half: opaque black
    path = _write(tmp_path / "alpha.png", bgra)  # right half: fully transparent
    out = read_image(path)
    assert (out[:, :32] == 0).all() and (out[:, 32:] == 255).all()
    assert np.array_equal(out, read_gray(path))


def test_arrays_of_other_layouts():
    grey_alpha = np.zeros((64, 64, 2), np.uint8)
    grey_alpha[..., 0], grey_alpha[..., 1] = 100, 255
    assert (to_gray_uint8(grey_alpha) == 100).all()
    floats = np.linspace(-1.0, 3.0, 64 * 64, dtype=np.float32).reshape(64, 64)
    floats[5, 5] = np.nan
    out = to_gray_uint8(floats)
    assert out[0, 0] == 0 and out[-1, -1] == 255 and out[5, 5] == 0
    with pytest.raises(ValueError, match="5 channels"):
        to_gray_uint8(np.zeros((64, 64, 5), np.uint8), "x.tif")


def test_too_small_image_names_the_file(tmp_path):
    path = _write(tmp_path / "small.png", np.zeros((63, 200), np.uint8))
    with pytest.raises(ValueError, match=r"small\.png: image is 200x63 \(WxH\), smaller than a 64x64 patch"):
        read_image(path)


@pytest.mark.parametrize("name, content, problem", [
    ("garbage.bin", b"not an image at all", "unreadable image"),
    ("empty.png", b"", "unreadable image"),
    ("truncated.png", None, "truncated PNG"),
])
def test_unreadable_files_name_the_file(tmp_path, texture, name, content, problem):
    path = tmp_path / name
    if content is None:
        ok, buf = cv2.imencode(".png", texture)
        content = buf.tobytes()[: len(buf) // 2]
    path.write_bytes(content)
    with pytest.raises(ValueError, match=problem) as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "nowhere.png"
    with pytest.raises(ValueError, match="cannot read image") as info:
        read_image(path)
    assert str(info.value).startswith(str(path))


def test_write_png_is_atomic_and_round_trips(tmp_path, texture):
    colour = np.dstack([texture, texture, 255 - texture])
    out = write_png(tmp_path / "sub" / "pic.png", colour)
    assert np.array_equal(cv2.imread(str(out), cv2.IMREAD_UNCHANGED), colour)
    assert sorted(p.name for p in out.parent.iterdir()) == ["pic.png"]   # no temporary left behind
