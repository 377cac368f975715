"""The gallery searches in process (server/serve/search.py): exact, faiss, and which is used."""

from __future__ import annotations

import numpy as np
import pytest

from server.serve.search import (
    COLUMNS_UP_TO,
    COMPRESS_FROM,
    EXACT_UP_TO,
    ExactSearch,
    FaissSearch,
    make_search,
    pick_backend,
)


def unit_rows(count: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def brute_force(vectors: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    return list(np.argsort(-(vectors @ (query / np.linalg.norm(query))))[:k])


@pytest.mark.parametrize("search_kind", ["exact", "hnsw", "ivf"])
def test_every_search_ranks_by_cosine(search_kind):
    vectors = unit_rows(500)
    search = ExactSearch(vectors) if search_kind == "exact" else \
        FaissSearch(vectors, kind=search_kind)
    queries = unit_rows(20, seed=1) * 3  # not unit length: the search normalizes them
    found = search.search_many(queries, 5)
    agree = [list(hits.rows[:1]) == brute_force(vectors, query, 1)
             for hits, query in zip(found, queries, strict=True)]
    assert all(agree) if search_kind == "exact" else sum(agree) >= 18  # approximate
    for hits in found:
        assert len(hits.rows) == 5 and hits.rows.dtype == np.int64
        assert np.all(np.diff(hits.scores) <= 1e-6)  # best first
        assert np.all(hits.scores <= 1 + 1e-5)


@pytest.mark.parametrize("search_kind", ["exact", "hnsw"])
def test_excluded_rows_never_come_back(search_kind):
    vectors = unit_rows(100)
    search = ExactSearch(vectors) if search_kind == "exact" else \
        FaissSearch(vectors, kind=search_kind)
    best = brute_force(vectors, vectors[7], 3)
    assert best[0] == 7
    hits = search.search(vectors[7], 3, exclude={7})
    assert 7 not in hits.rows and list(hits.rows[:2]) == best[1:]


def test_k_beyond_the_gallery_returns_the_gallery():
    vectors = unit_rows(10)
    assert len(ExactSearch(vectors).search(vectors[0], 50).rows) == 10
    assert len(ExactSearch(vectors).search(vectors[0], 50, exclude={0, 1}).rows) == 8


def test_a_zero_or_infinite_query_is_refused():
    search = ExactSearch(unit_rows(10))
    with pytest.raises(ValueError, match="zero or not finite"):
        search.search(np.zeros(32, np.float32), 3)
    with pytest.raises(ValueError, match="zero or not finite"):
        search.search(np.full(32, np.inf, np.float32), 3)


@pytest.mark.parametrize("count", [COLUMNS_UP_TO, COLUMNS_UP_TO + 1])
def test_the_exact_search_ranks_alike_with_and_without_its_transposed_copy(count):
    vectors = unit_rows(count, dim=8)  # small rows: 100,000 of them are 3 MB
    search = ExactSearch(vectors)
    assert search.vectors.shape == vectors.shape and np.array_equal(search.vectors[5], vectors[5])
    queries = unit_rows(4, dim=8, seed=1)
    for hits, query in zip(search.search_many(queries, 5, [{3}, (), (), ()]), queries,
                           strict=True):
        assert list(hits.rows) == [r for r in brute_force(vectors, query, 6) if r != 3][:5]


def test_float16_rows_are_searched_in_float32():
    vectors = unit_rows(50)
    search = ExactSearch(vectors.astype(np.float16))
    assert search.vectors.dtype == np.float32
    assert search.search(vectors[3], 1).rows[0] == 3


def test_the_backend_follows_the_gallery_size():
    assert pick_backend(EXACT_UP_TO) == "exact"
    assert pick_backend(EXACT_UP_TO + 1) == "faiss"
    assert pick_backend(COMPRESS_FROM + 1) == "compressed"
    assert pick_backend(10, "faiss") == "faiss"
    assert isinstance(make_search(unit_rows(10)), ExactSearch)
    with pytest.raises(ValueError, match="needs 10,000 images at least"):
        make_search(unit_rows(10), "compressed")
