"""Evaluate a trained model on Flickr8k (standard protocol and word queries) and out of domain.

    python -m scripts.evaluate --model models                 # the shipped model, test split
    python -m scripts.evaluate --model runs/x/model --split dev
    python -m scripts.evaluate --random                       # the chance baseline

Standard protocol (Hodosh et al. 2013): the split's images, their captions as queries;
text->image and image->text Recall@1/5/10 and median rank. Word queries: every vocabulary word
that the captions of at least `--min-images` images contain, and the most common pairs of such
words within one caption; an image is relevant when one of its captions contains the word(s).
Reported: mean P@5 and mAP. Prints a JSON line with everything, for docs/.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader
from tqdm import tqdm

from scripts.cache_features import Views
from scripts.common import SHARED_FLICKR8K
from server.datasets import TUXPAINT_STAMPS, CaptionedImage, read_flickr8k, read_tuxpaint
from server.encoder import ImageEncoder, load_words
from server.metrics import average_precision, precision_at_k, retrieval_report
from server.text import tokenize
from server.wordspace import TextSpace


def embed_images(encoder: ImageEncoder, paths: list[Path], batch_size: int = 32) -> np.ndarray:
    """The plain view of each image (as cached for training), decoded in a worker process."""
    loader = DataLoader(Views(paths, 1, encoder.image_size), batch_size=batch_size,
                        num_workers=1)
    return np.concatenate([encoder.embed_inputs(b[:, 0]) for b in tqdm(loader, desc="images",
                                                                        unit="batch")])


def normalise(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1, norms)


def word_queries(records: list[CaptionedImage], words: TextSpace, min_images: int,
                 max_pairs: int) -> tuple[list[tuple[str, ...]], np.ndarray]:
    """Queries (1 or 2 words) and their relevance matrix (queries x images)."""
    caption_words = [[set(tokenize(c)) for c in r.captions] for r in records]
    image_words = [set().union(*caps) for caps in caption_words]
    frequency = Counter(w for ws in image_words for w in ws)
    singles = sorted(w for w, n in frequency.items() if n >= min_images and w in words)
    single_set = set(singles)
    pair_count: Counter[tuple[str, str]] = Counter()
    for caps in caption_words:
        pairs_here = set()
        for cap in caps:
            pairs_here |= set(itertools.combinations(sorted(cap & single_set), 2))
        pair_count.update(pairs_here)
    pairs = [p for p, n in pair_count.most_common(max_pairs) if n >= min_images // 2]
    queries = [(w,) for w in singles] + pairs
    relevant = np.array([[any(set(q) <= cap for cap in caps) for caps in caption_words]
                         for q in queries])
    return queries, relevant


def query_vectors(queries: list[tuple[str, ...]], vectors: np.ndarray,
                  index: dict[str, int]) -> np.ndarray:
    """Each query as the query language reads it: the sum of its words' unit vectors."""
    unit = normalise(vectors)
    return np.array([unit[[index[w] for w in q]].sum(0) for q in queries])


def word_query_report(image_vectors: np.ndarray, queries: list[tuple[str, ...]],
                      relevant: np.ndarray, vectors: np.ndarray) -> dict[str, float]:
    """Mean P@5 and mAP of single-word and two-word queries (vectors: one row per query)."""
    scores = vectors @ image_vectors.T
    report = {}
    for size, name in ((1, "words"), (2, "pairs")):
        rows = [i for i, q in enumerate(queries) if len(q) == size]
        report[f"{name}_n"] = len(rows)
        report[f"{name}_p5"] = float(np.mean([precision_at_k(scores[i], relevant[i], 5)
                                              for i in rows]))
        report[f"{name}_map"] = float(np.mean([average_precision(scores[i], relevant[i])
                                               for i in rows]))
    return report


def word_breakdown(image_vectors: np.ndarray, queries: list[tuple[str, ...]],
                   relevant: np.ndarray, vectors: np.ndarray) -> None:
    """Print single-word P@5 by how many images a word is relevant to, and the best and worst."""
    scores = vectors @ image_vectors.T
    singles = [i for i, q in enumerate(queries) if len(q) == 1]
    p5 = {i: precision_at_k(scores[i], relevant[i], 5) for i in singles}
    counts = relevant.sum(1)
    for low, high in ((10, 20), (20, 50), (50, 100), (100, 10**9)):
        rows = [i for i in singles if low <= counts[i] < high]
        if rows:
            label = f"{low}-{high - 1}" if high < 10**9 else f"{low}+"
            print(f"words relevant to {label:>6} images: {len(rows):4} words, "
                  f"P@5 {np.mean([p5[i] for i in rows]):.3f}")
    ranked = sorted(singles, key=lambda i: (p5[i], counts[i]))
    print("worst:", ", ".join(f"{queries[i][0]} {p5[i]:.1f}" for i in ranked[:15]))
    print("best: ", ", ".join(f"{queries[i][0]} {p5[i]:.1f}" for i in ranked[-15:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("flickr8k", "tuxpaint"), default="flickr8k")
    parser.add_argument("--path", type=Path, help="dataset root (default: where it usually is)")
    parser.add_argument("--split", default="test", choices=("dev", "test"),
                        help="Flickr8k split")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", type=Path, help="a trained model folder (models/)")
    which.add_argument("--random", action="store_true", help="the chance baseline")
    parser.add_argument("--min-images", type=int, default=10)
    parser.add_argument("--max-pairs", type=int, default=100)
    parser.add_argument("--words", action="store_true",
                        help="also print single-word P@5 by frequency, best and worst words")
    args = parser.parse_args()

    if args.dataset == "flickr8k":
        records = read_flickr8k(args.path or SHARED_FLICKR8K, args.split)
    else:
        records = read_tuxpaint(args.path or TUXPAINT_STAMPS)
    captions = [c for r in records for c in r.captions]
    caption_image = np.repeat(np.arange(len(records)), [len(r.captions) for r in records])
    # The random baseline asks the shipped model's vocabulary, so its queries are the same.
    words = load_words(args.model or Path(__file__).resolve().parents[1] / "models")
    queries, relevant = word_queries(records, words, args.min_images, args.max_pairs)
    if args.random:
        rng = np.random.default_rng(0)
        images = normalise(rng.normal(size=(len(records), 64)))
        caption_vectors = normalise(rng.normal(size=(len(captions), 64)))
        word_vectors = rng.normal(size=(len(queries), 64))
    else:
        encoder = ImageEncoder(args.model)
        images = embed_images(encoder, [r.image for r in records])
        caption_vectors = normalise(words.caption_matrix(captions, encoder.config.weighting))
        word_vectors = query_vectors(queries, words.vectors.vectors, words.vectors.key_to_index)
    report = {"model": "random" if args.random else str(args.model), "dataset": args.dataset,
              "split": args.split if args.dataset == "flickr8k" else "all"}
    report |= retrieval_report(images, caption_vectors, caption_image)
    report |= word_query_report(images, queries, relevant, word_vectors)
    if args.words:
        word_breakdown(images, queries, relevant, word_vectors)
    for key, value in report.items():
        print(f"{key:12} {value:.3f}" if isinstance(value, float) else f"{key:12} {value}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
