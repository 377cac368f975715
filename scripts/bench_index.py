"""Benchmarks of the gallery index, each beside its baseline, measured in the same run.

    python -m scripts.bench_index                      # everything (about 10 minutes on 2 cores)
    python -m scripts.bench_index --only indexing --images 300
    python -m scripts.bench_index --only search --sizes 10000,100000

1. Indexing throughput: our indexer (ONNX Runtime, batches, a decoding worker) against a naive
   loop (PIL open, one image at a time, eager PyTorch: needs the train extra), on the same real
   images: Flickr8k dev when ../shared is there, else the Tux Paint stamps.
2. Search latency p50/p99 on synthetic unit vectors (clustered, like real embeddings): exact
   against faiss, with faiss's recall@10 against exact.
3. Opening a 1M-image index from disk (memory-mapped) and answering its first query.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from scripts.common import add_record_arg, recorded
from server.artifacts import DEFAULT_MODEL_DIR
from server.datasets import SHARED_FLICKR8K, read_flickr8k, read_tuxpaint
from server.images import to_array
from server.learn.export import image_network
from server.serve.encoder import ImageEncoder
from server.serve.gallery import Gallery, Item, write_generation
from server.serve.indexer import IndexOptions, build_index, dataset_sources
from server.serve.search import ExactSearch, FaissSearch

DIM = 300


def sample_records(count: int):
    if SHARED_FLICKR8K.exists():
        return "Flickr8k dev", read_flickr8k(SHARED_FLICKR8K, "dev")[:count]
    return "Tux Paint stamps", read_tuxpaint()[:count]


def bench_indexing(count: int) -> None:
    name, records = sample_records(count)
    paths = [r.image for r in records]
    # the map is left out: laid out once after the images (scripts.bench_map times it), it
    # would add its fixed cost to a small sample's rate
    print(f"\n## Indexing {len(paths)} images of {name} (decoding, thumbnails, network, "
          "appearance; not the map)")
    for path in paths:  # every pipeline then reads from the page cache, the first one too
        path.read_bytes()
    encoder = ImageEncoder()
    network = image_network(DEFAULT_MODEL_DIR)
    with torch.no_grad():
        start = time.perf_counter()
        for path in paths:  # the naive loop: one image at a time, full decode, eager PyTorch
            pixels = to_array(Image.open(path).convert("RGB"), encoder.image_size)
            network(torch.from_numpy(pixels)[None])
        naive = len(paths) / (time.perf_counter() - start)
    root, sources = dataset_sources(records)
    rates: dict[bool, list[float]] = {}
    for thumbnails in (False, True, False, True):  # alternated: the machine's speed drifts
        with tempfile.TemporaryDirectory() as index:
            report = build_index(sources, root, Path(index), encoder,
                                 options=IndexOptions(progress=False, thumbnails=thumbnails,
                                                      map=False))
        rates.setdefault(thumbnails, []).append(report.embedded / report.seconds)
    rate, bare = max(rates[True]), max(rates[False])
    print("| pipeline | images/s | vs naive |\n|---|---|---|")
    print(f"| naive loop (PIL, 1 image, eager PyTorch) | {naive:.1f} | 1.00x |")
    print(f"| indexer, ONNX Runtime, no thumbnails (best of 2) | {bare:.1f} | "
          f"{bare / naive:.2f}x |")
    print(f"| indexer, ONNX Runtime, with thumbnails (shipped default; best of 2) | {rate:.1f} | "
          f"{rate / naive:.2f}x ({rate / bare:.2f}x without) |")


def clustered_vectors(count: int, seed: int, centres: int = 2000, dim: int = DIM
                      ) -> np.ndarray:
    """Unit vectors around random centres: real embeddings cluster, uniform noise does not."""
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(12345).normal(size=(centres, dim)).astype(np.float32)
    out = np.empty((count, dim), np.float32)
    for start in range(0, count, 100_000):
        stop = min(count, start + 100_000)
        out[start:stop] = means[rng.integers(0, centres, stop - start)]
        out[start:stop] += 0.7 * rng.normal(size=(stop - start, dim)).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def latencies(search, queries: np.ndarray, k: int = 10) -> tuple[float, float, list]:
    times, results = [], []
    for query in queries:
        start = time.perf_counter()
        hits = search.search(query, k)
        times.append(time.perf_counter() - start)
        results.append(set(hits.rows.tolist()))
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3), results


def bench_search(sizes: list[int], queries: int = 200) -> None:
    print("\n## Search latency, top 10, one query at a time (synthetic clustered vectors, 300d)")
    print("| vectors | exact p50 ms | exact p99 ms | faiss | build s | faiss p50 ms | "
          "faiss p99 ms | recall@10 |\n|---|---|---|---|---|---|---|---|")
    probe = clustered_vectors(queries, seed=99)
    for size in sizes:
        vectors = clustered_vectors(size, seed=1)
        exact_p50, exact_p99, truth = latencies(ExactSearch(vectors), probe)
        start = time.perf_counter()
        faiss_search = FaissSearch(vectors)
        build = time.perf_counter() - start
        kind = "HNSW" if hasattr(faiss_search.index, "hnsw") else "IVF"
        p50, p99, found = latencies(faiss_search, probe)
        recall = np.mean([len(a & b) / 10 for a, b in zip(truth, found, strict=True)])
        print(f"| {size:,} | {exact_p50:.2f} | {exact_p99:.2f} | {kind} | {build:.1f} | "
              f"{p50:.2f} | {p99:.2f} | {recall:.3f} |", flush=True)


def bench_load(size: int) -> None:
    print(f"\n## Opening a {size:,}-image index")
    vectors = clustered_vectors(size, seed=3)
    with tempfile.TemporaryDirectory() as directory:
        items = [Item(i, i, f"photos/{i:07d}.jpg", 100_000, 0, None) for i in range(size)]
        start = time.perf_counter()
        write_generation(Path(directory), root=Path("/photos"), model_fingerprint="bench",
                         items=items, vectors=vectors, skipped=[], next_id=size)
        written = time.perf_counter() - start
        del vectors, items
        start = time.perf_counter()
        gallery = Gallery(Path(directory), model_fingerprint="bench")
        search = ExactSearch(gallery.vectors)
        opened = time.perf_counter() - start
        query = clustered_vectors(1, seed=4)[0]
        start = time.perf_counter()
        hits = search.search(query, 10)
        gallery.items(hits.rows.tolist())
        first = time.perf_counter() - start
        start = time.perf_counter()
        FaissSearch(gallery.vectors, index_file=Path(directory) / "faiss.index")
        built = time.perf_counter() - start
        start = time.perf_counter()
        FaissSearch(gallery.vectors, index_file=Path(directory) / "faiss.index")
        reloaded = time.perf_counter() - start
    print(f"| step | seconds |\n|---|---|\n| write the index | {written:.2f} |\n"
          f"| open (manifest, memory-mapped matrix, sqlite) | {opened:.3f} |\n"
          f"| first exact query with its records (cold pages) | {first:.3f} |\n"
          f"| build the faiss IVF index and cache it | {built:.1f} |\n"
          f"| load the cached faiss index | {reloaded:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("indexing", "search", "load"))
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--load-size", type=int, default=1_000_000)
    add_record_arg(parser)
    args = parser.parse_args()
    with recorded(args, "bench_index"):
        if args.only in (None, "indexing"):
            bench_indexing(args.images)
        if args.only in (None, "search"):
            bench_search([int(s) for s in args.sizes.split(",")])
        if args.only in (None, "load"):
            bench_load(args.load_size)


if __name__ == "__main__":
    main()
