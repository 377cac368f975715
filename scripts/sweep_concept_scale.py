"""A query-side concept scale, swept: what scaling a query's concept dimensions would do.

    python -m scripts.sweep_concept_scale --model models

The shipped queries keep their concept dimensions as their words give them (docs/concepts.md).
Each row here multiplies the concept dimensions of one kind of query by a scale before ranking,
as a rule in the server would: Flickr8k dev two-word queries (pairs P@5), dev captions
(text->image R@1, hubness-corrected as served), and imagenet-samples class names of several
words (`great white shark`, `teddy bear`: hit@5). Single words are never scaled. A second table
gives every other word (`man`, `red`) a concept weight of its own instead of 0 (`other` in
server/concept_space.py), for dev one-word and two-word queries. Dev only: the test split is
never read here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from scripts.common import add_record_arg, recorded
from server.artifacts import WORDS_FILE, load_word_space
from server.concept_space import ConceptSpace
from server.datasets import SHARED_FLICKR8K, SHARED_IMAGENET_SAMPLES, read_flickr8k
from server.english import EnglishWords
from server.learn.concept_eval import class_name_queries, imagenet_samples
from server.learn.concepts import phrase_vector
from server.learn.evaluate import (
    embed_images,
    hubness_correction,
    query_vectors,
    word_queries,
    word_query_report,
)
from server.learn.metrics import precision_at_k, retrieval_report
from server.learn.wordnet import WordNet
from server.serve.encoder import ImageEncoder
from server.serve.hubness import HUB_CANDIDATES
from server.text import tokenize
from server.vectors import normalized
from server.wordspace import WordSpace

SCALES = (1.0, 0.75, 0.5, 0.25, 0.0)
OTHER_WEIGHTS = (0.0, 0.25, 0.5, 1.0)


def scaled(vectors: np.ndarray, first_concept: int, scale: float) -> np.ndarray:
    """Unit rows whose concept dimensions (from column `first_concept` on) are scaled."""
    out = np.array(vectors, np.float32)
    out[:, first_concept:] *= scale
    return normalized(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("models"))
    parser.add_argument("--path", type=Path, default=SHARED_FLICKR8K, help="Flickr8k root")
    parser.add_argument("--imagenet", type=Path, default=SHARED_IMAGENET_SAMPLES,
                        help="imagenet-samples' images folder")
    add_record_arg(parser)
    args = parser.parse_args()
    with recorded(args, "sweep_concept_scale"):
        words = load_word_space(args.model)
        concepts = ConceptSpace.load(args.model)
        if concepts is None:
            raise SystemExit(f"the model in {args.model} has no concept dimensions")
        first = words.dim - concepts.rank
        english = EnglishWords.load(args.model, words)
        encoder = ImageEncoder(args.model)

        records = read_flickr8k(args.path, "dev")
        images = embed_images(encoder, [r.image for r in records])
        queries, relevant = word_queries(records, words, 10, 100)
        pairs = np.array([len(q) == 2 for q in queries])
        query_rows = query_vectors(queries, words.matrix, words.index)
        captions = [c for r in records for c in r.captions]
        caption_image = np.repeat(np.arange(len(records)), [len(r.captions) for r in records])
        caption_rows = words.caption_matrix(captions, encoder.config.weighting)
        penalty, sentences = hubness_correction(args.model, images, captions)

        paths, wnids = imagenet_samples(args.imagenet)
        photos = embed_images(encoder, paths)
        names = [q for q in class_name_queries(WordNet(), wnids) if len(tokenize(q.text)) > 1]
        found = [(q, phrase_vector(q.text, words, english)) for q in names]
        named = [(q, v) for q, v in found if v is not None]
        name_rows = np.stack([v for _, v in named])

        print(f"\n{int(pairs.sum())} dev pairs, {len(captions)} dev captions, {len(named)} "
              "class names of several words (imagenet-samples: most likely ImageNet training "
              "photos, which the backbone's classifier has seen)\n")
        print("| concept scale | dev pairs P@5 | dev t2i R@1 | class names of several words, "
              "hit@5 |")
        print("| ---: | ---: | ---: | ---: |")
        for scale in SCALES:
            rows = normalized(query_rows)
            rows[pairs] = scaled(query_rows[pairs], first, scale)
            report = word_query_report(images, queries, relevant, rows)
            t2i = retrieval_report(images, scaled(caption_rows, first, scale), caption_image,
                                   penalty, sentences, HUB_CANDIDATES)["t2i_r1"]
            scores = scaled(name_rows, first, scale) @ photos.T
            hits = np.mean([precision_at_k(scores[i], q.relevant, 5) > 0
                            for i, (q, _) in enumerate(named)])
            print(f"| {scale:.2f} | {report['pairs_p5']:.3f} | {t2i:.1f} | {hits:.3f} |")

        joint = WordSpace.load(args.model / WORDS_FILE)
        print("\n| other words' concept weight | dev words P@5 | dev pairs P@5 |")
        print("| ---: | ---: | ---: |")
        for other in OTHER_WEIGHTS:
            lifted = ConceptSpace(concepts.basis, concepts.words, other).lift_words(joint)
            report = word_query_report(images, queries, relevant,
                                       query_vectors(queries, lifted.matrix, lifted.index))
            print(f"| {other:.2f} | {report['words_p5']:.3f} | {report['pairs_p5']:.3f} |")


if __name__ == "__main__":
    main()
