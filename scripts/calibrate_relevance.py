"""Choose the relevance line on Flickr8k dev (never test): where close matches end.

    python -m scripts.calibrate_relevance                  # print the table
    python -m scripts.calibrate_relevance --write          # and save models/relevance.json

The dev images are embedded as the indexer embeds them (pictures alone, as a photo library
has no captions). The queries are the dev words of at least 10 images and the 100 most common
pairs of them (`server.learn.evaluate.word_queries`), read as the server reads them; a result is
relevant when its image's captions hold the query's words. For each kind (one word; two or
more), the line is the lowest score at which the results above it, pooled over the queries,
are relevant at least `--precision` of the time. Captions do not name everything a photo
shows, so the true precision above the line is, if anything, higher.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from scripts.common import add_record_arg, recorded
from server.artifacts import DEFAULT_MODEL_DIR, load_word_space, model_fingerprint
from server.datasets import SHARED_FLICKR8K, read_flickr8k
from server.learn.evaluate import embed_images, query_vectors, word_queries
from server.serve.encoder import ImageEncoder
from server.serve.relevance import RelevanceLines
from server.vectors import normalized

STEP = 0.005


def line_for(scores: np.ndarray, relevant: np.ndarray, precision: float
             ) -> tuple[float, dict[str, float]]:
    """The lowest threshold (on a STEP grid) whose results above reach `precision`, pooled;
    and what it keeps: results above it per query, their precision, the recall."""
    for threshold in np.arange(0.0, 1.0, STEP):
        above = scores >= threshold
        kept = int(above.sum())
        hits = int((above & relevant).sum())
        if kept and hits / kept >= precision:
            return round(float(threshold), 3), {
                "above_per_query": kept / len(scores), "precision": hits / kept,
                "recall": hits / int(relevant.sum())}
    return 1.0, {"above_per_query": 0.0, "precision": float("nan"), "recall": 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--path", type=Path, default=SHARED_FLICKR8K)
    parser.add_argument("--precision", type=float, default=0.4,
                        help="of the results above the line, at least (default: 0.4)")
    parser.add_argument("--write", action="store_true",
                        help="save the lines beside the model (relevance.json)")
    add_record_arg(parser)
    args = parser.parse_args()
    with recorded(args, "calibrate_relevance"):
        records = read_flickr8k(args.path, "dev")
        words = load_word_space(args.model)
        images = embed_images(ImageEncoder(args.model), [r.image for r in records])
        queries, relevant = word_queries(records, words, min_images=10, max_pairs=100)
        scores = normalized(query_vectors(queries, words.matrix, words.index)) @ images.T
        lines, measured = {}, {}
        print(f"\n## The relevance line on Flickr8k dev ({len(records):,} images), precision "
              f">= {args.precision}")
        print("| queries | how many | line (cosine) | results above it, a query | precision "
              "above | recall |\n|---|---|---|---|---|---|")
        for name, single in (("word", True), ("words", False)):
            rows = [i for i, q in enumerate(queries) if (len(q) == 1) == single]
            lines[name], measured[name] = line_for(scores[rows], relevant[rows], args.precision)
            kept = measured[name]
            print(f"| {'one word' if single else 'two words'} | {len(rows)} | {lines[name]:.3f} "
                  f"| {kept['above_per_query']:.1f} | {kept['precision']:.3f} | "
                  f"{kept['recall']:.3f} |")
        if args.write:
            RelevanceLines(lines["word"], lines["words"], args.precision).save(
                args.model, model_fingerprint(args.model), measured)
            print(f"(written to {args.model / 'relevance.json'})")


if __name__ == "__main__":
    main()
