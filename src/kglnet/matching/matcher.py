"""Mutual nearest-neighbour matching on descriptor distance.

A match is a pair (i, j) of a keypoint i of image 0 and a keypoint j of image 1 such that j is
the nearest descriptor of image 1 to descriptor i AND i is the nearest descriptor of image 0 to
descriptor j (Euclidean distance; the descriptors are L2-normalised, so distances lie in [0, 2]).
Ties go to the lower index (``np.argmin``'s rule), on both sides. No ratio test: cross-spectral
descriptors of repeated structure are often close, and the verification / RANSAC steps that
follow deal with the wrong mutual matches.

Shapes: descriptors float [K0, D], [K1, D]; distance matrix float32 [K0, K1] (computed in float64); matches int64
[M, 2] (i, j) in ascending i; match distances float32 [M].

:func:`match_descriptors` gives the same result as ``mutual_nearest_neighbours(
descriptor_distances(d0, d1))`` without holding the whole K0 x K1 matrix: it works on blocks of
rows, so tens of thousands of keypoints per image stay within memory.
"""

from __future__ import annotations

import numpy as np

__all__ = ["descriptor_distances", "mutual_nearest_neighbours", "match_descriptors"]


def _check_descriptors(desc0: np.ndarray, desc1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    desc0 = np.asarray(desc0, dtype=np.float32)
    desc1 = np.asarray(desc1, dtype=np.float32)
    if desc0.ndim != 2 or desc1.ndim != 2 or desc0.shape[1] != desc1.shape[1]:
        raise ValueError(f"descriptors must be [K0,D] and [K1,D] with the same D, got {list(desc0.shape)} "
                         f"and {list(desc1.shape)}")
    return desc0, desc1


def descriptor_distances(desc0: np.ndarray, desc1: np.ndarray) -> np.ndarray:
    """Euclidean distances float32 [K0, K1] between every descriptor of ``desc0`` and of ``desc1``."""
    desc0, desc1 = _check_descriptors(desc0, desc1)
    # float64: |a|^2 + |b|^2 - 2ab cancels near zero, where float32 would leave ~1e-3 for equal vectors.
    a, b = desc0.astype(np.float64), desc1.astype(np.float64)
    sq = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(sq, 0.0)).astype(np.float32)


def mutual_nearest_neighbours(distances: np.ndarray, max_distance: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mutual nearest neighbours of a distance matrix float [K0, K1].

    Returns (matches int64 [M, 2] (i, j) ascending in i, distances float32 [M]); with
    ``max_distance``, only matches at a distance <= it are kept.
    """
    distances = np.asarray(distances)
    if distances.ndim != 2:
        raise ValueError(f"distances must be a [K0,K1] matrix, got shape {list(distances.shape)}")
    k0, k1 = distances.shape
    if k0 == 0 or k1 == 0:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.float32)
    row_best = distances.argmin(axis=1)          # nearest j for every i
    col_best = distances.argmin(axis=0)          # nearest i for every j
    i = np.flatnonzero(col_best[row_best] == np.arange(k0))
    return _finish(i, row_best[i], distances[i, row_best[i]], max_distance)


def _finish(i: np.ndarray, j: np.ndarray, d: np.ndarray, max_distance: float | None) -> tuple[np.ndarray, np.ndarray]:
    matches = np.stack([i, j], axis=1).astype(np.int64).reshape(-1, 2)
    d = np.asarray(d, dtype=np.float32).reshape(-1)
    if max_distance is not None:
        keep = d <= float(max_distance)
        matches, d = matches[keep], d[keep]
    return matches, d


def match_descriptors(desc0: np.ndarray, desc1: np.ndarray, max_distance: float | None = None,
                      block_rows: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Mutual nearest-neighbour matches of two descriptor sets (see the module docstring).

    Returns (matches int64 [M, 2] (i, j) ascending in i, distances float32 [M]).
    """
    desc0, desc1 = _check_descriptors(desc0, desc1)
    k0, k1 = len(desc0), len(desc1)
    if k0 == 0 or k1 == 0:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.float32)
    row_best = np.empty(k0, np.int64)
    row_min = np.empty(k0, np.float32)
    col_best = np.zeros(k1, np.int64)
    col_min = np.full(k1, np.inf, np.float32)
    for start in range(0, k0, max(int(block_rows), 1)):
        block = descriptor_distances(desc0[start:start + block_rows], desc1)
        arg = block.argmin(axis=1)
        row_best[start:start + len(block)] = arg
        row_min[start:start + len(block)] = block[np.arange(len(block)), arg]
        b_arg = block.argmin(axis=0)
        b_min = block[b_arg, np.arange(k1)]
        better = b_min < col_min            # strict: an earlier block keeps a tie (argmin's rule)
        col_best[better] = start + b_arg[better]
        col_min[better] = b_min[better]
    i = np.flatnonzero(col_best[row_best] == np.arange(k0))
    return _finish(i, row_best[i], row_min[i], max_distance)
