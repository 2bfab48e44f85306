"""Hand-crafted baselines: NCC and fixed-frame SIFT."""

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


def test_registry():
    assert set(HANDCRAFTED) == {"ncc", "sift"}
    p = _textures(2)
    for fn in HANDCRAFTED.values():
        out = fn(p, p[::-1])
        assert out.shape == (2,) and np.all(np.isfinite(out))
