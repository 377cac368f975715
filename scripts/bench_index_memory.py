"""Peak memory of the indexer at 10 million images, beside the same runs at a small size.

    python -m scripts.bench_index_memory                       # 100,000 then 10,000,000 images
    python -m scripts.bench_index_memory --sizes 20000,200000  # quicker

Each run is `build_index`, the code `scripts.index` runs, in a process of its own (its peak
resident memory is then its own), with the shipped ONNX encoder loaded and the index stored as
float16. What it does not do is decode images: the source is synthetic (paths, sizes and times
of files that do not exist), and the embedder returns random unit vectors, so that 10 million
images take minutes, not the weeks decoding them would on 2 cores. Everything else is the real
path: the run's work on disk, the planning joins, chunks saved and synced, the generation
written block by block, the previous one read by position.

Three runs per size: a fresh index; an update (1% of the files changed, 0.5% removed, 0.5%
added); and a run with nothing to do. The baseline is the memory holding the vectors would
take, as the indexer did before it streamed (float32, as it loaded them).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from scripts.common import add_record_arg, recorded
from server.serve.encoder import ImageEncoder
from server.serve.indexer import Embedded, IndexOptions, SourceImage, build_index

RUNS = ("fresh", "update", "idle")
FIGURES_DTYPE = "float16"


def synthetic_sources(root: Path, count: int, changed: bool) -> Iterator[SourceImage]:
    """`count` files in folders of 10,000, in scan order; `changed`: the update's version."""
    total = count + count // 200 if changed else count
    for number in range(total):
        if changed and number % 200 == 0 and number < count:
            continue  # removed
        mtime = 10**18 + number + (1 if changed and number % 100 == 1 else 0)
        path = root / f"{number // 10_000:05d}" / f"{number:09d}.jpg"
        yield SourceImage(path, None, 1_000 + number % 977, mtime)


def random_embedder(paths: list[Path], encoder: ImageEncoder, options: IndexOptions
                    ) -> Iterator[Embedded]:
    """The embedder's contract without decoding: unit vectors, batch by batch, in order."""
    rng = np.random.default_rng(len(paths))
    for start in range(0, len(paths), options.batch_size):
        positions = list(range(start, min(start + options.batch_size, len(paths))))
        vectors = rng.standard_normal((len(positions), encoder.dim), np.float32)
        yield Embedded(positions, vectors / np.linalg.norm(vectors, axis=1, keepdims=True), [])


def child(run: str, count: int, work: Path) -> None:
    """One run, in this process; prints its figures as one JSON line."""
    root, index = work / "photos", work / "index"
    started = time.perf_counter()
    report = build_index(synthetic_sources(root, count, changed=run != "fresh"), root, index,
                         ImageEncoder(), options=IndexOptions(dtype=FIGURES_DTYPE,
                                                              progress=False),
                         embedder=random_embedder)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    disk = sum(path.stat().st_size for path in index.iterdir() if path.is_file())
    print(json.dumps({"run": run, "seconds": seconds, "peak": peak, "disk": disk,
                      "total": report.total, "embedded": report.embedded,
                      "removed": report.removed}))


def measure(count: int, work: Path) -> list[dict]:
    figures = []
    for run in RUNS:
        done = subprocess.run([sys.executable, "-m", "scripts.bench_index_memory", "--child",
                               run, "--sizes", str(count), "--work", str(work)],
                              capture_output=True, text=True, check=True)
        figures.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"  {count:>12,} {run:<7} {figures[-1]['seconds']:9.1f} s"
              f"  peak {figures[-1]['peak'] / 2**20:7,.0f} MiB"
              f"  index {figures[-1]['disk'] / 2**30:6.2f} GiB"
              f"  ({figures[-1]['embedded']:,} embedded, {figures[-1]['removed']:,} removed,"
              f" {figures[-1]['total']:,} in the index)", flush=True)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,10000000",
                        help="images per index, comma-separated: the first is the baseline")
    parser.add_argument("--work", type=Path, help="a folder for the indexes (default: a "
                        "temporary one; 10M images need about 25 GB while they are made)")
    parser.add_argument("--child", choices=RUNS, help=argparse.SUPPRESS)
    add_record_arg(parser)
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.child:
        child(args.child, sizes[0], args.work)
        return
    with recorded(args, "bench_index_memory"):
        dim = ImageEncoder().dim
        print(f"## Indexer peak resident memory (float16 index of {dim} dimensions,"
              " synthetic source and embedder)\n")
        print(f"  {'images':>12} {'run':<7} {'time':>11}")
        peaks = {}
        for count in sizes:
            work = Path(tempfile.mkdtemp(dir=args.work))
            try:
                peaks[count] = max(f["peak"] for f in measure(count, work))
            finally:
                shutil.rmtree(work)
        print()
        small = sizes[0]
        for count in sizes:
            held = count * dim * 4
            print(f"  {count:>12,} images: peak {peaks[count] / 2**30:5.2f} GiB"
                  f" ({peaks[count] / peaks[small]:.2f}x that of {small:,});"
                  f" the vectors alone in float32 would hold {held / 2**30:6.2f} GiB")


if __name__ == "__main__":
    main()
