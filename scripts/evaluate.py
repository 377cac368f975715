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
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from scripts.common import SHARED_FLICKR8K
from server.datasets import CaptionedImage, read_flickr8k
from server.encoder import ImageEncoder, load_words
from server.metrics import average_precision, precision_at_k, retrieval_report
from server.text import tokenize
from server.wordspace import TextSpace


class ImageFiles(Dataset):
    def __init__(self, paths: list[Path], encoder_input):
        self.paths, self.encoder_input = paths, encoder_input

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        with Image.open(self.paths[index]) as image:
            return self.encoder_input(image)


def embed_images(encoder: ImageEncoder, paths: list[Path], batch_size: int = 32) -> np.ndarray:
    from server.backbone import to_input

    files = ImageFiles(paths, lambda im: to_input(im, encoder.image_size))
    loader = DataLoader(files, batch_size=batch_size, num_workers=1)
    return np.concatenate([encoder.embed_inputs(b) for b in tqdm(loader, desc="images",
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
    pair_count: Counter[tuple[str, str]] = Counter()
    for caps in caption_words:
        pairs_here = set()
        for cap in caps:
            pairs_here |= set(itertools.combinations(sorted(cap & set(singles)), 2))
        pair_count.update(pairs_here)
    pairs = [p for p, n in pair_count.most_common(max_pairs) if n >= min_images // 2]
    queries = [(w,) for w in singles] + pairs
    relevant = np.array([[any(set(q) <= cap for cap in caps) for caps in caption_words]
                         for q in queries])
    return queries, relevant


def word_query_report(image_vectors: np.ndarray, queries, relevant: np.ndarray,
                      words: TextSpace | None, rng: np.random.Generator | None = None) -> dict:
    report = {}
    for size, name in ((1, "words"), (2, "pairs")):
        rows = [i for i, q in enumerate(queries) if len(q) == size]
        p5, ap = [], []
        for i in rows:
            if words is None:
                scores = rng.random(len(image_vectors))
            else:
                query = sum(normalise(words.word_vector(w)[None])[0] for w in queries[i])
                scores = image_vectors @ query
            p5.append(precision_at_k(scores, relevant[i], 5))
            ap.append(average_precision(scores, relevant[i]))
        report[f"{name}_n"] = len(rows)
        report[f"{name}_p5"] = float(np.mean(p5))
        report[f"{name}_map"] = float(np.mean(ap))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", type=Path, default=SHARED_FLICKR8K, help="Flickr8k root")
    parser.add_argument("--split", default="test", choices=("dev", "test"))
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", type=Path, help="a trained model folder (models/)")
    which.add_argument("--random", action="store_true", help="the chance baseline")
    parser.add_argument("--min-images", type=int, default=10)
    parser.add_argument("--max-pairs", type=int, default=100)
    args = parser.parse_args()

    records = read_flickr8k(args.path, args.split)
    captions = [c for r in records for c in r.captions]
    caption_image = np.repeat(np.arange(len(records)), [len(r.captions) for r in records])
    rng = np.random.default_rng(0)
    if args.random:
        words = None
        images = normalise(rng.normal(size=(len(records), 64)))
        caption_vectors = normalise(rng.normal(size=(len(captions), 64)))
        query_vocabulary = load_words(Path(__file__).resolve().parents[1] / "models")
    else:
        encoder = ImageEncoder(args.model)
        words = query_vocabulary = load_words(args.model)
        images = embed_images(encoder, [r.image for r in records])
        weighting = encoder.config.weighting
        caption_vectors = normalise(words.caption_matrix(captions, weighting))
    report = {"model": "random" if args.random else str(args.model), "split": args.split}
    report |= retrieval_report(images, caption_vectors, caption_image)
    queries, relevant = word_queries(records, query_vocabulary, args.min_images, args.max_pairs)
    report |= word_query_report(images, queries, relevant, words, rng)
    for key, value in report.items():
        print(f"{key:12} {value:.3f}" if isinstance(value, float) else f"{key:12} {value}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
