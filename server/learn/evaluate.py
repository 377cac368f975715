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

import itertools
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from server.artifacts import load_word_space
from server.datasets import CaptionedImage
from server.english import BlendMap, EnglishWords
from server.learn.metrics import average_precision, precision_at_k, retrieval_report
from server.serve.encoder import EMBEDDING, ImageEncoder
from server.serve.hubness import BETA, HUB_CANDIDATES, SENTENCE_WORDS, hubness, load_bank
from server.serve.indexer import decoded_batches
from server.text import tokenize
from server.vectors import normalized
from server.wordspace import WordSpace


def embed_images(encoder: ImageEncoder, paths: list[Path], batch_size: int = 16) -> np.ndarray:
    """Each image as the indexer embeds it (same decoding, same graph): what is served."""
    return image_outputs(encoder, paths, (EMBEDDING,), batch_size)[0]


def image_outputs(encoder: ImageEncoder, paths: list[Path], names: Sequence[str],
                  batch_size: int = 16) -> list[np.ndarray]:
    """The graph's outputs `names` for each image, decoded as the indexer decodes it."""
    out: list[list[np.ndarray]] = [[] for _ in names]
    with tqdm(total=len(paths), desc="images", unit="img") as bar:
        for batch in decoded_batches(paths, encoder.image_size, batch_size):
            if batch.failed:
                position, reason = batch.failed[0]
                raise ValueError(f"cannot evaluate on {paths[position]}: {reason}")
            for found, rows in zip(encoder.run(batch.inputs, *names), out, strict=True):
                rows.append(found)
            bar.update(len(batch.positions))
    return [np.concatenate(rows) for rows in out]


def word_queries(records: list[CaptionedImage], words: WordSpace, min_images: int,
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
    queries: list[tuple[str, ...]] = [*((w,) for w in singles), *pairs]
    relevant = np.array([[any(set(q) <= cap for cap in caps) for caps in caption_words]
                         for q in queries])
    return queries, relevant


def query_vectors(queries: list[tuple[str, ...]], vectors: np.ndarray,
                  index: dict[str, int]) -> np.ndarray:
    """Each query as the query language reads it: the sum of its words' unit vectors."""
    unit = normalized(vectors)
    return np.array([unit[[index[w] for w in q]].sum(0) for q in queries])


def word_query_report(image_vectors: np.ndarray, queries: list[tuple[str, ...]],
                      relevant: np.ndarray, vectors: np.ndarray) -> dict[str, float]:
    """Mean P@5 and mAP of single-word and two-word queries (vectors: one row per query)."""
    scores = vectors @ image_vectors.T
    report: dict[str, float] = {}
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


def evaluate_model(records: list[CaptionedImage], model: Path | None, min_images: int = 10,
                   max_pairs: int = 100, breakdown: bool = False) -> dict:
    """The standard protocol and word queries on `records` for the model folder `model`, or
    for chance (`model` None: random vectors, asked the shipped model's vocabulary so that the
    queries are the same)."""
    captions = [c for r in records for c in r.captions]
    caption_image = np.repeat(np.arange(len(records)), [len(r.captions) for r in records])
    word_space = load_word_space(model) if model else load_word_space()
    queries, relevant = word_queries(records, word_space, min_images, max_pairs)
    if model is None:
        rng = np.random.default_rng(0)
        images = normalized(rng.normal(size=(len(records), 64)))
        caption_vectors = normalized(rng.normal(size=(len(captions), 64)))
        word_vectors = rng.normal(size=(len(queries), 64))
    else:
        encoder = ImageEncoder(model)
        images = embed_images(encoder, [r.image for r in records])
        caption_vectors = normalized(word_space.caption_matrix(captions,
                                                               encoder.config.weighting))
        word_vectors = query_vectors(queries, word_space.matrix, word_space.index)
    penalty, sentences = hubness_correction(model, images, captions)
    report = retrieval_report(images, caption_vectors, caption_image, penalty, sentences,
                              HUB_CANDIDATES)
    report |= word_query_report(images, queries, relevant, word_vectors)
    if breakdown:
        word_breakdown(images, queries, relevant, word_vectors)
    return report


def hubness_correction(model: Path | None, images: np.ndarray, captions: list[str]
                       ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(each image's penalty, which captions it applies to) as the server corrects sentence
    queries with the model's caption bank; (None, None) for a model without a bank."""
    bank = load_bank(model) if model is not None else None
    if bank is None:
        return None, None
    sentences = np.array([len(tokenize(c)) >= SENTENCE_WORDS for c in captions])
    return BETA * hubness(images, bank), sentences


def held_out_english_report(records: list[CaptionedImage], word_space: WordSpace,
                            english: EnglishWords, images: np.ndarray, how: BlendMap,
                            share: float = 0.2, seed: int = 0, min_images: int = 10
                            ) -> dict[str, float]:
    """How well general-English vectors stand in for learned ones, on words the map never saw.

    The caption words found in at least `min_images` images of `records` (the dev split) that
    English also lists; a seeded `share` of them is held out: the map is rebuilt without them,
    and their word-query P@5 with their mapped vectors is compared with their learned vectors
    and with chance (the expected P@5 of a random ranking).
    """
    queries, relevant = word_queries(records, word_space, min_images, max_pairs=0)
    candidates = [q[0] for q in queries if q[0] in english]
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(candidates)[: round(share * len(candidates))].tolist())
    kept = [w for w in word_space.words if w not in held]
    without = WordSpace(kept, word_space.matrix[[word_space.index[w] for w in kept]])
    mapped_by = EnglishWords(english.words, english.vectors, without, how)
    rows = [i for i, q in enumerate(queries) if q[0] in held]
    words = [queries[i][0] for i in rows]
    learned = normalized(word_space.matrix[[word_space.index[w] for w in words]])
    mapped = np.stack([mapped_by.joint_vector(w) for w in words])

    def p5(vectors: np.ndarray) -> float:
        scores = vectors @ images.T
        return float(np.mean([precision_at_k(scores[j], relevant[i], 5)
                              for j, i in enumerate(rows)]))

    report = {"held_out_words": float(len(rows)), "learned_p5": p5(learned),
              "mapped_p5": p5(mapped), "chance_p5": float(relevant[rows].mean())}
    report["mapped_vs_learned"] = report["mapped_p5"] / report["learned_p5"]
    return report
