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
