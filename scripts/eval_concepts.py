"""Concepts the captions never taught: held-out concepts on Flickr8k dev, and imagenet-samples.

    python -m scripts.train --out runs/held-out/model --held-out-concepts   # once
    python -m scripts.eval_concepts --model shipped=models --model held-out=runs/held-out/model

Each model's images are embedded by its own graph, as the indexer does; every column pair is a
model's `embedding` (with its concept prior, as served) and its `picture` (its head alone: the
same model without the prior).
What the queries are and how relevance is decided: server/learn/concept_eval.py. Dev only: the
test split is never read here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scripts.common import add_record_arg, recorded
from server.artifacts import load_word_space
from server.datasets import SHARED_FLICKR8K, SHARED_IMAGENET_SAMPLES, read_flickr8k
from server.english import EnglishWords
from server.learn.concept_eval import (
    Query,
    Scores,
    ancestor_queries,
    class_name_queries,
    held_out_queries,
    imagenet_samples,
    score,
)
from server.learn.evaluate import image_outputs
from server.learn.wordnet import WordNet
from server.serve.encoder import ImageEncoder

OUTPUTS = ("embedding", "picture")


def labelled(text: str) -> tuple[str, Path]:
    label, _, folder = text.partition("=")
    if not folder:
        raise argparse.ArgumentTypeError(f"{text}: write LABEL=FOLDER")
    return label, Path(folder)


class Embedded:
    """A model's word lookup and its graph's OUTPUTS for a gallery of photos."""

    def __init__(self, model: Path, paths: list[Path]):
        self.words = load_word_space(model)
        self.english = EnglishWords.load(model, self.words)
        encoder = ImageEncoder(model)
        names = [name for name in OUTPUTS if name in encoder.outputs]
        self.images = dict(zip(names, image_outputs(encoder, paths, names), strict=True))

    def scores(self, queries: list[Query]) -> dict[str, Scores]:
        return {name: score(images, queries, self.words, self.english)
                for name, images in self.images.items()}


def table(title: str, queries: list[Query], results: dict[str, dict[str, Scores]],
          which: str, rows: bool) -> None:
    columns = [(label, name) for label, by_output in results.items() for name in by_output]
    print(f"\n## {title}\n")
    print("| query | relevant | " + " | ".join(f"{label}: {name}" for label, name in columns)
          + " |")
    print("|---|---:|" + "---:|" * len(columns))
    if rows:
        for query in queries:
            cells = [getattr(results[label][name], which).get(query.text) for label, name in
                     columns]
            print(f"| {query.text} | {int(query.relevant.sum())} | " + " | ".join(
                "-" if cell is None else f"{cell:.2f}" for cell in cells) + " |")
    means = [results[label][name].mean(which) for label, name in columns]
    counts = [len(getattr(results[label][name], which)) for label, name in columns]
    print(f"| **mean** ({which}) | | " + " | ".join(
        f"**{mean:.3f}** ({count})" for mean, count in zip(means, counts, strict=True)) + " |")
    for label, name in columns:
        if results[label][name].unknown:
            print(f"\n{label}: no known word in {len(results[label][name].unknown)} queries "
                  f"({', '.join(results[label][name].unknown[:8])}...)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=labelled, action="append", required=True,
                        metavar="LABEL=FOLDER", help="a model folder and its column's label")
    parser.add_argument("--path", type=Path, default=SHARED_FLICKR8K, help="Flickr8k root")
    parser.add_argument("--imagenet", type=Path, default=SHARED_IMAGENET_SAMPLES,
                        help="imagenet-samples' images folder")
    parser.add_argument("--only", choices=("held-out", "imagenet"))
    add_record_arg(parser)
    args = parser.parse_args()
    with recorded(args, "eval_concepts"):
        if args.only in (None, "held-out"):
            records = read_flickr8k(args.path, "dev")
            queries = held_out_queries(records)
            paths = [record.image for record in records]
            results = {label: Embedded(model, paths).scores(queries)
                       for label, model in args.model}
            table("Held-out concepts, Flickr8k dev: P@5", queries, results, "p5", rows=True)
        if args.only in (None, "imagenet"):
            wordnet = WordNet()
            paths, wnids = imagenet_samples(args.imagenet)
            ancestors = ancestor_queries(wordnet, wnids)
            names = class_name_queries(wordnet, wnids)
            embedded = {label: Embedded(model, paths) for label, model in args.model}
            note = ("imagenet-samples (most likely ImageNet training photos: the backbone's "
                    "classifier has seen them)")
            table(f"{note}, ancestor words: P@5", ancestors,
                  {label: found.scores(ancestors) for label, found in embedded.items()}, "p5",
                  rows=True)
            table(f"{note}, class names: hit@5", names,
                  {label: found.scores(names) for label, found in embedded.items()}, "hit5",
                  rows=False)


if __name__ == "__main__":
    main()
