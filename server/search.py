"""Top-k cosine search over a gallery's unit vectors, exact or approximate, behind one interface.

`ExactSearch` is a matrix-vector product and `argpartition`: exact, no build step, and fast
enough up to a few hundred thousand images. `FaissSearch` trades a little recall for speed on
larger galleries: HNSW while the graph is cheap to build, IVF beyond. `make_search` picks.
Both return the same `Hits`, and both can leave given rows (the query's own images) out.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

# Below this many images the exact product is both fast and free to build (docs/gallery-index.md)
EXACT_UP_TO = 200_000
HNSW_UP_TO = 100_000


@dataclass(frozen=True)
class Hits:
    rows: np.ndarray    # int64 row numbers of the gallery matrix, best first
    scores: np.ndarray  # float32 cosine similarities, same order


class Search(Protocol):
    def search(self, query: np.ndarray, k: int, exclude: Collection[int] = ()) -> Hits: ...


def _unit(query: np.ndarray) -> np.ndarray:
    query = np.asarray(query, np.float32).ravel()
    norm = np.linalg.norm(query)
    if not np.isfinite(norm) or norm == 0:
        raise ValueError("the query vector is zero or not finite")
    return query / norm


class ExactSearch:
    def __init__(self, vectors: np.ndarray):
        # float16 storage halves the file; the product itself is much faster in float32
        self.vectors = vectors if vectors.dtype == np.float32 else vectors.astype(np.float32)

    def search(self, query: np.ndarray, k: int, exclude: Collection[int] = ()) -> Hits:
        scores = self.vectors @ _unit(query)
        if exclude:
            scores[np.fromiter(exclude, np.int64)] = -np.inf
        k = min(k, len(scores) - len(exclude))
        if k <= 0:
            return Hits(np.zeros(0, np.int64), np.zeros(0, np.float32))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return Hits(top.astype(np.int64), scores[top])


class FaissSearch:
    """Inner product on unit vectors (= cosine) with a faiss HNSW or IVF index."""

    def __init__(self, vectors: np.ndarray, kind: Literal["hnsw", "ivf"] | None = None,
                 index_file: Path | None = None, seed: int = 0):
        import faiss

        self.count = len(vectors)
        if index_file is not None and index_file.exists():
            self.index = faiss.read_index(str(index_file))
        else:
            self.index = self._build(faiss, np.ascontiguousarray(vectors, np.float32), kind, seed)
            if index_file is not None:
                tmp = index_file.with_suffix(".tmp")
                faiss.write_index(self.index, str(tmp))
                tmp.replace(index_file)
        if hasattr(self.index, "hnsw"):
            self.index.hnsw.efSearch = 128
        else:
            faiss.extract_index_ivf(self.index).nprobe = 32

    @staticmethod
    def _build(faiss, vectors: np.ndarray, kind: str | None, seed: int):
        count, dim = vectors.shape
        kind = kind or ("hnsw" if count <= HNSW_UP_TO else "ivf")
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
        else:
            lists = max(1, int(np.sqrt(count)))  # 1,000 lists of ~1,000 vectors at 1M
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists,
                                       faiss.METRIC_INNER_PRODUCT)
            sample = np.random.default_rng(seed).choice(count, min(count, 64 * lists), False)
            index.train(vectors[np.sort(sample)])
        index.add(vectors)
        return index

    def search(self, query: np.ndarray, k: int, exclude: Collection[int] = ()) -> Hits:
        want = min(k + len(exclude), self.count)
        if want <= 0:
            return Hits(np.zeros(0, np.int64), np.zeros(0, np.float32))
        scores, rows = self.index.search(_unit(query)[None], want)
        keep = (rows[0] >= 0) & ~np.isin(rows[0], np.fromiter(exclude, np.int64))
        return Hits(rows[0][keep][:k].astype(np.int64), scores[0][keep][:k])


def make_search(vectors: np.ndarray, backend: Literal["auto", "exact", "faiss"] = "auto",
                index_file: Path | None = None) -> Search:
    """Exact for small galleries, faiss past EXACT_UP_TO images (or when asked)."""
    if backend == "exact" or (backend == "auto" and len(vectors) <= EXACT_UP_TO):
        return ExactSearch(vectors)
    return FaissSearch(vectors, index_file=index_file)
