"""Benchmark the word space on Flickr8k train+dev captions.

    python -m scripts.bench_glove            (needs ../shared/datasets/flickr8k and a C compiler)

1. Speed: our GloVe against the classic C algorithm (scripts/glove_reference.c, built here with
   -O3, 2 threads) on the same co-occurrences at the reference settings: 300 dimensions,
   50 iterations, x_max 100, window 10, min count 3. Prints seconds, the ratio and final costs.
2. Quality at a glance: nearest neighbours of a few words for our default GloVe and Word2Vec.
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from scripts.common import add_dataset_args, add_record_arg, load_records, recorded
from server.learn.glove import GloveConfig, cooccurrence, fit_glove, train_glove
from server.learn.word2vec import Word2VecConfig, train_word2vec
from server.text import build_vocab, tokenize

REFERENCE_SOURCE = Path(__file__).with_name("glove_reference.c")
PROBE_WORDS = ["dog", "beach", "snow", "bike", "red", "child", "water"]
REFERENCE_SETTINGS = GloveConfig(dim=300, iterations=50, x_max=100.0, window=10, min_count=3)


def run_reference(cooc, config: GloveConfig, threads: int, workdir: Path) -> tuple[float, float]:
    """Build and run the C baseline; returns (seconds, final cost)."""
    binary = workdir / "glove_reference"
    subprocess.run(["cc", "-O3", "-march=native", "-pthread", "-o", str(binary),
                    str(REFERENCE_SOURCE), "-lm"], check=True)
    coo = cooc.tocoo()
    records = np.zeros(coo.nnz, dtype=[("row", "<i4"), ("col", "<i4"), ("count", "<f8")])
    records["row"], records["col"], records["count"] = coo.row, coo.col, coo.data
    records.tofile(workdir / "cooc.bin")
    out = subprocess.run(
        [str(binary), str(workdir / "cooc.bin"), str(cooc.shape[0]), str(config.dim),
         str(config.iterations), str(threads), str(config.x_max), "0.05", str(config.seed + 1)],
        check=True, capture_output=True, text=True,
    ).stdout.split("\n")
    _, cost, seconds = out[config.iterations - 1].split()
    return float(seconds), float(cost)


def speed(sentences: list[list[str]], threads: int) -> None:
    config = REFERENCE_SETTINGS
    vocab = build_vocab(sentences, config.min_count)
    index = {w: i for i, w in enumerate(vocab)}
    cooc = cooccurrence([[index.get(w, -1) for w in s] for s in sentences], len(vocab),
                        config.window)
    print(f"co-occurrence entries: {cooc.nnz:,}")
    with tempfile.TemporaryDirectory() as tmp:
        ref_seconds, ref_cost = run_reference(cooc, config, threads, Path(tmp))
    print(f"{'':32}{'seconds':>10}{'final cost':>12}")
    print(f"{'C reference, lr 0.05 per entry':32}{ref_seconds:10.2f}{ref_cost:12.5f}")
    # Ours at its default learning rate, and at the original's for an even comparison.
    for lr in (config.learning_rate, 0.05):
        start = time.perf_counter()
        _, costs = fit_glove(cooc, dataclasses.replace(config, learning_rate=lr), progress=False)
        ours = time.perf_counter() - start
        print(f"{f'ours, lr {lr} per batch':32}{ours:10.2f}{costs[-1]:12.5f}"
              f"   {ref_seconds / ours:.2f}x faster")


def neighbours(sentences: list[list[str]]) -> None:
    models = {}
    start = time.perf_counter()
    models["GloVe (ours)"] = train_glove(sentences, GloveConfig(), progress=False).vectors
    seconds = {"GloVe (ours)": time.perf_counter() - start}
    start = time.perf_counter()
    models["Word2Vec (gensim)"] = train_word2vec(sentences, Word2VecConfig())
    seconds["Word2Vec (gensim)"] = time.perf_counter() - start
    for name, kv in models.items():
        print(f"\n{name}: {len(kv):,} words, {kv.vector_size}d, {seconds[name]:.1f} s")
    print(f"  GloVe config: {dataclasses.asdict(GloveConfig())}")
    print(f"  Word2Vec config: {dataclasses.asdict(Word2VecConfig())}")
    for word in PROBE_WORDS:
        print(f"\n{word}")
        for name, kv in models.items():
            near = ", ".join(w for w, _ in kv.most_similar(word, topn=8))
            print(f"  {name:18} {near}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_args(parser)
    parser.add_argument("--threads", type=int, default=2, help="threads of the C reference")
    add_record_arg(parser)
    args = parser.parse_args()
    with recorded(args, "bench_glove"):
        sentences = [tokenize(c) for r in load_records(args) for c in r.captions]
        vocab = build_vocab(sentences, REFERENCE_SETTINGS.min_count)
        print(f"captions: {len(sentences):,}  tokens: {sum(map(len, sentences)):,}  "
              f"vocabulary (min count {REFERENCE_SETTINGS.min_count}): {len(vocab):,}")
        speed(sentences, args.threads)
        neighbours(sentences)


if __name__ == "__main__":
    main()
