"""Hand-crafted baselines scored on the same patch pairs as the learned models.

Each baseline maps ``(left [N,H,W], right [N,H,W])`` to a distance ``float [N]`` (lower = more
similar), so both FPR95 definitions apply: the descriptor one on the distance and the metric one on
``-distance``.

* ``ncc``: 1 - zero-mean normalised cross-correlation over the whole patch (range 0..2).
* ``sift``: Euclidean distance between L2-normalised OpenCV SIFT descriptors computed at the patch
  centre with a fixed scale and orientation (range 0..sqrt(2) for the non-negative SIFT histograms).
* ``lghd``: Euclidean distance between Log-Gabor Histogram Descriptors (Aguilera, Sappa & Toledo,
  ICIP 2015) of the whole patch: 4 scales x 4x4 cells x 6-bin histograms of the index of the
  strongest-responding log-Gabor orientation, 384-D (range 0..2*sqrt(2)).
* ``gisift``: Euclidean distance between gradient-invariant SIFT descriptors (Firmenich, Brown &
  Suesstrunk, ICIP 2011): our SIFT baseline's frame and sampling with gradient orientations folded to
  [0, pi), so a contrast reversal between the spectra leaves the descriptor unchanged, 128-D
  (range 0..sqrt(2)).
"""

from __future__ import annotations

import functools
from typing import Callable

import cv2
import numpy as np

__all__ = [
    "HANDCRAFTED",
    "GISIFT_DIM",
    "LGHD_DIM",
    "SIFT_KEYPOINT_SIZE",
    "gisift_descriptors",
    "gisift_distance",
    "lghd_descriptors",
    "lghd_distance",
    "ncc_distance",
    "sift_descriptors",
    "sift_descriptors_per_patch",
    "sift_distance",
]

PATCH_SIZE = 64

# OpenCV's SIFT descriptor is a 4x4 grid of orientation histograms, each bin ``3 * size / 2`` pixels
# wide, so the grid spans ``6 * size`` pixels; by trilinear interpolation every pixel within
# 2.5 bins of the centre (``3.75 * size`` pixels) contributes. With size 8 the grid spans 48 px and
# pixels less than 30 px from the centre (32, 32) contribute, i.e. rows/cols 3..61 (their gradients
# read 2..62): practically the whole 64x64 patch, while no sample ever falls outside it. (A size of 64/6 would make the grid span the
# patch exactly, but then its interpolation skirt reaches 40 px and part of the window would lie
# outside the patch, where samples are silently dropped.) Because all samples lie inside the patch,
# the mosaic below gives exactly the per-patch descriptor. The Gaussian window (sigma = half the grid
# width, 24 px) still weights the centre most.
SIFT_KEYPOINT_SIZE = 8.0
_CENTRE = PATCH_SIZE // 2

# Margin of each mosaic cell. OpenCV smooths the input with a Gaussian of sigma
# sqrt(1.6^2 - 0.5^2) ~= 1.52 (kernel radius 6 for float images) before taking gradients, using
# BORDER_REFLECT_101. Padding each cell by reflect-101 (numpy's "reflect") with at least that radius
# reproduces the smoothing of a lone patch exactly, so neighbouring cells never leak into each other.
_MOSAIC_MARGIN = 6
# Cells per mosaic side. Measured on this 2-core machine: OpenCV's compute() builds the Gaussian
# scale space over every pixel of the image, so the cost is per pixel, not per call; small mosaics
# (4x4) match or slightly beat one call per patch, bigger ones get slower (cache misses).
_MOSAIC_GRID = 4
# Pairs per NCC chunk: keeps the float64 temporaries (~ 2 * chunk * H * W * 8 bytes, 8 MiB for
# 64x64) cache-friendly; measured 2-6x faster than 4096-pair chunks.
_NCC_CHUNK = 256

_sift = None


def _get_sift():
    # One detector object per process: creating it is cheap, but reusing it avoids per-call work.
    global _sift
    if _sift is None:
        _sift = cv2.SIFT_create()
    return _sift


def _check_pair(left, right) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(left)
    b = np.asarray(right)
    if a.ndim != 3 or b.ndim != 3:
        raise ValueError(f"left and right must be [N,H,W] patch stacks, got {a.shape} and {b.shape}")
    if a.shape != b.shape:
        raise ValueError(f"left and right must have the same shape, got {a.shape} and {b.shape}")
    return a, b


def ncc_distance(left, right) -> np.ndarray:
    """1 - zero-mean normalised cross-correlation of each pair over the whole patch.

    Args:
        left: [N,H,W] patches (any real dtype, typically uint8).
        right: [N,H,W] patches, same shape.

    Returns:
        float64 [N] in [0, 2]: 0 for identical (or affinely brighter/contrastier) patches, 1 for
        uncorrelated ones, 2 for contrast-inverted ones. A flat (zero-variance) patch has no defined
        correlation; it is given correlation 0 (distance 1), i.e. treated as uninformative.
    """
    a, b = _check_pair(left, right)
    n = a.shape[0]
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, _NCC_CHUNK):
        x = a[start:start + _NCC_CHUNK].reshape(-1, a.shape[1] * a.shape[2]).astype(np.float64)
        y = b[start:start + _NCC_CHUNK].reshape(-1, b.shape[1] * b.shape[2]).astype(np.float64)
        x -= x.mean(axis=1, keepdims=True)
        y -= y.mean(axis=1, keepdims=True)
        num = np.einsum("ij,ij->i", x, y)
        den = np.sqrt(np.einsum("ij,ij->i", x, x) * np.einsum("ij,ij->i", y, y))
        # Relative tolerance: after mean removal a flat patch leaves only rounding noise.
        flat = den <= 1e-12 * max(1.0, float(den.max(initial=0.0)))
        corr = np.zeros_like(num)
        np.divide(num, den, out=corr, where=~flat)
        # Rounding can push |corr| a hair above 1; keep the distance inside [0, 2].
        out[start:start + x.shape[0]] = 1.0 - np.clip(corr, -1.0, 1.0)
    return out


def _check_patches(patches, why: str) -> np.ndarray:
    p = np.asarray(patches)
    if p.ndim != 3 or p.shape[1:] != (PATCH_SIZE, PATCH_SIZE):
        raise ValueError(f"patches must be [N,{PATCH_SIZE},{PATCH_SIZE}], got shape {p.shape}")
    if p.dtype != np.uint8:
        # Silently rescaling floats could hide a bug upstream (a [0, 1] patch would look flat).
        raise ValueError(f"patches must be uint8 ({why}), got {p.dtype}")
    return np.ascontiguousarray(p)


def _check_sift_patches(patches) -> np.ndarray:
    # OpenCV SIFT only accepts 8-bit images.
    return _check_patches(patches, "OpenCV SIFT needs 8-bit images")


def _l2_normalise(desc: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(desc, axis=1, keepdims=True)
    # A flat patch has an all-zero SIFT descriptor; leave it zero instead of dividing by 0.
    return (desc / np.maximum(norm, 1e-12)).astype(np.float32)


def sift_descriptors_per_patch(patches) -> np.ndarray:
    """Reference implementation of :func:`sift_descriptors`: one OpenCV call per patch.

    Args:
        patches: uint8 [N,64,64].

    Returns:
        float32 [N,128], L2-normalised (all-zero rows for flat patches).
    """
    p = _check_sift_patches(patches)
    sift = _get_sift()
    kp = [cv2.KeyPoint(float(_CENTRE), float(_CENTRE), SIFT_KEYPOINT_SIZE, 0.0)]
    out = np.empty((p.shape[0], 128), dtype=np.float32)
    for i in range(p.shape[0]):
        kps, desc = sift.compute(p[i], kp)
        if desc is None or len(kps) != 1:
            raise RuntimeError("OpenCV SIFT dropped the centre keypoint")
        out[i] = desc[0]
    return _l2_normalise(out)


def sift_descriptors(patches) -> np.ndarray:
    """SIFT descriptor of each patch, at the centre (32, 32) with fixed size and angle 0.

    The orientation is fixed (no dominant-orientation assignment) because the patches are already
    aligned, and the size is fixed (:data:`SIFT_KEYPOINT_SIZE` = 8, see its comment) so the
    descriptor window covers practically the whole patch without sampling outside it.

    Patches are tiled, 16 at a time, into a 4x4 mosaic whose cells are reflect-101 padded by 6 px,
    and OpenCV is called once per mosaic with one keypoint per cell; the result equals the
    per-patch computation (:func:`sift_descriptors_per_patch`), see ``_MOSAIC_MARGIN``.

    Args:
        patches: uint8 [N,64,64].

    Returns:
        float32 [N,128], L2-normalised (all-zero rows for flat patches).
    """
    p = _check_sift_patches(patches)
    n = p.shape[0]
    out = np.empty((n, 128), dtype=np.float32)
    if n == 0:
        return out
    sift = _get_sift()
    m, g = _MOSAIC_MARGIN, _MOSAIC_GRID
    cell = PATCH_SIZE + 2 * m
    per_mosaic = g * g
    # Keypoints for a full mosaic, in row-major cell order (cell k at row k // g, column k % g).
    kps_full = [
        cv2.KeyPoint(float((k % g) * cell + m + _CENTRE), float((k // g) * cell + m + _CENTRE),
                     SIFT_KEYPOINT_SIZE, 0.0)
        for k in range(per_mosaic)
    ]
    for start in range(0, n, per_mosaic):
        chunk = p[start:start + per_mosaic]
        k = chunk.shape[0]
        # [per_mosaic, cell, cell]; a short last chunk leaves its unused cells black (no keypoints).
        padded = np.zeros((per_mosaic, cell, cell), dtype=np.uint8)
        padded[:k] = np.pad(chunk, ((0, 0), (m, m), (m, m)), mode="reflect")
        # Cell k goes to mosaic row k // g, column k % g.
        mosaic = padded.reshape(g, g, cell, cell).transpose(0, 2, 1, 3).reshape(g * cell, g * cell)
        kps_out, desc = sift.compute(mosaic, kps_full[:k])
        if desc is None or len(kps_out) != k:
            raise RuntimeError("OpenCV SIFT dropped keypoints in the mosaic")
        out[start:start + k] = desc
    return _l2_normalise(out)


def sift_distance(left, right) -> np.ndarray:
    """Euclidean distance between the L2-normalised SIFT descriptors of each pair.

    Args:
        left: uint8 [N,64,64].
        right: uint8 [N,64,64].

    Returns:
        float64 [N], in [0, sqrt(2)] (SIFT histograms are non-negative).
    """
    a, b = _check_pair(left, right)
    da = sift_descriptors(a).astype(np.float64)
    db = sift_descriptors(b).astype(np.float64)
    return np.linalg.norm(da - db, axis=1)


# ---------------------------------------------------------------- LGHD

# Log-Gabor filter bank of the LGHD authors' reference code (github.com/ngunsu/LGHD,
# FeatureDescriptor.compute_lghd): Kovesi's phasecong3(im, 4, 6, 3, 'mult', 1.6, 'sigmaOnf', 0.75).
# These differ from phasecong3's own defaults (mult 2.1, sigmaOnf 0.55); they are what the published
# LGHD numbers were computed with, and their wavelengths (3, 4.8, 7.7, 12.3 px) suit a 64 px patch
# (with mult 2.1 the coarsest would be 27.8 px, almost half the patch).
LGHD_SCALES = 4
LGHD_ORIENTATIONS = 6
LGHD_MIN_WAVELENGTH = 3.0
LGHD_MULT = 1.6
LGHD_SIGMA_ON_F = 0.75
# Kovesi's lowpassfilter([rows, cols], 0.45, 15), applied to every radial component as phasecong3 does.
_LGHD_LOWPASS_CUTOFF = 0.45
_LGHD_LOWPASS_ORDER = 15
LGHD_GRID = 4  # 4x4 sub-regions of 16x16 px
LGHD_DIM = LGHD_SCALES * LGHD_GRID * LGHD_GRID * LGHD_ORIENTATIONS  # 384
# Patches per LGHD chunk: one scale's responses are chunk x 6 x 64 x 64 complex64 (6 MiB for 32).
# Measured on this 2-core machine: 16-32 is ~1.2-1.5x faster than 128-256 (cache-resident buffers).
_LGHD_CHUNK = 32


@functools.lru_cache(maxsize=2)
def _log_gabor_bank(size: int) -> np.ndarray:
    """Frequency-domain log-Gabor filters [scales, orientations, size, size] (float32, read-only).

    Built as in Kovesi's phasecong3: frequencies normalised to +/-0.5 cycles/px in FFT order, polar
    angle ``atan2(-fy, fx)`` (anticlockwise), radial part ``exp(-log(r/fo)^2 / (2 log(sigmaOnf)^2))``
    times the low-pass Butterworth (cutoff 0.45, order 15), zero at DC, and the raised-cosine angular
    spread ``(1 + cos(min(|dtheta| * norient / 2, pi))) / 2`` around ``angle = o * pi / norient``.
    """
    f = np.fft.fftfreq(size)
    fx, fy = f[None, :], f[:, None]
    radius = np.hypot(fx, fy)
    lowpass = 1.0 / (1.0 + (radius / _LGHD_LOWPASS_CUTOFF) ** (2 * _LGHD_LOWPASS_ORDER))
    radius[0, 0] = 1.0  # avoid log(0); the DC value is zeroed below
    theta = np.arctan2(-fy, fx)
    sin_t, cos_t = np.sin(theta), np.cos(theta)
    bank = np.empty((LGHD_SCALES, LGHD_ORIENTATIONS, size, size), dtype=np.float32)
    for s in range(LGHD_SCALES):
        fo = 1.0 / (LGHD_MIN_WAVELENGTH * LGHD_MULT ** s)
        radial = np.exp(-np.log(radius / fo) ** 2 / (2 * np.log(LGHD_SIGMA_ON_F) ** 2)) * lowpass
        radial[0, 0] = 0.0
        for o in range(LGHD_ORIENTATIONS):
            angle = o * np.pi / LGHD_ORIENTATIONS
            ds = sin_t * np.cos(angle) - cos_t * np.sin(angle)
            dc = cos_t * np.cos(angle) + sin_t * np.sin(angle)
            dtheta = np.minimum(np.abs(np.arctan2(ds, dc)) * LGHD_ORIENTATIONS / 2, np.pi)
            bank[s, o] = radial * (np.cos(dtheta) + 1) / 2
    bank.setflags(write=False)
    return bank


def _periodic_fft2(u: np.ndarray) -> np.ndarray:
    """FFT of the periodic component of each image (Moisan's periodic-plus-smooth decomposition, as
    in Kovesi's perfft2): removes the spurious edges that the FFT's wrap-around would otherwise put
    along the patch border. ``u``: float [n, H, W] -> complex [n, H, W]."""
    rows, cols = u.shape[1:]
    s = np.zeros_like(u)
    s[:, 0, :] = u[:, 0, :] - u[:, -1, :]
    s[:, -1, :] = -s[:, 0, :]
    s[:, :, 0] += u[:, :, 0] - u[:, :, -1]
    s[:, :, -1] -= u[:, :, 0] - u[:, :, -1]
    cy = np.cos(2 * np.pi * np.arange(rows) / rows)[:, None]
    cx = np.cos(2 * np.pi * np.arange(cols) / cols)[None, :]
    denom = 2.0 * (2.0 - cx - cy)
    denom[0, 0] = 1.0
    smooth = np.fft.fft2(s) / denom.astype(u.dtype)
    smooth[:, 0, 0] = 0.0
    return np.fft.fft2(u) - smooth


def lghd_descriptors(patches) -> np.ndarray:
    """Log-Gabor Histogram Descriptor (LGHD) of each whole patch.

    C. A. Aguilera, A. D. Sappa, R. Toledo, "LGHD: a feature descriptor for matching across
    non-linear intensity variations", ICIP 2015; details from the authors' reference code
    (github.com/ngunsu/LGHD, ``lghd.m``), which builds on Kovesi's phasecong3 filter bank.

    Choices:

    * Filter bank (:func:`_log_gabor_bank`): 4 scales x 6 orientations of frequency-domain log-Gabor
      filters, minimum wavelength 3 px, scale multiplier 1.6, sigmaOnf 0.75 (the reference code's
      ``phasecong3(im, 4, 6, 3, 'mult', 1.6, 'sigmaOnf', 0.75)``, not phasecong3's defaults 2.1 and
      0.55), raised-cosine angular spread of phasecong3 (non-zero within +/-60 degrees), Butterworth
      low-pass (0.45, order 15), no DC.
    * Support: the whole 64x64 patch (fixed scale, no orientation normalisation). The reference code
      filters the whole image and cuts a 101x101 window; we only have the patch, so it is filtered on
      its own, using the FFT of its periodic component (Moisan / Kovesi's perfft2) so the FFT's
      wrap-around does not create edges along the patch border.
    * Per scale: each pixel takes the index of the orientation with the largest response amplitude
      (ties: the lowest index); the patch is split into 4x4 sub-regions of 16x16 px and each gets a
      6-bin count histogram of those indices -> 96 values, ordered (row, column, orientation).
    * Normalisation: each scale's 96-vector is L2-normalised separately, as in the reference code,
      and the 4 scales are concatenated (finest first) -> 384-D, norm 2.
    * A flat (constant) patch has no filter response at all; it gets an all-zero descriptor (the
      reference code would count every pixel as orientation 1).

    Args:
        patches: uint8 [N,64,64].

    Returns:
        float32 [N,384].
    """
    p = _check_patches(patches, "LGHD expects 8-bit patches like the other baselines")
    n = p.shape[0]
    out = np.zeros((n, LGHD_DIM), dtype=np.float32)
    if n == 0:
        return out
    bank = _log_gabor_bank(PATCH_SIZE)
    cell_px = PATCH_SIZE // LGHD_GRID
    rows = np.arange(PATCH_SIZE) // cell_px
    # Histogram slot of each pixel, before adding the orientation index: cell * 6.
    cell_code = ((rows[:, None] * LGHD_GRID + rows[None, :]) * LGHD_ORIENTATIONS).astype(np.int64)
    per_scale = LGHD_GRID * LGHD_GRID * LGHD_ORIENTATIONS
    hist = np.zeros((n, LGHD_SCALES, per_scale), dtype=np.float64)
    for start in range(0, n, _LGHD_CHUNK):
        chunk = p[start:start + _LGHD_CHUNK].astype(np.float32)
        k = chunk.shape[0]
        spectrum = _periodic_fft2(chunk)[:, None]  # [k, 1, H, W] complex64
        offset = (np.arange(k, dtype=np.int64) * per_scale)[:, None, None]
        for s in range(LGHD_SCALES):
            response = np.fft.ifft2(spectrum * bank[s][None])  # [k, 6, H, W]
            amplitude2 = response.real ** 2 + response.imag ** 2  # argmax of |.|^2 == of |.|
            index = amplitude2.argmax(axis=1)  # [k, H, W]
            slots = (offset + cell_code[None] + index).ravel()
            hist[start:start + k, s] = np.bincount(slots, minlength=k * per_scale).reshape(k, per_scale)
    norm = np.linalg.norm(hist, axis=2, keepdims=True)
    hist /= np.maximum(norm, 1e-12)
    flat = p.reshape(n, -1).min(axis=1) == p.reshape(n, -1).max(axis=1)
    hist[flat] = 0.0
    out[:] = hist.reshape(n, LGHD_DIM)
    return out


def lghd_distance(left, right) -> np.ndarray:
    """Euclidean distance between the LGHD descriptors (:func:`lghd_descriptors`) of each pair.

    Args:
        left: uint8 [N,64,64].
        right: uint8 [N,64,64].

    Returns:
        float64 [N], in [0, 2*sqrt(2)] (four non-negative unit 96-vectors per descriptor).
    """
    a, b = _check_pair(left, right)
    da = lghd_descriptors(a).astype(np.float64)
    db = lghd_descriptors(b).astype(np.float64)
    return np.linalg.norm(da - db, axis=1)


# ---------------------------------------------------------------- GISIFT

GISIFT_DIM = 128
_SIFT_GRID = 4  # 4x4 spatial bins
_SIFT_ORI_BINS = 8
# OpenCV's SIFT geometry for a keypoint of size SIFT_KEYPOINT_SIZE (see its comment): bins 3 * size / 2
# = 12 px wide, Gaussian window sigma = half the 4-bin grid (2 bins = 24 px), samples whose bin
# coordinate lies in (-1, 4), i.e. offsets -29..29 px from the centre (32, 32).
_SIFT_BIN_PX = 3.0 * SIFT_KEYPOINT_SIZE / 2.0
# OpenCV smooths the input by sqrt(1.6^2 - 0.5^2) (from the assumed camera blur 0.5 to SIFT's base
# sigma 1.6, no upsampling for keypoints of octave 0) before taking gradients; kernel radius 6.
_SIFT_PRESMOOTH_SIGMA = float(np.sqrt(1.6 ** 2 - 0.5 ** 2))
_SIFT_PRESMOOTH_KSIZE = 13
_SIFT_CLIP = 0.2  # Lowe's clipping of the unit descriptor
# Patches per GISIFT chunk: the dense [chunk, 59, 59, 8] float32 weights are ~28 MiB for 256.
_GISIFT_CHUNK = 256


@functools.lru_cache(maxsize=1)
def _sift_sampling() -> tuple[np.ndarray, np.ndarray]:
    """Pixel offsets from the centre that contribute, and their [offsets, 4] spatial weights per
    bin row (or column): linear interpolation between the two nearest bin centres (bins outside the
    grid dropped) times the separable Gaussian window (sigma = 2 bins), as in OpenCV's
    calcSIFTDescriptor."""
    radius = int(round(_SIFT_BIN_PX * np.sqrt(2.0) * (_SIFT_GRID + 1) * 0.5))
    offsets = np.arange(-radius, radius + 1)
    pos = offsets / _SIFT_BIN_PX + _SIFT_GRID / 2 - 0.5  # bin coordinate of each offset
    keep = (pos > -1) & (pos < _SIFT_GRID)
    offsets, pos = offsets[keep], pos[keep]
    lo = np.floor(pos).astype(int)
    frac = pos - lo
    weights = np.zeros((offsets.size, _SIFT_GRID))
    for b, w in ((lo, 1.0 - frac), (lo + 1, frac)):
        ok = (b >= 0) & (b < _SIFT_GRID)
        weights[np.nonzero(ok)[0], b[ok]] += w[ok]
    # exp(-(x^2 + y^2) / (2 * (d/2)^2)) in bin units, factorised over rows and columns.
    gauss = np.exp(-((offsets / _SIFT_BIN_PX) ** 2) / (2 * (_SIFT_GRID / 2) ** 2))
    weights *= gauss[:, None]
    if _CENTRE + offsets.min() < 1 or _CENTRE + offsets.max() > PATCH_SIZE - 2:
        raise AssertionError("SIFT sampling window must leave a 1 px margin for the gradients")
    return offsets, weights.astype(np.float32)


def _sift_like_descriptors(p: np.ndarray, fold: bool) -> np.ndarray:
    """SIFT descriptor of each (checked, uint8 [N,64,64]) patch in OpenCV's frame for our baseline
    (centre (32, 32), size SIFT_KEYPOINT_SIZE, angle 0), computed with numpy. ``fold=False`` gives
    OpenCV's descriptor (up to its rounding to integers); ``fold=True`` folds gradient orientations
    modulo pi, spreading the 8 orientation bins over [0, pi) (GISIFT)."""
    n = p.shape[0]
    out = np.zeros((n, GISIFT_DIM), dtype=np.float32)
    if n == 0:
        return out
    offsets, weights = _sift_sampling()
    lo, hi = _CENTRE + offsets[0], _CENTRE + offsets[-1] + 1
    period = np.pi if fold else 2.0 * np.pi
    m = _SIFT_PRESMOOTH_KSIZE // 2
    side = PATCH_SIZE + 2 * m
    for start in range(0, n, _GISIFT_CHUNK):
        chunk = p[start:start + _GISIFT_CHUNK]
        k = chunk.shape[0]
        # Pre-smoothing with reflect-101 borders, as OpenCV does for a lone patch: pad each patch by
        # the kernel radius (numpy's "reflect" is reflect-101) and blur the vertical stack at once;
        # the interiors only ever read their own padding.
        padded = np.pad(chunk.astype(np.float32), ((0, 0), (m, m), (m, m)), mode="reflect")
        blurred = cv2.GaussianBlur(padded.reshape(k * side, side), (_SIFT_PRESMOOTH_KSIZE,) * 2,
                                   _SIFT_PRESMOOTH_SIGMA, sigmaY=_SIFT_PRESMOOTH_SIGMA,
                                   borderType=cv2.BORDER_REFLECT_101)
        img = blurred.reshape(k, side, side)[:, m:m + PATCH_SIZE, m:m + PATCH_SIZE]
        # OpenCV: dx = I(r, c+1) - I(r, c-1), dy = I(r-1, c) - I(r+1, c) (y pointing up).
        dx = img[:, lo:hi, lo + 1:hi + 1] - img[:, lo:hi, lo - 1:hi - 1]
        dy = img[:, lo - 1:hi - 1, lo:hi] - img[:, lo + 1:hi + 1, lo:hi]
        mag = np.sqrt(dx * dx + dy * dy)
        obin = (np.mod(np.arctan2(dy, dx), period) * (_SIFT_ORI_BINS / period)).astype(np.float32)
        o0 = np.floor(obin)
        frac = obin - o0
        o0 = o0.astype(np.int64) % _SIFT_ORI_BINS  # obin may round up to exactly 8
        o1 = (o0 + 1) % _SIFT_ORI_BINS
        # Dense orientation-interpolated magnitudes [k, rows, cols, 8].
        dense = np.zeros(mag.shape + (_SIFT_ORI_BINS,), dtype=np.float32)
        np.put_along_axis(dense, o0[..., None], (mag * (1.0 - frac))[..., None], axis=-1)
        np.put_along_axis(dense, o1[..., None], (mag * frac)[..., None], axis=-1)  # o1 != o0
        # Spatial interpolation x Gaussian window: separable over sample rows (i) and columns (j).
        hist = np.einsum("kijo,jc->kico", dense, weights, optimize=True)
        hist = np.einsum("kico,ir->krco", hist, weights, optimize=True)
        out[start:start + k] = hist.reshape(k, GISIFT_DIM)
    # Lowe: normalise, clip at 0.2, renormalise. Flat patches stay all-zero.
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    out = np.minimum(out, _SIFT_CLIP * norm)
    return _l2_normalise(out)


def gisift_descriptors(patches) -> np.ndarray:
    """Gradient-invariant SIFT (GISIFT) descriptor of each patch.

    M. Firmenich, M. Brown, S. Suesstrunk, "Multispectral interest points for RGB-NIR image
    registration", ICIP 2011: SIFT whose gradient orientations are taken modulo pi, so a gradient
    reversed between spectra (contrast reversal, direction + pi) votes for the same bin.

    Choices:

    * Frame: exactly our ``sift`` baseline's (:func:`sift_descriptors`): centre (32, 32), fixed size
      :data:`SIFT_KEYPOINT_SIZE` (12 px bins, 4x4 grid spanning 48 px, samples from the central
      59x59 px), angle 0 (no orientation normalisation), OpenCV's pre-smoothing (sigma 1.52,
      reflect-101 borders) and central-difference gradients.
    * 4x4 spatial bins x 8 orientation bins over [0, pi) (22.5 degrees each) -> 128-D; gradient
      magnitudes weighted by a Gaussian of sigma = half the grid width (24 px) and distributed by
      trilinear interpolation (bilinear over spatial bins, linear and circular over orientation).
    * Lowe's normalisation: L2-normalise, clip at 0.2, renormalise (in float; OpenCV additionally
      rounds to integers). A flat patch gets an all-zero descriptor.
    * Computed with numpy, not OpenCV, since OpenCV cannot fold orientations; with the fold turned
      off the same code reproduces :func:`sift_descriptors` (checked in the tests).

    Args:
        patches: uint8 [N,64,64].

    Returns:
        float32 [N,128], L2-normalised (all-zero rows for flat patches).
    """
    p = _check_patches(patches, "GISIFT expects 8-bit patches like the SIFT baseline")
    return _sift_like_descriptors(p, fold=True)


def gisift_distance(left, right) -> np.ndarray:
    """Euclidean distance between the GISIFT descriptors (:func:`gisift_descriptors`) of each pair.

    Args:
        left: uint8 [N,64,64].
        right: uint8 [N,64,64].

    Returns:
        float64 [N], in [0, sqrt(2)] (non-negative unit descriptors).
    """
    a, b = _check_pair(left, right)
    da = gisift_descriptors(a).astype(np.float64)
    db = gisift_descriptors(b).astype(np.float64)
    return np.linalg.norm(da - db, axis=1)


HANDCRAFTED: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "ncc": ncc_distance,
    "sift": sift_distance,
    "lghd": lghd_distance,
    "gisift": gisift_distance,
}
