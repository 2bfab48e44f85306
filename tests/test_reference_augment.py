"""kglnet.reference_augment: the reference's CPU augmentation re-enacted for `kglnet bench`
(uint8 per patch with OpenCV): each operation does what SPEC 4 says, the draws follow its counts,
pairs stay aligned, seeds repeat, bad input is refused."""

import collections

import numpy as np
import pytest

from kglnet.reference_augment import JITTER_OPS, ReferenceCPUAugmenter


def _patches(n=4, size=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8), rng.integers(0, 256, (n, size, size), dtype=np.uint8)


def _dihedral(p):
    return [np.rot90(q, k) for q in (p, p[:, ::-1]) for k in range(4)]


def test_batch_keeps_shape_dtype_and_input_and_repeats_with_the_seed():
    vis, other = _patches(8)
    before = vis.copy(), other.copy()
    a = ReferenceCPUAugmenter(seed=3).batch(vis, other)
    b = ReferenceCPUAugmenter(seed=3).batch(vis, other)
    c = ReferenceCPUAugmenter(seed=4).batch(vis, other)
    assert a[0].shape == vis.shape and a[0].dtype == np.uint8 and a[1].shape == other.shape
    assert np.array_equal(vis, before[0]) and np.array_equal(other, before[1])  # not in place
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_shared_change_keeps_the_pair_aligned_and_is_dihedral():
    """With the jitter switched off (its unchecked inner step), both patches get the same flip/rotation: one of the 8
    elements of the dihedral group, and over many pairs all 8 occur."""
    aug = ReferenceCPUAugmenter(seed=0)
    aug._jitter = lambda p: p
    patch = _patches(1)[0][0]
    seen = set()
    for _ in range(400):
        v, o = aug(patch, patch.copy())
        assert np.array_equal(v, o)
        seen.add(next(i for i, d in enumerate(_dihedral(patch)) if np.array_equal(v, d)))
    assert seen == set(range(8))


def test_jitter_draws_zero_one_or_two_distinct_ops_in_order():
    aug = ReferenceCPUAugmenter(seed=1)
    calls = []
    for name in JITTER_OPS:
        setattr(aug, name, (lambda n: lambda p: calls.append(n) or p)(name))
    counts = collections.Counter()
    patch = _patches(1)[0][0]
    for _ in range(3000):
        calls.clear()
        aug.jitter(patch)
        counts[len(calls)] += 1
        assert len(set(calls)) == len(calls) and calls == sorted(calls, key=JITTER_OPS.index)
    assert set(counts) == {0, 1, 2} and all(900 < c < 1100 for c in counts.values())


def test_each_operation():
    aug = ReferenceCPUAugmenter(seed=2)
    flat = np.full((64, 64), 100, np.uint8)
    # photometric: gamma maps through x ** g on [0, 1]; blur keeps a flat patch flat
    g_out = aug.gamma(flat)
    assert len(np.unique(g_out)) == 1 and 0.5 <= np.log(g_out[0, 0] / 255) / np.log(100 / 255) <= 1.5
    assert np.array_equal(aug.blur(flat), flat)
    # geometric ops with reflected borders keep a flat patch flat
    for op in (aug.scale, aug.translate, aug.reflect_pad):
        assert np.array_equal(op(flat), flat), op.__name__
    # noise: standard deviation 0.02 * 255 around mid-grey
    grey = np.full((256, 256), 128, np.uint8)
    assert aug.noise(grey).astype(float).std() == pytest.approx(0.02 * 255, rel=0.05)
    # crop-or-pad pads with zeros: over a few draws some side is padded
    assert any((aug.crop_pad(flat) < 100).any() for _ in range(10))
    # translate moves content: a bright column shifts along x or rows along y
    edge = np.zeros((64, 64), np.uint8)
    edge[:, :32] = 255
    assert any(not np.array_equal(aug.translate(edge), edge) for _ in range(10))


def test_bad_input_is_refused_by_name():
    aug = ReferenceCPUAugmenter()
    vis, other = _patches(2)
    with pytest.raises(ValueError, match="vis: expected a uint8 array with 3 dimensions, got ndarray float32"):
        aug.batch(vis.astype(np.float32), other)
    with pytest.raises(ValueError, match="vis and other batches differ in shape"):
        aug.batch(vis, other[:1])
    with pytest.raises(ValueError, match="patches must be square"):
        aug.batch(vis[:, :, :32], other[:, :, :32])
    with pytest.raises(ValueError, match="other: expected a uint8 array with 2 dimensions"):
        aug(vis[0], other)
