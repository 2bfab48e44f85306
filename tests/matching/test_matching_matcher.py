"""kglnet.matching.matcher: mutual nearest neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from kglnet.matching.matcher import descriptor_distances, match_descriptors, mutual_nearest_neighbours


def test_mutual_nearest_neighbours_of_a_hand_made_matrix():
    d = np.array([[0.10, 0.50, 0.90],
                  [0.20, 0.30, 0.80],     # row 1's nearest is column 0, but column 0's nearest is row 0
                  [0.70, 0.60, 0.40],
                  [0.90, 0.05, 0.95]])
    matches, dist = mutual_nearest_neighbours(d)
    assert matches.tolist() == [[0, 0], [2, 2], [3, 1]]
    assert dist == pytest.approx([0.10, 0.40, 0.05])
    assert matches.dtype == np.int64 and dist.dtype == np.float32
    matches, dist = mutual_nearest_neighbours(d, max_distance=0.2)
    assert matches.tolist() == [[0, 0], [3, 1]]


def test_ties_go_to_the_lower_index():
    d = np.array([[0.1, 0.1],
                  [0.1, 0.1]])
    assert mutual_nearest_neighbours(d)[0].tolist() == [[0, 0]]


def test_empty_sets_give_no_matches():
    for shape in [(0, 5), (5, 0)]:
        m, d = mutual_nearest_neighbours(np.zeros(shape))
        assert m.shape == (0, 2) and d.shape == (0,)
    m, d = match_descriptors(np.zeros((0, 8)), np.zeros((4, 8)))
    assert m.shape == (0, 2) and d.shape == (0,)


def test_distances_are_euclidean():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 16)), rng.normal(size=(9, 16))
    expected = np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))
    assert descriptor_distances(a, b) == pytest.approx(expected, abs=1e-4)
    with pytest.raises(ValueError, match="same D"):
        descriptor_distances(a, b[:, :8])


def test_blockwise_matching_equals_the_full_matrix():
    rng = np.random.default_rng(3)
    b = rng.normal(size=(57, 32)).astype(np.float32)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    a = b[rng.permutation(57)[:40]] + 0.05 * rng.normal(size=(40, 32)).astype(np.float32)
    a = np.vstack([a, rng.normal(size=(30, 32)).astype(np.float32)])
    full = mutual_nearest_neighbours(descriptor_distances(a, b))
    for rows in (1, 7, 2048):
        blocked = match_descriptors(a, b, block_rows=rows)
        assert np.array_equal(blocked[0], full[0])
        assert blocked[1] == pytest.approx(full[1], abs=1e-5)
    assert len(full[0]) >= 40    # the 40 perturbed copies find their originals
