"""Benchmarks of scaling out (docs/scale.md): indexing on Ray, and search at ten million images.

    python -m scripts.bench_scale indexing --images 1000 --rounds 3
    python -m scripts.bench_scale mixture --real runs/index/flickr8k runs/index/tuxpaint
    python -m scripts.bench_scale search --size 1000000 --work runs/bench/1m --real ...
    python -m scripts.bench_scale search --size 10000000 --work runs/bench/10m --real ... \\
        --candidates chosen
    python -m scripts.bench_scale rows --work runs/bench/10m
    python -m scripts.bench_scale serve --work runs/bench/10m

1. indexing: the single-process indexer and the Ray one (a local Ray on this machine, started
   once beforehand and timed apart) on the same real images, alternately, round after round.
2. mixture: real embeddings (gallery indexes of Flickr8k and the Tux Paint stamps made with the
   shipped model) and a Gaussian mixture fitted to them, side by side: how alike they are.
3. search: SIZE vectors drawn from that mixture into a memory-mapped .npy (in chunks: 10M is
   12 GB), queries that are real (held-out image embeddings, and Flickr8k dev captions through
   the word space), exact top 10 by chunked brute force, then each candidate compressed index
   built (timed) and queried in a fresh process (latency, recall@10, resident memory).
4. rows: reading the rows a query re-ranks from a cold disk, three ways.
5. serve: the same vectors as a gallery index, loaded and queried by the server's own code.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scripts.common import add_record_arg, recorded
from server.artifacts import DEFAULT_MODEL_DIR, load_word_space, model_fingerprint
from server.datasets import SHARED_FLICKR8K, read_flickr8k, read_tuxpaint
from server.serve.encoder import ImageEncoder
from server.serve.gallery import Gallery, Item, write_generation
from server.serve.indexer import IndexOptions, build_index, dataset_sources
from server.serve.query import QueryError
from server.serve.search import (
    COMPRESSED,
    CompressedSearch,
    FaissSearch,
    Rows,
    compressed_file,
)
from server.vectors import normalized

K = 10
CHUNK = 200_000  # vectors generated, or scanned for the ground truth, at a time
QUERIES = 200  # per kind: image and text
# Candidate compressed indexes (faiss factory strings, {lists} filled in by the size), as
# autofaiss weighs them: bytes per vector against recall and speed.
CANDIDATES = {
    "chosen": COMPRESSED,
    "pq100": "IVF{lists}_HNSW32,PQ100np",
    "opq": "OPQ50,IVF{lists}_HNSW32,PQ50np",
    "flat-quantizer": "IVF{lists},PQ50np",
}
PROBES = (16, 32, 64, 128, 256, 512)
RERANKS = (0, 50, 100, 200, 400)


# ---- 1. indexing ---------------------------------------------------------------------------

def bench_indexing(count: int, rounds: int) -> None:
    import ray

    from server.serve.ray_indexer import RayEmbedder

    if SHARED_FLICKR8K.exists():
        name, records = "Flickr8k dev", read_flickr8k(SHARED_FLICKR8K, "dev")[:count]
    else:
        name, records = "Tux Paint stamps", read_tuxpaint()[:count]
    for record in records:  # both read from the page cache
        record.image.read_bytes()
    root, sources = dataset_sources(records)
    encoder = ImageEncoder()
    start = time.perf_counter()
    ray.init(address="local", log_to_driver=False, configure_logging=False)
    started = time.perf_counter() - start
    print(f"\n## Indexing {len(records)} images of {name}: one process against Ray "
          f"(a local Ray, {int(ray.cluster_resources()['CPU'])} CPUs, started in "
          f"{started:.1f} s)\n\n| round | single process img/s | Ray img/s | Ray / single |\n"
          "|---|---|---|---|")
    for round_ in range(1, rounds + 1):
        rates = [_rate(sources, root, encoder, embedder)
                 for embedder in (None, RayEmbedder())]
        print(f"| {round_} | {rates[0]:.1f} | {rates[1]:.1f} | {rates[1] / rates[0]:.2f}x |",
              flush=True)
    ray.shutdown()


def _rate(sources, root: Path, encoder: ImageEncoder, embedder) -> float:
    extra = {} if embedder is None else {"embedder": embedder}
    with tempfile.TemporaryDirectory() as index:
        report = build_index(sources, root, Path(index), encoder,
                             options=IndexOptions(progress=False), **extra)
    return report.embedded / report.seconds


# ---- 2. a mixture fitted to real embeddings -----------------------------------------------

@dataclass
class Mixture:
    """Gaussians in the embedding space (a component per k-means cluster of the real vectors,
    its covariance shrunk towards the pooled one), sampled, then scaled to unit length."""

    weights: np.ndarray  # (components,)
    means: np.ndarray  # (components, dim)
    factors: np.ndarray  # (components, dim, dim) Cholesky factors of the covariances

    @classmethod
    def fit(cls, vectors: np.ndarray, components: int, seed: int = 0) -> Mixture:
        import faiss

        kmeans = faiss.Kmeans(vectors.shape[1], components, niter=20, seed=seed,
                              spherical=True)
        kmeans.train(vectors)
        labels = kmeans.index.search(vectors, 1)[1][:, 0]
        groups = [vectors[labels == c] for c in range(components)]
        groups = [g for g in groups if len(g) >= 2]
        pooled = sum(np.cov(g, rowvar=False) * (len(g) - 1) for g in groups) / len(vectors)
        prior = vectors.shape[1]  # the pooled covariance counts as this many vectors
        factors = [np.linalg.cholesky(
            (np.cov(g, rowvar=False) * (len(g) - 1) + prior * pooled) / (len(g) - 1 + prior)
            + 1e-6 * np.eye(vectors.shape[1])) for g in groups]
        sizes = np.array([len(g) for g in groups], np.float64)
        return cls(sizes / sizes.sum(), np.stack([g.mean(axis=0) for g in groups]),
                   np.stack(factors))

    def sample(self, count: int, rng: np.random.Generator) -> np.ndarray:
        picks = rng.choice(len(self.weights), count, p=self.weights)
        out = np.empty((count, self.means.shape[1]), np.float32)
        for component in np.unique(picks):
            rows = np.flatnonzero(picks == component)
            noise = rng.standard_normal((len(rows), self.means.shape[1]))
            out[rows] = self.means[component] + noise @ self.factors[component].T
        return normalized(out)

    def log_likelihood(self, vectors: np.ndarray) -> float:
        """Mean log density of vectors: held-out vectors pick the number of components."""
        per_component = []
        for weight, mean, factor in zip(self.weights, self.means, self.factors, strict=True):
            solved = np.linalg.solve(factor, (vectors - mean).T)
            logdet = 2 * np.log(np.diag(factor)).sum()
            per_component.append(np.log(weight) - 0.5 * ((solved ** 2).sum(axis=0) + logdet))
        stacked = np.stack(per_component)
        top = stacked.max(axis=0)
        return float(np.mean(top + np.log(np.exp(stacked - top).sum(axis=0))))

    def save(self, path: Path) -> None:
        np.savez(path, weights=self.weights, means=self.means, factors=self.factors)

    @classmethod
    def load(cls, path: Path) -> Mixture:
        with np.load(path) as saved:
            return cls(saved["weights"], saved["means"], saved["factors"])


def real_vectors(indexes: list[Path]) -> np.ndarray:
    """The vectors of some gallery indexes, less Flickr8k's test images: choices are made
    without the test split (README: data rules)."""
    test = {r.image.name for r in read_flickr8k(SHARED_FLICKR8K, "test")} \
        if SHARED_FLICKR8K.exists() else set()
    parts = []
    for index in indexes:
        gallery = Gallery(index)
        rows = [item.row for item in gallery.all_items() if Path(item.path).name not in test]
        parts.append(np.asarray(gallery.vectors, np.float32)[rows])
    return np.concatenate(parts)


def split_real(vectors: np.ndarray, held_out: int, seed: int = 0
               ) -> tuple[np.ndarray, np.ndarray]:
    """(vectors to fit on, held-out vectors): the held-out ones become image queries."""
    order = np.random.default_rng(seed).permutation(len(vectors))
    return vectors[order[held_out:]], vectors[order[:held_out]]


def fit_mixture(vectors: np.ndarray, seed: int = 0) -> Mixture:
    """The number of components that best predicts a fifth of the vectors left out."""
    fit, check = split_real(vectors, len(vectors) // 5, seed + 1)
    scores = {c: Mixture.fit(fit, c, seed).log_likelihood(check) for c in (8, 16, 32, 64, 128)}
    print("held-out log-likelihood by components: " +
          ", ".join(f"{c}: {s:.1f}" for c, s in scores.items()))
    return Mixture.fit(vectors, max(scores, key=scores.__getitem__), seed)


def describe(vectors: np.ndarray) -> dict[str, float]:
    """What matters to a nearest-neighbour index: how close neighbours are, how spread the
    rest is, and how many directions the vectors really use."""
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    nearest = sims.max(axis=1)
    np.fill_diagonal(sims, np.nan)
    spectrum = np.linalg.svd(vectors - vectors.mean(axis=0), compute_uv=False) ** 2
    return {"nearest p10": float(np.percentile(nearest, 10)),
            "nearest p50": float(np.median(nearest)),
            "nearest p90": float(np.percentile(nearest, 90)),
            "any pair mean": float(np.nanmean(sims)),
            "dims for 90% variance": float(np.searchsorted(np.cumsum(spectrum)
                                                           / spectrum.sum(), 0.9) + 1)}


def bench_mixture(indexes: list[Path], seed: int = 0) -> Mixture:
    vectors = real_vectors(indexes)
    fit, held_out = split_real(vectors, QUERIES, seed)
    mixture = fit_mixture(fit, seed)
    synthetic = mixture.sample(len(fit), np.random.default_rng(seed))
    real, fake = describe(fit), describe(synthetic)
    queries = np.concatenate([held_out, text_queries(QUERIES)])
    for nprobe in (2, 8):  # of 256 lists: as small a share as 64 of 8,192 at 10M, and more
        real[f"IVF-PQ recall@10, nprobe {nprobe}"] = small_index_recall(fit, queries, nprobe)
        fake[f"IVF-PQ recall@10, nprobe {nprobe}"] = small_index_recall(synthetic, queries,
                                                                        nprobe)
    print(f"\n## {len(fit):,} real embeddings against as many drawn from a mixture of "
          f"{len(mixture.weights)} Gaussians fitted to them\n\n| | real | mixture |\n|---|---|---|")
    for name in real:
        print(f"| {name} | {real[name]:.3f} | {fake[name]:.3f} |")
    return mixture


def small_index_recall(vectors: np.ndarray, queries: np.ndarray, nprobe: int) -> float:
    """Recall@10 of the chosen compressed index, PQ order alone (no re-ranking)."""
    with tempfile.TemporaryDirectory() as folder:
        search = CompressedSearch(vectors, Path(folder) / "small.index", nprobe=nprobe,
                                  rerank=0)
        _, found = latencies(search, queries)
    return recall(found, exact_top(vectors, queries))


# ---- 3. search at scale --------------------------------------------------------------------

def generate(mixture: Mixture, size: int, path: Path, seed: int = 1) -> np.ndarray:
    """SIZE vectors in a memory-mapped .npy, a chunk at a time (chunk i from seed (seed, i))."""
    if path.exists():
        vectors = np.load(path, mmap_mode="r")
        if vectors.shape[0] == size:
            return vectors
    start = time.perf_counter()
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                    shape=(size, mixture.means.shape[1]))
    for number, first in enumerate(range(0, size, CHUNK)):
        rows = min(CHUNK, size - first)
        out[first : first + rows] = mixture.sample(rows, np.random.default_rng((seed, number)))
    out.flush()
    print(f"generated {size:,} vectors in {time.perf_counter() - start:.0f} s", flush=True)
    del out
    return np.load(path, mmap_mode="r")


def text_queries(count: int) -> np.ndarray:
    """Real searches: Flickr8k dev captions (the second of each) through the word space."""
    words = load_word_space()
    records = read_flickr8k(SHARED_FLICKR8K, "dev")[:count]
    return normalized(words.caption_matrix([r.captions[1] for r in records]))


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = K) -> np.ndarray:
    """Exact top k rows per query by brute force over the memory map, a chunk at a time."""
    best_rows = np.zeros((len(queries), 0), np.int64)
    best_scores = np.zeros((len(queries), 0), np.float32)
    for first in range(0, len(vectors), CHUNK):
        scores = queries @ np.asarray(vectors[first : first + CHUNK], np.float32).T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        best_rows = np.concatenate([best_rows, top + first], axis=1)
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, 1)], 1)
        keep = np.argsort(-best_scores, axis=1)[:, :k]
        best_rows = np.take_along_axis(best_rows, keep, 1)
        best_scores = np.take_along_axis(best_scores, keep, 1)
    return best_rows


def prepare(args: argparse.Namespace) -> None:
    """Mixture, vectors, queries and their exact neighbours in the work folder (kept)."""
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "truth.npz").exists():
        real = real_vectors(args.real)
        fit, held_out = split_real(real, QUERIES)
        mixture = fit_mixture(fit)
        mixture.save(work / "mixture.npz")
        vectors = generate(mixture, args.size, work / "vectors.npy")
        queries = {"image": held_out, "text": text_queries(QUERIES)}
        start = time.perf_counter()
        truth = {kind: exact_top(vectors, q) for kind, q in queries.items()}
        print(f"exact top {K} of {2 * QUERIES} queries in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        arrays: dict[str, Any] = {f"{kind}_queries": q for kind, q in queries.items()}
        arrays |= {f"{kind}_truth": t for kind, t in truth.items()}
        np.savez(work / "truth.npz", **arrays)


def bench_search(args: argparse.Namespace) -> None:
    prepare(args)
    vectors = np.load(args.work / "vectors.npy", mmap_mode="r")
    print(f"\n## Search among {len(vectors):,} vectors drawn like real embeddings")
    names = args.candidates.split(",") + (["ivf"] if args.ivf else [])
    for name in names:
        index_file = args.work / f"{name}.index"
        if not index_file.exists():
            start = time.perf_counter()
            build(name, vectors, index_file)
            print(f"\nbuilt {name} ({CANDIDATES.get(name, 'IVF holding the vectors')}) in "
                  f"{time.perf_counter() - start:.0f} s, "
                  f"{index_file.stat().st_size / 2**20:.0f} MiB", flush=True)
        subprocess.run([sys.executable, "-m", "scripts.bench_scale", "query", "--work",
                        str(args.work), "--index-name", name, "--target", str(args.target)],
                       check=True)


def build(name: str, vectors: np.ndarray, index_file: Path) -> None:
    if name == "ivf":  # the server's index up to COMPRESS_FROM: IVF holding the vectors
        FaissSearch(vectors, kind="ivf", index_file=index_file)
    else:
        CompressedSearch(vectors, index_file, factory=CANDIDATES[name])


# ---- in a fresh process: load one index, query it, say how much memory it took -------------

def memory() -> dict[str, float]:
    """This process's resident memory (MiB): in all, anonymous, and of mapped files (the
    index's codes and the vectors' rows read, which the kernel may drop), and its peak."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text()
                  .splitlines() if ":" in line)
    return {key: int(status[key].split()[0]) / 1024
            for key in ("VmRSS", "RssAnon", "RssFile", "VmHWM")}


def latencies(search, queries: np.ndarray) -> tuple[list[float], np.ndarray]:
    times, found = [], np.full((len(queries), K), -1, np.int64)
    for row, query in enumerate(queries):
        start = time.perf_counter()
        hits = search.search(query, K)
        times.append(time.perf_counter() - start)
        found[row, : len(hits.rows)] = hits.rows
    return times, found


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))


def settings(name: str) -> Iterator[tuple[int, int]]:
    if name == "ivf":
        yield from ((nprobe, 0) for nprobe in PROBES)
    else:
        yield from ((nprobe, rerank) for nprobe in PROBES for rerank in RERANKS)


def open_search(name: str, work: Path, vectors: np.ndarray):
    """As the server opens it: the IVF index is read whole, the compressed one mapped."""
    if name == "ivf":
        return FaissSearch(vectors, kind="ivf", index_file=work / "ivf.index")
    return CompressedSearch(vectors, work / f"{name}.index")


def query_one(work: Path, name: str, target: float) -> None:
    saved = np.load(work / "truth.npz")
    for path in (work / "vectors.npy", work / f"{name}.index"):
        evict(path)  # as after a reboot: the first queries read from disk
    vectors = np.load(work / "vectors.npy", mmap_mode="r")
    before = memory()
    start = time.perf_counter()
    search = open_search(name, work, vectors)
    opened = time.perf_counter() - start
    grown = memory()["VmRSS"] - before["VmRSS"]
    times, _ = latencies(search, np.concatenate([saved["image_queries"],
                                                 saved["text_queries"]]))
    print(f"\n### {name}: opened in {opened:.2f} s ({grown:.0f} MiB more resident); the "
          f"first {len(times)} queries, from a cold page cache, default settings: p50 "
          f"{np.percentile(times, 50) * 1e3:.2f} ms, p99 {np.percentile(times, 99) * 1e3:.2f} "
          f"ms; resident then (MiB): {rounded(memory())}\n\n"
          "| nprobe | rerank | image recall@10 | text recall@10 | p50 ms | p99 ms |\n"
          "|---|---|---|---|---|---|", flush=True)
    good = []
    for nprobe, rerank in settings(name):
        configure(search, name, nprobe, rerank)
        times, recalls = [], []
        for kind in ("image", "text"):
            took, found = latencies(search, saved[f"{kind}_queries"])
            times += took
            recalls.append(recall(found, saved[f"{kind}_truth"]))
        p50 = float(np.percentile(times, 50) * 1e3)
        print(f"| {nprobe} | {rerank} | {recalls[0]:.3f} | {recalls[1]:.3f} | {p50:.2f} | "
              f"{np.percentile(times, 99) * 1e3:.2f} |", flush=True)
        if min(recalls) >= target:
            good.append((p50, nprobe, rerank))
    best = f"nprobe {min(good)[1]}, rerank {min(good)[2]}: p50 {min(good)[0]:.2f} ms" \
        if good else "none"
    print(f"\nfastest setting with recall@10 >= {target} for both kinds: {best}")
    print(f"resident memory after all queries (MiB): {rounded(memory())}")


def evict(path: Path) -> None:
    """Drop this one file's pages from the page cache (nobody else's)."""
    with open(path, "rb") as file:
        os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def rounded(values: dict[str, float]) -> str:
    return json.dumps({key: round(value) for key, value in values.items()})


def bench_rows(work: Path, trials: int = 20, count: int = 100) -> None:
    """Re-ranking reads ~100 random rows of the vectors file: how long from a cold cache."""
    vectors = np.load(work / "vectors.npy", mmap_mode="r")
    rng = np.random.default_rng(0)
    ways = {"through the memory map": lambda rows: np.asarray(vectors[rows]),
            "pread, row after row": lambda rows: Rows(vectors).read(rows),
            "fadvise every row, then pread (the server's)": lambda rows: _fetched(vectors,
                                                                                rows)}
    print(f"\n## {count} random rows of {len(vectors):,}, the file evicted from the page cache "
          f"before each of {trials} trials\n\n| how | p50 ms | p90 ms |\n|---|---|---|")
    for name, read in ways.items():
        times = []
        for _ in range(trials):
            evict(work / "vectors.npy")
            rows = np.sort(rng.choice(len(vectors), count, replace=False))
            start = time.perf_counter()
            read(rows)
            times.append(time.perf_counter() - start)
        print(f"| {name} | {np.percentile(times, 50) * 1e3:.1f} | "
              f"{np.percentile(times, 90) * 1e3:.1f} |", flush=True)


def _fetched(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    reader = Rows(vectors)
    reader.prefetch(rows)
    return reader.read(rows)


def bench_serve(work: Path, measure: bool) -> None:
    """The server's own path on the work folder's vectors: a gallery index of them (written by
    write_generation, once), its compressed search (the chosen index, linked where the server
    looks for it), opened by `load_app` in a fresh process and asked real text queries."""
    gallery = work / "gallery"
    if not measure:
        if not (gallery / "manifest.json").exists():
            write_gallery(work, gallery)
        subprocess.run([sys.executable, "-m", "scripts.bench_scale", "serve", "--work",
                        str(work), "--measure"], check=True)
        return
    from server.serve.app import load_app

    start = time.perf_counter()
    app = load_app(DEFAULT_MODEL_DIR, gallery, caption_weight=0)
    loaded = time.perf_counter() - start
    assert app.retriever is not None and app.gallery is not None, "the gallery did not load"
    captions = [r.captions[2] for r in read_flickr8k(SHARED_FLICKR8K, "dev")[:QUERIES]]
    times = []
    for caption in captions:
        start = time.perf_counter()
        with contextlib.suppress(QueryError):  # a word the model never saw: said, not searched
            app.retriever.answer(caption, k=24)
            times.append(time.perf_counter() - start)
    print(f"\n## The server's loader and query path on {len(app.gallery):,} images\n\n"
          f"load_app: {loaded:.2f} s ({type(app.retriever.search).__name__}); {len(times)} "
          f"Flickr8k dev captions answered (24 results, records and nearest words): p50 "
          f"{np.percentile(times, 50) * 1e3:.1f} ms, p99 {np.percentile(times, 99) * 1e3:.1f} "
          f"ms; resident (MiB): {rounded(memory())}")


def write_gallery(work: Path, gallery: Path) -> None:
    vectors = np.load(work / "vectors.npy", mmap_mode="r")
    start = time.perf_counter()
    items = [Item(row + 1, row, f"photos/{row:08d}.jpg", 100_000, 0) for row in
             range(len(vectors))]
    write_generation(gallery, root=Path("/photos"), model_fingerprint=model_fingerprint(
        DEFAULT_MODEL_DIR), items=items, vectors=vectors, skipped=[], next_id=len(items) + 1)
    os.link(work / "chosen.index", compressed_file(Gallery(gallery).search_cache()))
    print(f"wrote a gallery index of {len(items):,} images in "
          f"{time.perf_counter() - start:.0f} s", flush=True)


def configure(search, name: str, nprobe: int, rerank: int) -> None:
    import faiss

    if name == "ivf":
        faiss.extract_index_ivf(search.index).nprobe = nprobe
    else:
        search.set_probes(nprobe)
        search.rerank = rerank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    indexing = commands.add_parser("indexing")
    indexing.add_argument("--images", type=int, default=1000)
    indexing.add_argument("--rounds", type=int, default=3)
    for name in ("mixture", "search"):
        command = commands.add_parser(name)
        command.add_argument("--real", type=Path, nargs="+", required=True,
                             help="gallery indexes of real images made with the shipped model")
    search = commands.choices["search"]
    search.add_argument("--size", type=int, default=1_000_000)
    search.add_argument("--work", type=Path, required=True,
                        help="where vectors, ground truth and indexes are kept between runs")
    search.add_argument("--candidates", default=",".join(CANDIDATES))
    search.add_argument("--ivf", action="store_true",
                        help="also the IVF index that holds the vectors (the server's up to 1M)")
    search.add_argument("--target", type=float, default=0.9, help="recall@10 to reach")
    serve = commands.add_parser("serve")
    serve.add_argument("--work", type=Path, required=True, help="a search run's folder")
    serve.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    rows = commands.add_parser("rows")
    rows.add_argument("--work", type=Path, required=True, help="a search run's folder")
    query = commands.add_parser("query")
    query.add_argument("--work", type=Path, required=True)
    query.add_argument("--index-name", required=True)
    query.add_argument("--target", type=float, default=0.9)
    add_record_arg(parser)
    args = parser.parse_args()
    with recorded(args, "bench_scale"):
        if args.command == "indexing":
            bench_indexing(args.images, args.rounds)
        elif args.command == "mixture":
            bench_mixture(args.real)
        elif args.command == "search":
            bench_search(args)
        elif args.command == "serve":
            bench_serve(args.work, args.measure)
        elif args.command == "rows":
            bench_rows(args.work)
        else:
            query_one(args.work, args.index_name, args.target)


if __name__ == "__main__":
    main()
