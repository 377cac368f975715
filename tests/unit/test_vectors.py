"""Top-k columns and unit rows (server/vectors.py) against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from server.vectors import normalized, top_k


@pytest.mark.parametrize(("columns", "k"), [(50, 1), (50, 7), (50, 49), (50, 50), (50, 80),
                                            (3, 0)])
def test_top_k_are_the_best_scores_best_first_equal_ones_in_column_order(columns, k):
    rng = np.random.default_rng(columns + k)
    # few distinct values: ties everywhere, at the k-th place too
    scores = rng.integers(0, 6, (20, columns)).astype(np.float32)
    found = top_k(scores, k)
    assert found.shape == (20, min(k, columns))
    for row, columns_found in zip(scores, found, strict=True):
        best = sorted(range(columns), key=lambda c: (-row[c], c))[:k]  # brute force
        assert row[columns_found].tolist() == row[best].tolist()
        assert len(set(columns_found.tolist())) == len(columns_found)
        pairs = [(-row[c], c) for c in columns_found]
        assert pairs == sorted(pairs)  # best first; equal scores in column order


def test_normalized_rows_are_units_and_zero_rows_stay_zero():
    rows = normalized(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert rows.dtype == np.float32
    assert np.allclose(rows, [[0.6, 0.8], [0.0, 0.0]])


def brute_force_top(row: np.ndarray, k: int) -> list[float]:
    return sorted(row.tolist(), reverse=True)[:k]


@pytest.mark.parametrize(("rows", "columns", "k"), [(1, 10_000, 24), (64, 10_000, 124),
                                                    (3, 3_379, 8), (5, 1_000, 16),
                                                    (2, 130, 2)])
def test_top_k_over_a_gallery_is_the_brute_force_one(rows, columns, k):
    """Sizes where the blocks' floor is used (top_k's fast way), on cosines and on ties."""
    rng = np.random.default_rng(rows * columns + k)
    for scores in (rng.standard_normal((rows, columns)).astype(np.float32),
                   rng.integers(0, 200, (rows, columns)).astype(np.float32)):
        found = top_k(scores, k)
        assert found.shape == (rows, k)
        for row, columns_found in zip(scores, found, strict=True):
            assert row[columns_found].tolist() == brute_force_top(row, k)
            pairs = [(-row[c], c) for c in columns_found]
            assert pairs == sorted(pairs) and len(set(columns_found.tolist())) == k


def test_top_k_with_excluded_rows_all_ties_and_nan():
    """What makes the floor useless or wrong falls back to the partition, still exact."""
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((4, 5_000)).astype(np.float32)
    scores[0, :] = -np.inf  # every image excluded
    scores[1, 100:4_990] = -np.inf  # all but 110 excluded
    scores[2, :] = 0.5  # a zero query against everything: all equal
    scores[3, rng.choice(5_000, 2_000, replace=False)] = np.nan
    found = top_k(scores, 24)
    assert found.shape == (4, 24)
    assert np.isneginf(scores[0, found[0]]).all()
    assert scores[1, found[1]].tolist() == brute_force_top(scores[1], 24)
    assert found[2].tolist() == sorted(set(found[2].tolist()))  # equal ones in column order
    assert len(set(found[3].tolist())) == 24  # where NaN ranks is numpy's choice
