"""Top-k cosine search over a gallery's unit vectors, exact or approximate, behind one interface.

`ExactSearch` is a matrix product and `argpartition`: exact, no build step, and fast enough up
to a few hundred thousand images. `FaissSearch` trades a little recall for speed on larger
galleries: HNSW while the graph is cheap to build (asked for explicitly), IVF beyond.
`CompressedSearch` is for galleries larger than memory (ten million images): IVF-PQ codes read
from disk on demand, their best candidates re-scored against the exact vectors.
`make_search` picks exact up to EXACT_UP_TO images, IVF up to COMPRESS_FROM, compressed beyond.
All return the same `Hits`, and all can leave given rows (the query's own images) out.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from server.vectors import normalized, top_k

# Below this many images the exact product is both fast and free to build (docs/gallery-index.md)
EXACT_UP_TO = 200_000
# Up to this many images the exact search keeps its own copy of the vectors, transposed (d x n,
# contiguous: 160 MB at 100,000 x 400): OpenBLAS multiplies a batch of a few queries by it
# faster than by the rows (docs/server.md, Speed). Beyond, the rows are used as they are.
COLUMNS_UP_TO = 100_000
HNSW_UP_TO = 100_000
IVF_NPROBE = 64
# Beyond this many, an IVF index holding the vectors needs more than 1.2 GB: compress
# (measured in docs/scale.md)
COMPRESS_FROM = 1_000_000
# The compressed index, chosen by scripts/bench_scale.py on vectors distributed like real
# embeddings: 50 bytes a vector plus its id, a graph over the lists' centres (fast to add
# ten million vectors to), and the search settings that reach recall@10 0.9 at 10M. "np": no
# polysemous training, which would triple the training time for nothing used here.
COMPRESSED = "IVF{lists}_HNSW32,PQ50np"
NPROBE = 128  # lists scanned: 1.6% of them at 10M
RERANK = 200  # candidates re-scored against the exact vectors
TRAIN_PER_LIST = 30  # training sample: vectors per list (k-means cost grows with it)
TRAIN_ITERATIONS = 10  # of the lists' k-means (faiss: 25): the lists are a partition only
ADD_CHUNK = 100_000  # vectors read, converted and added at a time: memory stays flat
COMPRESS_MIN = 10_000  # fewer cannot train the codes (256 centroids per part, 39 vectors each)

Backend = Literal["auto", "exact", "faiss", "compressed"]  # `make_search` (and --backend)


@dataclass(frozen=True)
class Hits:
    rows: np.ndarray    # int64 row numbers of the gallery matrix, best first
    scores: np.ndarray  # float32 cosine similarities, same order


class Search(Protocol):
    """What every index answers; each kind implements `search_many`, a batch at once."""

    def search_many(self, queries: np.ndarray, k: int,
                    excludes: Sequence[Collection[int]] | None = None) -> list[Hits]: ...

    def search(self, query: np.ndarray, k: int, exclude: Collection[int] = ()) -> Hits:
        return self.search_many(query, k, [exclude])[0]


def _units(queries: np.ndarray) -> np.ndarray:
    queries = np.atleast_2d(np.asarray(queries, np.float32))
    norms = np.linalg.norm(queries, axis=1)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise ValueError("a query vector is zero or not finite")
    return normalized(queries)


WITHIN_CHUNK = 65_536  # rows of a filter scored at once: its memory stays a few MB


def search_within(vectors: np.ndarray, rows: np.ndarray, query: np.ndarray, k: int,
                  exclude: Collection[int] = ()) -> Hits:
    """The best `k` of the gallery `rows` only (a filtered query), exactly, whatever index the
    gallery has: its cost is that of the rows kept, read from `vectors` a chunk at a time."""
    if exclude:
        rows = rows[~np.isin(rows, np.fromiter(exclude, np.int64))]
    unit = _units(query)[0]
    found_rows, found_scores = [np.zeros(0, np.int64)], [np.zeros(0, np.float32)]
    for start in range(0, len(rows), WITHIN_CHUNK):
        part = rows[start : start + WITHIN_CHUNK]
        scores = np.asarray(vectors[part], np.float32) @ unit
        best = top_k(scores[None], k)[0]
        found_rows.append(part[best])
        found_scores.append(scores[best])
    candidates, scores = np.concatenate(found_rows), np.concatenate(found_scores)
    best = top_k(scores[None], k)[0] if len(scores) else np.zeros(0, np.int64)
    return Hits(candidates[best].astype(np.int64), scores[best])


class ExactSearch(Search):
    def __init__(self, vectors: np.ndarray):
        if len(vectors) <= COLUMNS_UP_TO:
            self._columns = np.ascontiguousarray(np.asarray(vectors).T, np.float32)
        else:  # the rows as they are (memory-mapped): float16 storage halves the file, but
            # the product itself is much faster in float32
            self._columns = (vectors if vectors.dtype == np.float32
                             else vectors.astype(np.float32)).T
        self.vectors = self._columns.T  # the rows, float32: a view, not another copy

    def search_many(self, queries: np.ndarray, k: int,
                    excludes: Sequence[Collection[int]] | None = None) -> list[Hits]:
        """One matrix product for a batch: ~6x cheaper per query than one at a time."""
        scores = _units(queries) @ self._columns
        excludes = excludes or [()] * len(scores)
        for row, exclude in zip(scores, excludes, strict=True):
            if exclude:
                row[np.fromiter(exclude, np.int64)] = -np.inf
        top = top_k(scores, k)
        hits = []
        for row, rows, exclude in zip(scores, top, excludes, strict=True):
            rows = rows[: max(0, min(k, len(row) - len(exclude)))]
            hits.append(Hits(rows.astype(np.int64), row[rows]))
        return hits


class FaissSearch(Search):
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
            # 32 lists reached recall@10 0.94 on text queries at 1M, 64 reach 0.98 (scale.md)
            faiss.extract_index_ivf(self.index).nprobe = IVF_NPROBE

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

    def search_many(self, queries: np.ndarray, k: int,
                    excludes: Sequence[Collection[int]] | None = None) -> list[Hits]:
        queries = _units(queries)
        excludes = excludes or [()] * len(queries)
        want = min(k + max(map(len, excludes)), self.count)
        if want <= 0:
            return [_no_hits() for _ in queries]
        all_scores, all_rows = self.index.search(queries, want)
        return [_kept(rows, scores, exclude, k)
                for scores, rows, exclude in zip(all_scores, all_rows, excludes, strict=True)]


class CompressedSearch(Search):
    """IVF-PQ codes memory-mapped from disk; the best candidates re-scored exactly.

    At ten million images the vectors are 12 GB, and so would be an IVF index holding them.
    The codes take 58 bytes an image (50 of PQ, 8 of id) and are read from the index file on
    demand (faiss IO_FLAG_MMAP), so the server starts in a second and its memory stays small.
    PQ scores are approximate: the best `rerank` candidates are scored again against the
    gallery's own vectors (only their rows are read: `Rows`), so the order of what is
    returned is exact.
    """

    def __init__(self, vectors: np.ndarray, index_file: Path, factory: str = COMPRESSED,
                 nprobe: int = NPROBE, rerank: int = RERANK, seed: int = 0):
        import faiss

        self.rows, self.rerank = Rows(vectors), rerank
        if not index_file.exists():
            tmp = index_file.with_suffix(".tmp")
            faiss.write_index(build_compressed(vectors, factory, seed), str(tmp))
            tmp.replace(index_file)
        self.index = faiss.read_index(str(index_file), faiss.IO_FLAG_MMAP)
        self.set_probes(nprobe)
        _read_ahead(index_file)

    def set_probes(self, nprobe: int) -> None:
        """Lists scanned per query; the graph over their centres looks a little wider."""
        import faiss

        ivf = faiss.extract_index_ivf(self.index)
        ivf.nprobe = nprobe
        quantizer = faiss.downcast_index(ivf.quantizer)
        if hasattr(quantizer, "hnsw"):
            quantizer.hnsw.efSearch = 2 * nprobe

    def search_many(self, queries: np.ndarray, k: int,
                    excludes: Sequence[Collection[int]] | None = None) -> list[Hits]:
        queries = _units(queries)
        excludes = excludes or [()] * len(queries)
        want = min(max(self.rerank, k) + max(map(len, excludes)), len(self.rows.vectors))
        if want <= 0:
            return [_no_hits() for _ in queries]
        _, candidates = self.index.search(queries, want)
        self.rows.prefetch(candidates[candidates >= 0])
        return [self._rescored(query, rows[rows >= 0], exclude, k)
                for query, rows, exclude in zip(queries, candidates, excludes, strict=True)]

    def _rescored(self, query: np.ndarray, rows: np.ndarray, exclude: Collection[int],
                  k: int) -> Hits:
        rows = np.sort(rows)  # rows read in file order
        scores = self.rows.read(rows) @ query
        order = np.argsort(-scores, kind="stable")
        return _kept(rows[order], scores[order], exclude, k)


class Rows:
    """Chosen rows of a matrix, read from its .npy file with pread when it is memory-mapped.

    Reading through the map would work too, but each fault maps the cached pages around it
    as well: after a few thousand queries the server would show gigabytes of the gallery's
    file as its own resident memory. Read this way, the rows live in the page cache only,
    as a database's do. From a cold disk, asking for every row first (fadvise) and then
    reading them takes 2.0 ms for 100 rows rather than 7.5 (docs/scale.md).
    """

    def __init__(self, vectors: np.ndarray):
        self.vectors = vectors
        # a whole .npy file, not a slice of one (whose offset would not be its own)
        mapped = vectors if isinstance(vectors, np.memmap) and isinstance(vectors.base,
                                                                           mmap.mmap) else None
        self.fd = None if mapped is None else os.open(mapped.filename, os.O_RDONLY)
        self.offset = 0 if mapped is None else mapped.offset
        self.size = vectors.strides[0]

    def prefetch(self, rows: np.ndarray) -> None:
        if self.fd is not None:
            for row in np.unique(rows).tolist():
                os.posix_fadvise(self.fd, self.offset + row * self.size, self.size,
                                 os.POSIX_FADV_WILLNEED)

    def read(self, rows: np.ndarray) -> np.ndarray:
        if self.fd is None:
            return np.asarray(self.vectors[rows], np.float32)
        raw = b"".join(os.pread(self.fd, self.size, self.offset + row * self.size)
                       for row in rows.tolist())
        return np.frombuffer(raw, self.vectors.dtype).reshape(len(rows), -1).astype(np.float32)

    def __del__(self) -> None:
        fd = getattr(self, "fd", None)
        if fd is not None:
            os.close(fd)


def _read_ahead(path: Path) -> None:
    """Start reading the codes into the page cache now, in the background: the first queries
    then scan lists from memory (600 MB at 10M, read once)."""
    with open(path, "rb") as file:
        os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_WILLNEED)


def build_compressed(vectors: np.ndarray, factory: str = COMPRESSED, seed: int = 0):
    """A trained IVF-PQ index of `vectors` (a memory map, at 10M), read a chunk at a time."""
    import faiss

    count, dim = vectors.shape
    lists = _lists(count)
    index = faiss.index_factory(dim, factory.format(lists=lists), faiss.METRIC_INNER_PRODUCT)
    faiss.extract_index_ivf(index).cp.niter = TRAIN_ITERATIONS
    sample = np.random.default_rng(seed).choice(count, min(count, TRAIN_PER_LIST * lists),
                                                replace=False)
    index.train(np.asarray(vectors[np.sort(sample)], np.float32))
    for start in range(0, count, ADD_CHUNK):
        index.add(np.asarray(vectors[start : start + ADD_CHUNK], np.float32))
    return index


def _lists(count: int) -> int:
    """IVF lists: about 2.6 sqrt(n), a power of two (8,192 at 10M, 2,048 at 1M), at most one
    per 39 vectors, the fewest faiss trains well from."""
    return int(2 ** round(np.log2(max(1.0, min(2.6 * np.sqrt(count), count / 39)))))


def _kept(rows: np.ndarray, scores: np.ndarray, exclude: Collection[int], k: int) -> Hits:
    """The best k of rows (best first) that are real (faiss pads with -1) and not excluded."""
    keep = (rows >= 0) & ~np.isin(rows, np.fromiter(exclude, np.int64))
    return Hits(rows[keep][:k].astype(np.int64), scores[keep][:k])


def _no_hits() -> Hits:
    return Hits(np.zeros(0, np.int64), np.zeros(0, np.float32))


def pick_backend(count: int, backend: Backend = "auto") -> Backend:
    """What `make_search` builds for a gallery of `count` images: the one asked for, or by
    size exact up to EXACT_UP_TO, faiss IVF up to COMPRESS_FROM, compressed beyond."""
    if backend != "auto":
        return backend
    if count <= EXACT_UP_TO:
        return "exact"
    return "faiss" if count <= COMPRESS_FROM else "compressed"


def make_search(vectors: np.ndarray, backend: Backend = "auto",
                index_file: Path | None = None) -> Search:
    """The search `pick_backend` names; faiss ones are kept in (or read from) `index_file`,
    the compressed one beside it (`compressed_file`)."""
    chosen = pick_backend(len(vectors), backend)
    if chosen == "exact":
        return ExactSearch(vectors)
    if chosen == "faiss":
        return FaissSearch(vectors, index_file=index_file)
    if len(vectors) < COMPRESS_MIN:
        raise ValueError(f"the compressed search needs {COMPRESS_MIN:,} images at least, "
                         f"not {len(vectors):,}: use --backend exact or faiss")
    if index_file is None:
        raise ValueError("the compressed search lives in a file: give index_file")
    return CompressedSearch(vectors, compressed_file(index_file))


def compressed_file(index_file: Path) -> Path:
    """Where the compressed index is kept beside `index_file` (faiss-<g>.index): a name of
    its own, so that changing --backend never opens one kind of index as the other."""
    return index_file.with_name(f"{index_file.stem}-compressed{index_file.suffix}")
