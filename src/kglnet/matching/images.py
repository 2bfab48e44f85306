"""Image reading for matching: any size and bit depth in, grey uint8 out; atomic PNG writing.

:func:`read_image` reads a file with ``cv2.IMREAD_UNCHANGED`` and returns grey uint8 [H, W]:

- 8-bit grey: returned as stored.
- colour (BGR, 3 channels): OpenCV's BGR->grey weights (0.114 B + 0.587 G + 0.299 R), on the
  stored depth (so an 8-bit colour file gives exactly ``kglnet.data.mini.read_gray``'s pixels).
- an alpha channel (grey+alpha, BGRA) is composited over white (the full scale of the depth:
  255, 65535, or 1.0 for float images) rather than dropped, as ``read_gray`` does.
- any depth other than 8 bits (16-bit unsigned, 16-bit signed, 32-bit float, ...): choice:
  stretched linearly by the image's **own** finite min and max to 0..255 (rounded), after the
  grey conversion. Thermal and SAR 16-bit images usually fill a narrow band of the 16-bit range
  (e.g. 7000-8000 radiometric counts), which a fixed /257 would turn into a nearly constant
  image; the price is that two 16-bit images of one scene are not on a common absolute scale,
  which the patch descriptors do not need. A constant image comes out all zero; non-finite
  pixels of a float image read as the minimum.

Errors are ``ValueError`` whose message starts with the file name (missing, unreadable,
truncated JPEG/PNG, unsupported channel count or dtype, smaller than one 64x64 patch), the
convention of :func:`kglnet.data.mini.read_gray` whose checks this reuses.

:func:`write_png` writes an image to a temporary name beside the target and renames it when
complete (:func:`kglnet.utils.io.atomic_path`).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from kglnet.data.mini import _check_complete  # truncated JPEG / PNG detection, shared with read_gray
from kglnet.data.pairfile import PATCH_SIZE
from kglnet.utils.io import atomic_path

__all__ = ["read_image", "to_gray_uint8", "check_gray_image", "write_png"]


def _full_scale(dtype: np.dtype) -> float:
    """White of an image depth: the integer maximum, or 1.0 for floating point."""
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0


def _stretch(image: np.ndarray) -> np.ndarray:
    """Any-depth grey [H, W] -> uint8 by its own finite min / max (constant image -> zeros)."""
    x = image.astype(np.float64, copy=False)
    finite = np.isfinite(x)
    if not finite.any():
        return np.zeros(x.shape, np.uint8)
    lo, hi = float(x[finite].min()), float(x[finite].max())
    if hi <= lo:
        return np.zeros(x.shape, np.uint8)
    x = np.where(finite, x, lo)
    return np.clip(np.rint((x - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def to_gray_uint8(image: np.ndarray, name: str = "image") -> np.ndarray:
    """A decoded image array (grey [H,W] / [H,W,1], grey+alpha [H,W,2], BGR [H,W,3], BGRA
    [H,W,4]; uint8, uint16, int16, float32 ...) -> grey uint8 [H, W] by the rules of the module
    docstring. ``name`` is the prefix of error messages (the file name)."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name}: expected a numpy image array, got {type(image).__name__}")
    if image.dtype == np.bool_ or not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ValueError(f"{name}: unsupported pixel type {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3:
        channels = image.shape[2]
        if channels not in (2, 3, 4):
            raise ValueError(f"{name}: unsupported image with {channels} channels")
        work = image
        if work.dtype not in (np.uint8, np.uint16, np.float32):
            work = work.astype(np.float32)  # the depths cv2.cvtColor accepts
        if channels in (2, 4):
            white = _full_scale(image.dtype)
            alpha = image[:, :, -1:].astype(np.float32) / np.float32(white)
            colour = work[:, :, :-1].astype(np.float32) * alpha + np.float32(white) * (1.0 - alpha)
            if image.dtype in (np.uint8, np.uint16):
                colour = np.clip(np.rint(colour), 0, white).astype(image.dtype)
            work = colour if channels == 4 else colour[:, :, 0]
        if work.ndim == 3:
            work = cv2.cvtColor(np.ascontiguousarray(work), cv2.COLOR_BGR2GRAY)
        image = work
    elif image.ndim != 2:
        raise ValueError(f"{name}: unsupported image shape {list(image.shape)}")
    if image.dtype != np.uint8:
        image = _stretch(image)
    return np.ascontiguousarray(image)


def check_gray_image(image: np.ndarray, name: str = "image", min_size: int = PATCH_SIZE) -> np.ndarray:
    """Raise ValueError naming ``name`` unless ``image`` is uint8 [H, W] with H, W >= ``min_size``."""
    if not isinstance(image, np.ndarray) or image.ndim != 2 or image.dtype != np.uint8:
        desc = f"{image.dtype} {list(image.shape)}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"{name}: expected a grey uint8 [H, W] image, got {desc}")
    h, w = image.shape
    if h < min_size or w < min_size:
        raise ValueError(f"{name}: image is {w}x{h} (WxH), smaller than a {min_size}x{min_size} patch")
    return image


def read_image(path: str | os.PathLike, min_size: int = PATCH_SIZE) -> np.ndarray:
    """Read an image file of any size and bit depth as grey uint8 [H, W] (see the module docstring).

    Raises:
        ValueError: naming the file, if it is missing, unreadable, truncated, of an unsupported
            layout, or smaller than ``min_size`` in either dimension.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read image ({exc.strerror or exc})") from None
    if not data:
        raise ValueError(f"{path}: unreadable image (the file is empty)")
    _check_complete(path, data)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ValueError(f"{path}: unreadable image (OpenCV: {str(exc).strip().splitlines()[-1]})") from None
    if image is None:
        raise ValueError(f"{path}: unreadable image (OpenCV cannot decode it)")
    return check_gray_image(to_gray_uint8(image, str(path)), str(path), min_size)


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Encode ``image`` (uint8 grey [H,W] or BGR [H,W,3]) as PNG and write it atomically."""
    ok, buffer = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode a PNG of shape {list(image.shape)} {image.dtype}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.tobytes())
    return Path(path)
