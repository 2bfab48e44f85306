"""Hand-crafted baselines: NCC, fixed-frame SIFT, LGHD and GISIFT."""

import cv2
import numpy as np
import pytest

from kglnet.evaluation import (
    HANDCRAFTED,
    ncc_distance,
    sift_descriptors,
    sift_descriptors_per_patch,
    sift_distance,
)
from kglnet.evaluation import handcrafted
from kglnet.evaluation.handcrafted import (
    GISIFT_DIM,
    LGHD_DIM,
    gisift_descriptors,
    gisift_distance,
    lghd_descriptors,
    lghd_distance,
)


def _textures(n, size=64, seed=0, pad=0):
    """uint8 [n, size+pad, size+pad] smooth random textures (blurred noise, stretched contrast)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        noise = rng.normal(size=(size + pad, size + pad)).astype(np.float32)
        tex = cv2.GaussianBlur(noise, (0, 0), 2.0)
        tex = (tex - tex.mean()) / (tex.std() + 1e-6)
        out.append(np.clip(128 + 40 * tex, 0, 255).astype(np.uint8))
    return np.stack(out)


# ---------------------------------------------------------------- NCC

def test_ncc_identical_is_zero_and_inverted_is_two():
    p = _textures(5)
    np.testing.assert_allclose(ncc_distance(p, p), 0.0, atol=1e-12)
    # 255 - p is an exact negation of the zero-mean patch -> correlation -1 -> distance 2.
    np.testing.assert_allclose(ncc_distance(p, 255 - p), 2.0, atol=1e-12)


def test_ncc_invariant_to_brightness_and_contrast():
    p = _textures(3).astype(np.float64)
    np.testing.assert_allclose(ncc_distance(p, 0.5 * p + 10.0), 0.0, atol=1e-12)


def test_ncc_hand_computed_2x2():
    # a - mean = [-1.5, -0.5, 0.5, 1.5]; b - mean = [-1.5, -0.5, 1.5, 0.5].
    # sum(a'b') = 2.25 + 0.25 + 0.75 + 0.75 = 4; |a'|^2 = |b'|^2 = 5 -> corr 0.8 -> distance 0.2.
    a = np.array([[[0, 1], [2, 3]]], dtype=np.uint8)
    b = np.array([[[0, 1], [3, 2]]], dtype=np.uint8)
    np.testing.assert_allclose(ncc_distance(a, b), [0.2], atol=1e-12)


def test_ncc_flat_patches_get_correlation_zero():
    p = _textures(2)
    flat = np.full_like(p, 77)
    np.testing.assert_allclose(ncc_distance(p, flat), 1.0)
    np.testing.assert_allclose(ncc_distance(flat, p), 1.0)
    np.testing.assert_allclose(ncc_distance(flat, flat), 1.0)
    assert np.all(np.isfinite(ncc_distance(flat, flat)))


def test_ncc_chunking_matches_single_pass(monkeypatch):
    left, right = _textures(11, seed=1), _textures(11, seed=2)
    full = ncc_distance(left, right)
    monkeypatch.setattr(handcrafted, "_NCC_CHUNK", 4)  # 4 + 4 + 3: exercises the chunk edges
    np.testing.assert_allclose(ncc_distance(left, right), full, rtol=0, atol=1e-12)
    assert np.all((full >= 0) & (full <= 2))


def test_ncc_shape_errors():
    with pytest.raises(ValueError, match="same shape"):
        ncc_distance(np.zeros((2, 8, 8)), np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match=r"\[N,H,W\]"):
        ncc_distance(np.zeros((8, 8)), np.zeros((8, 8)))


# ---------------------------------------------------------------- SIFT

def test_sift_descriptor_shape_and_normalisation():
    p = _textures(6)
    p[3] = 90  # a flat patch: no gradients -> all-zero descriptor, kept zero (no NaN)
    d = sift_descriptors(p)
    assert d.shape == (6, 128) and d.dtype == np.float32
    norms = np.linalg.norm(d, axis=1)
    np.testing.assert_allclose(np.delete(norms, 3), 1.0, atol=1e-5)
    assert norms[3] == 0.0
    assert np.all(d >= 0)
    assert sift_descriptors(np.zeros((0, 64, 64), np.uint8)).shape == (0, 128)


def test_sift_identical_is_zero():
    p = _textures(4)
    np.testing.assert_array_equal(sift_distance(p, p), 0.0)


def test_sift_mosaic_matches_per_patch():
    # 37 patches: two full 4x4 mosaics plus a partial one (5 cells), plus a flat patch.
    p = _textures(37, seed=3)
    p[10] = 200
    mosaic = sift_descriptors(p)
    single = sift_descriptors_per_patch(p)
    nz = np.linalg.norm(single, axis=1) > 0
    cos = np.sum(mosaic[nz] * single[nz], axis=1)  # both unit-norm
    assert cos.mean() > 0.99 and cos.min() > 0.99
    # In fact identical: every sample of the descriptor window lies inside the patch and the 6 px
    # reflect-101 margin reproduces OpenCV's own border handling of the pre-smoothing.
    np.testing.assert_allclose(mosaic, single, atol=1e-6)


def test_sift_shift_farther_than_noise():
    # Crop 64x64 windows from 74x74 textures: the reference at (0, 0), a copy shifted by 10 px, and
    # the reference with mild Gaussian noise (sigma 4 grey levels).
    big = _textures(8, pad=10, seed=4)
    ref = np.ascontiguousarray(big[:, :64, :64])
    shifted = np.ascontiguousarray(big[:, 10:74, 10:74])
    rng = np.random.default_rng(5)
    noisy = np.clip(ref + rng.normal(0, 4, ref.shape), 0, 255).astype(np.uint8)
    d_shift = sift_distance(ref, shifted)
    d_noise = sift_distance(ref, noisy)
    assert np.all(d_shift > d_noise), (d_shift, d_noise)


def test_sift_input_errors():
    with pytest.raises(ValueError, match="uint8"):
        sift_descriptors(np.zeros((2, 64, 64), np.float32))
    with pytest.raises(ValueError, match="64"):
        sift_descriptors(np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="same shape"):
        sift_distance(np.zeros((2, 64, 64), np.uint8), np.zeros((1, 64, 64), np.uint8))


# ---------------------------------------------------------------- LGHD

def _gamma(p, gamma):
    """Monotonic non-linear intensity change 255 * (p / 255) ** gamma, as uint8."""
    return np.round(255.0 * (p / 255.0) ** gamma).astype(np.uint8)


def _stripes(vertical, wavelength=8.0):
    """uint8 [1,64,64] sinusoidal grating; ``vertical``: intensity varies along x (columns)."""
    x = np.arange(64, dtype=np.float64)
    wave = 128 + 100 * np.cos(2 * np.pi * x / wavelength)
    img = np.tile(wave, (64, 1)) if vertical else np.tile(wave[:, None], (1, 64))
    return np.round(img).astype(np.uint8)[None]


def test_lghd_descriptor_shape_and_normalisation():
    p = _textures(5)
    p[2] = 90  # flat: no filter response at all -> all-zero descriptor (no NaN)
    d = lghd_descriptors(p)
    assert LGHD_DIM == 384 and d.shape == (5, 384) and d.dtype == np.float32
    assert np.all(d >= 0) and np.all(np.isfinite(d))
    # Each scale's 96-vector (4x4 cells x 6 orientation counts) is L2-normalised on its own.
    per_scale = np.linalg.norm(d.reshape(5, 4, 96), axis=2)
    np.testing.assert_allclose(np.delete(per_scale, 2, axis=0), 1.0, atol=1e-5)
    assert np.all(d[2] == 0)
    # Before normalisation every 16x16 cell counts its 256 pixels once, so within a scale all 16
    # cells' histograms have the same sum.
    cell_sums = np.delete(d, 2, axis=0).reshape(4, 4, 16, 6).sum(axis=3)
    np.testing.assert_allclose(cell_sums, np.broadcast_to(cell_sums[:, :, :1], cell_sums.shape), rtol=1e-5)
    assert lghd_descriptors(np.zeros((0, 64, 64), np.uint8)).shape == (0, 384)


def test_lghd_identical_is_zero_and_deterministic():
    p = _textures(4, seed=6)
    np.testing.assert_array_equal(lghd_distance(p, p), 0.0)
    np.testing.assert_array_equal(lghd_descriptors(p), lghd_descriptors(p.copy()))


def test_lghd_orientation_bins_follow_the_structure():
    # A grating varying along x puts its energy on the fx axis (filter angle 0, bin 0); one varying
    # along y on the fy axis (filter angle 90 degrees, bin 3), at every scale.
    for vertical, expected in ((True, 0), (False, 3)):
        d = lghd_descriptors(_stripes(vertical))[0].reshape(4, 16, 6)
        assert np.all(d.sum(axis=1).argmax(axis=1) == expected), d.sum(axis=1)


def test_lghd_robust_to_gamma():
    # A monotonic non-linear intensity change (gamma 0.5 or 2) keeps the dominant orientations, so
    # the changed patch stays much closer than another patch with the same statistics.
    p = _textures(8, seed=7)
    other = _textures(8, seed=8)
    d_other = lghd_distance(p, other)
    for gamma in (0.5, 2.0):
        d_gamma = lghd_distance(p, _gamma(p, gamma))
        assert np.all(d_gamma < d_other), (gamma, d_gamma, d_other)
        assert d_gamma.mean() < 0.5 * d_other.mean()


def test_lghd_contrast_reversal():
    # Amplitudes of zero-DC linear filters: 255 - p gives the same responses up to sign, hence the
    # same orientation indices (up to float rounding at near-ties).
    p = _textures(4, seed=9)
    assert np.all(lghd_distance(p, 255 - p) < 0.05)


def test_lghd_chunking_matches_single_pass(monkeypatch):
    p = _textures(7, seed=10)
    full = lghd_descriptors(p)
    monkeypatch.setattr(handcrafted, "_LGHD_CHUNK", 3)  # 3 + 3 + 1
    np.testing.assert_allclose(lghd_descriptors(p), full, rtol=0, atol=1e-6)


def test_lghd_filter_bank():
    bank = handcrafted._log_gabor_bank(64)
    assert bank.shape == (4, 6, 64, 64) and bank.dtype == np.float32
    assert np.all(bank[:, :, 0, 0] == 0)  # no DC
    assert np.all((bank >= 0) & (bank <= 1))
    # One-sided (analytic) filters: nothing at the frequency opposite each filter's peak.
    for s in range(4):
        for o in range(6):
            r, c = np.unravel_index(np.argmax(bank[s, o]), (64, 64))
            assert bank[s, o, (-r) % 64, (-c) % 64] == 0
    # Coarser scales peak at lower frequencies (orientation 0: along the fx axis, row 0).
    peaks = [int(np.argmax(bank[s, 0, 0, :32])) for s in range(4)]
    assert peaks == sorted(peaks, reverse=True) and len(set(peaks)) == 4


def test_lghd_input_errors():
    with pytest.raises(ValueError, match="uint8"):
        lghd_descriptors(np.zeros((2, 64, 64), np.float32))
    with pytest.raises(ValueError, match="64"):
        lghd_descriptors(np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="same shape"):
        lghd_distance(np.zeros((2, 64, 64), np.uint8), np.zeros((1, 64, 64), np.uint8))
    with pytest.raises(ValueError, match=r"\[N,H,W\]"):
        lghd_distance(np.zeros((64, 64), np.uint8), np.zeros((64, 64), np.uint8))


# ---------------------------------------------------------------- GISIFT

def test_gisift_descriptor_shape_and_normalisation():
    p = _textures(6, seed=11)
    p[4] = 30  # flat -> all-zero descriptor
    d = gisift_descriptors(p)
    assert GISIFT_DIM == 128 and d.shape == (6, 128) and d.dtype == np.float32
    norms = np.linalg.norm(d, axis=1)
    np.testing.assert_allclose(np.delete(norms, 4), 1.0, atol=1e-5)
    assert norms[4] == 0.0 and np.all(d >= 0)
    assert gisift_descriptors(np.zeros((0, 64, 64), np.uint8)).shape == (0, 128)


def test_gisift_lowe_clipping(monkeypatch):
    # Lowe's scheme: unit-normalise, clip at 0.2, renormalise. Compare with the unclipped descriptor.
    step = np.tile(np.repeat([40, 200], 32), (1, 64, 1)).astype(np.uint8)  # one vertical edge
    p = np.concatenate([_textures(3, seed=18), step])
    clipped = gisift_descriptors(p)
    monkeypatch.setattr(handcrafted, "_SIFT_CLIP", 1.0)
    unit = gisift_descriptors(p)
    assert unit[-1].max() > 0.2  # the step edge concentrates its votes: clipping is exercised
    expected = np.minimum(unit, 0.2)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(clipped, expected, atol=1e-6)


def test_gisift_identical_is_zero_and_deterministic():
    p = _textures(4, seed=12)
    np.testing.assert_array_equal(gisift_distance(p, p), 0.0)
    np.testing.assert_array_equal(gisift_descriptors(p), gisift_descriptors(p.copy()))


def test_gisift_invariant_to_contrast_reversal_unlike_sift():
    # Contrast reversal flips every gradient by pi: GISIFT folds orientations modulo pi, so the
    # descriptor is unchanged; plain SIFT moves each vote 4 bins round the circle.
    p = _textures(8, seed=13)
    inv = 255 - p
    np.testing.assert_allclose(gisift_distance(p, inv), 0.0, atol=1e-4)
    assert np.all(sift_distance(p, inv) > 0.3), sift_distance(p, inv)


def test_gisift_unfolded_reproduces_opencv_sift():
    # The numpy SIFT underneath GISIFT, with the fold turned off, is our OpenCV SIFT baseline (same
    # frame, smoothing, sampling, weights and normalisation) up to OpenCV's rounding to integers.
    p = _textures(20, seed=14)
    ours = handcrafted._sift_like_descriptors(p, fold=False)
    cv = sift_descriptors(p)
    assert np.sum(ours * cv, axis=1).min() > 0.9995
    np.testing.assert_allclose(ours, cv, atol=5e-3)


def test_gisift_shift_farther_than_noise():
    big = _textures(8, pad=10, seed=15)
    ref = np.ascontiguousarray(big[:, :64, :64])
    shifted = np.ascontiguousarray(big[:, 10:74, 10:74])
    rng = np.random.default_rng(16)
    noisy = np.clip(ref + rng.normal(0, 4, ref.shape), 0, 255).astype(np.uint8)
    assert np.all(gisift_distance(ref, shifted) > gisift_distance(ref, noisy))


def test_gisift_chunking_matches_single_pass(monkeypatch):
    p = _textures(7, seed=17)
    full = gisift_descriptors(p)
    monkeypatch.setattr(handcrafted, "_GISIFT_CHUNK", 3)
    np.testing.assert_allclose(gisift_descriptors(p), full, rtol=0, atol=1e-6)


def test_gisift_input_errors():
    with pytest.raises(ValueError, match="uint8"):
        gisift_descriptors(np.zeros((2, 64, 64), np.float32))
    with pytest.raises(ValueError, match="64"):
        gisift_descriptors(np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="same shape"):
        gisift_distance(np.zeros((2, 64, 64), np.uint8), np.zeros((1, 64, 64), np.uint8))
    with pytest.raises(ValueError, match=r"\[N,H,W\]"):
        gisift_distance(np.zeros((64, 64), np.uint8), np.zeros((64, 64), np.uint8))


# ---------------------------------------------------------------- registry

def test_registry():
    assert set(HANDCRAFTED) == {"ncc", "sift", "lghd", "gisift"}
    assert HANDCRAFTED["lghd"] is lghd_distance and HANDCRAFTED["gisift"] is gisift_distance
    p = _textures(2)
    for fn in HANDCRAFTED.values():
        out = fn(p, p[::-1])
        assert out.shape == (2,) and np.all(np.isfinite(out))
