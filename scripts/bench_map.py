"""How long the map of the gallery takes (server/serve/gallery_map.py), against its targets:
the t-SNE layout of 10,000 images in 60 s and of 100,000 in 15 minutes on 2 cores, then the
regions at three zoom levels, placing 1% new images on the map, and the packed layout's size.

    python -m scripts.bench_map                           # 10,000 and 100,000 (about 6 minutes)
    python -m scripts.bench_map --sizes 10000             # about 30 s
    python -m scripts.bench_map --index runs/index/demo   # a real gallery's vectors
    python -m scripts.bench_map --record                  # also docs/figures/bench_map.md

By default the vectors are synthetic: 50-D unit vectors around random centres (real embeddings
cluster, uniform noise does not). With `--index`, a gallery's own vectors, tiled to each size
with a little noise on every copy when it holds fewer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from scripts.common import add_record_arg, recorded
from server.serve.gallery import Gallery
from server.serve.gallery_map import compute_layout, pack_layout, regions, update_layout
from server.vectors import normalized

DIM = 50
CENTRES = 200
SPREAD = 1.2  # noise around a centre, per dimension: clusters that touch, as real ones do
COPY_NOISE = 0.05  # per dimension, relative to a unit vector's: a tiled copy is a near neighbour
TARGETS = {10_000: 60, 100_000: 900}  # seconds for the layout
NEW_SHARE = 0.01  # images added before an incremental update


def clustered_vectors(count: int, seed: int = 1) -> np.ndarray:
    """`count` unit vectors of DIM dimensions around CENTRES random centres."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(12345).normal(size=(CENTRES, DIM)).astype(np.float32)
    points = centres[rng.integers(0, CENTRES, count)]
    return normalized(points + SPREAD * rng.normal(size=points.shape).astype(np.float32))


def gallery_vectors(index: Path, count: int) -> np.ndarray:
    """`count` of the gallery's vectors: all of them, then noisy copies until there are enough."""
    vectors = np.asarray(Gallery(index).vectors, np.float32)
    if count <= len(vectors):
        return vectors[:count].copy()
    return np.concatenate([vectors, near_copies(vectors, count - len(vectors))])


def near_copies(vectors: np.ndarray, count: int, seed: int = 1) -> np.ndarray:
    """`count` vectors, each a copy of one of `vectors` (in turn) moved a little."""
    rng = np.random.default_rng(seed)
    copies = vectors[np.arange(count) % len(vectors)]
    noise = COPY_NOISE / np.sqrt(vectors.shape[1])
    return normalized(copies + noise * rng.normal(size=copies.shape).astype(np.float32))


def progress(start: float):
    """Each phase of the layout, on stderr with the seconds so far (stdout is the table)."""
    return lambda message: print(f"  {time.perf_counter() - start:6.1f} s  {message}",
                                 file=sys.stderr, flush=True)


def bench_size(vectors: np.ndarray, jobs: int, seed: int) -> str:
    """One table row: layout, regions, an incremental update and the packed size."""
    count = len(vectors)
    ids = np.arange(1, count + 1)
    start = time.perf_counter()
    xy = compute_layout(vectors, seed=seed, n_jobs=jobs, progress=progress(start))
    layout = time.perf_counter() - start
    start = time.perf_counter()
    found = regions(xy, seed=seed)
    regioned = time.perf_counter() - start
    start = time.perf_counter()
    new = near_copies(vectors[::-1], round(count * NEW_SHARE), seed=seed + 2)
    grown = np.concatenate([vectors, new])
    _, recomputed = update_layout(ids, xy, np.arange(1, len(grown) + 1), grown, seed=seed)
    updated = time.perf_counter() - start
    assert not recomputed, "1% new images must not recompute the layout"
    packed = len(json.dumps({"type": "map", **pack_layout(ids, xy)})) / 1e6
    target = TARGETS.get(count)
    met = "-" if target is None else ("yes" if layout <= target else "**no**")
    return (f"| {count:,} | {layout:.1f} | {'-' if target is None else f'<= {target}'} | {met} "
            f"| {regioned:.2f} ({len(found)}) | {updated:.3f} | {packed:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--index", type=Path, help="a gallery index whose vectors to lay out")
    parser.add_argument("--jobs", type=int, default=2, help="threads (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    add_record_arg(parser)
    args = parser.parse_args()
    with recorded(args, "bench_map"):
        source = f"the vectors of {args.index}" if args.index else \
            f"synthetic clustered {DIM}-D unit vectors"
        print(f"## The gallery map on {source}, {args.jobs} threads")
        print("| images | layout s | target s | met | regions s (8/32/128: regions) | "
              "update +1% s | packed JSON MB |\n|---|---|---|---|---|---|---|")
        for size in args.sizes:
            vectors = gallery_vectors(args.index, size) if args.index else \
                clustered_vectors(size)
            print(bench_size(vectors, args.jobs, args.seed), flush=True)


if __name__ == "__main__":
    main()
