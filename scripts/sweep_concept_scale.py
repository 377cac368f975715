"""A query-side concept scale, swept: what scaling a query's concept dimensions would do.

    python -m scripts.sweep_concept_scale --model models

The shipped queries keep their concept dimensions as their words give them (docs/concepts.md).
Each row here multiplies the concept dimensions of one kind of query by a scale before ranking,
as a rule in the server would: Flickr8k dev two-word queries (pairs P@5), dev captions
(text->image R@1, hubness-corrected as served), and imagenet-samples class names of several
words (`great white shark`, `teddy bear`: hit@5). Single words are never scaled. A second table
gives every other word (`man`, `red`) a concept weight of its own instead of 0 (`other` in
server/concept_space.py), for dev one-word and two-word queries. A third scales only the pairs
of a concept word and an attribute (a word WordNet tags as an adjective more often than as a
noun and a verb together: `black dog`, `red shirt`). A fourth remakes the images' prior with
other top-k classes and temperatures (`prior_embedding`, from the graph's `picture` and
`classes`), scoring dev words, pairs and sentences and imagenet-samples' ancestor words (P@5)
and class names (hit@5). Dev only: the test split is never read here.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from scripts.common import add_record_arg, recorded
from server.artifacts import WORDS_FILE, load_word_space
from server.concept_space import ConceptSpace
from server.datasets import SHARED_FLICKR8K, SHARED_IMAGENET_SAMPLES, read_flickr8k
from server.english import EnglishWords
from server.learn.concept_eval import (
    ancestor_queries,
    class_name_queries,
    imagenet_samples,
    score,
)
from server.learn.concepts import Concepts, phrase_vector, prior_embedding
from server.learn.evaluate import (
    hubness_correction,
    image_outputs,
    query_vectors,
    word_queries,
    word_query_report,
)
from server.learn.export import concept_config
from server.learn.map_labels import tagged_counts
from server.learn.metrics import precision_at_k, retrieval_report
from server.learn.wordnet import WordNet
from server.serve.encoder import ImageEncoder
from server.serve.hubness import HUB_CANDIDATES
from server.text import tokenize
from server.vectors import normalized
from server.wordspace import WordSpace

SCALES = (1.0, 0.75, 0.5, 0.25, 0.0)
OTHER_WEIGHTS = (0.0, 0.25, 0.5, 1.0)
PRIORS = ((5, 1.0), (1, 1.0), (3, 1.0), (10, 1.0), (5, 0.5), (5, 2.0), (10, 2.0))  # top k, T
OUTPUTS = ("embedding", "picture", "classes")


def attribute_words() -> set[str]:
    """Words WordNet's tagged text uses as adjectives more often than as nouns and verbs."""
    tags = tagged_counts()
    return {word for word, count in tags["adj"].items()
            if count > tags["noun"].get(word, 0) + tags["verb"].get(word, 0)}


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
        images, pictures, classes = image_outputs(encoder, [r.image for r in records], OUTPUTS)
        queries, relevant = word_queries(records, words, 10, 100)
        pairs = np.array([len(q) == 2 for q in queries])
        query_rows = query_vectors(queries, words.matrix, words.index)
        captions = [c for r in records for c in r.captions]
        caption_image = np.repeat(np.arange(len(records)), [len(r.captions) for r in records])
        caption_rows = words.caption_matrix(captions, encoder.config.weighting)
        penalty, sentences = hubness_correction(args.model, images, captions)

        paths, wnids = imagenet_samples(args.imagenet)
        photos, photo_pictures, photo_classes = image_outputs(encoder, paths, OUTPUTS)
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

        attributes = attribute_words()
        with_attribute = np.array([len(q) == 2 and any(w in concepts.words for w in q) and any(
            w in attributes and w not in concepts.words for w in q) for q in queries])
        print(f"\n{int(with_attribute.sum())} of the dev pairs are a concept word and an "
              "attribute: " + ", ".join(" ".join(q) for q, a in zip(queries, with_attribute,
                                                                    strict=True) if a))
        print("\n| concept scale, those pairs only | dev pairs P@5 |")
        print("| ---: | ---: |")
        for scale in SCALES:
            rows = normalized(query_rows)
            rows[with_attribute] = scaled(query_rows[with_attribute], first, scale)
            report = word_query_report(images, queries, relevant, rows)
            print(f"| {scale:.2f} | {report['pairs_p5']:.3f} |")

        shipped = concept_config(args.model)
        kept = Concepts.load(args.model)
        ancestors, class_names = ancestor_queries(WordNet(), wnids), class_name_queries(
            WordNet(), wnids)
        print("\n| prior: top classes | temperature | dev words P@5 | dev pairs P@5 | dev t2i "
              "R@1 | imagenet-samples ancestor words P@5 | class names hit@5 |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for top, temperature in PRIORS:
            config = dataclasses.replace(shipped, concept_top_k=top,
                                         concept_temperature=temperature)
            dev, samples = (prior_embedding(p, c, kept.vectors, kept.space.basis, config,
                                            shipped.concept_temperature)
                            for p, c in ((pictures, classes), (photo_pictures, photo_classes)))
            report = word_query_report(dev, queries, relevant, normalized(query_rows))
            penalty, sentences = hubness_correction(args.model, dev, captions)
            t2i = retrieval_report(dev, normalized(caption_rows), caption_image, penalty,
                                   sentences, HUB_CANDIDATES)["t2i_r1"]
            print(f"| {top} | {temperature:g} | {report['words_p5']:.3f} | "
                  f"{report['pairs_p5']:.3f} | {t2i:.1f} | "
                  f"{score(samples, ancestors, words, english).mean():.3f} | "
                  f"{score(samples, class_names, words, english).mean('hit5'):.3f} |")


if __name__ == "__main__":
    main()
