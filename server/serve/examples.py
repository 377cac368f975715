"""What the page offers to try: queries and words this model runs well on this gallery.

A "Try" example must run as written (no spelling correction) and, where the gallery has captions,
must put images whose captions say it first: `people+park` on clip art that has no park shows
trees and a shipwreck, so it is not offered there. The gallery's own content words make more
examples (`flower`, `flower+red`, `flower-red`).

Content words are caption words whose images the model finds from their pictures alone: ranked
by a word's vector, the images that carry it in their caption must come early (rank AUC). Words
that name nothing one can see (`called`, `one`, `two`) rank their images at random, so they are
left out without a list of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from server.serve.gallery import Item
from server.serve.retrieval import Answer, QueryRequest, Retriever
from server.text import tokenize
from server.vectors import normalized

# The reference's examples; the page shows those this model runs well on the gallery.
SEED_EXAMPLES = (
    "america", "england", "sydney", "flag", "healthy", "happyness", "music", "eye", "hairstyle",
    "watch", "work", "people+park", "bike+park", "bike-park", "beach+sunrise", "beach-sunrise",
    "car+yellow", "car-yellow", "cold", "cold-snow", "train", "train-car", "paint",
    "travel+paint", "fish", "fish+food",
)
TOP = 5            # an example is judged on its first results
GOOD_IN_TOP = 3    # how many of them must mention what it asks for
MIN_AUC = 0.8      # how early a content word's images must rank (0.5: at random)
CANDIDATE_WORDS = 200
SAMPLE = 20_000    # the first images of a large gallery are enough, and quick


@dataclass(frozen=True)
class Offer:
    """What the hello message offers: example queries and the gallery's content words."""

    examples: list[str]
    words: list[str]


def offer(retriever: Retriever, count: int = 8, sample: int = SAMPLE) -> Offer:
    captioned = [(item, _words(item.caption)) for item in retriever.gallery.page(0, sample)
                 if item.caption]
    words = content_words(retriever, captioned, count)
    return Offer(try_examples(retriever, captioned, words, count), words)


def content_words(retriever: Retriever, captioned: Sequence[tuple[Item, set[str]]],
                  count: int = 8) -> list[str]:
    """Caption words the model finds from the pictures, the most used first."""
    known = retriever.word_space
    counts = Counter(word for _, said in captioned for word in sorted(said)  # ties: in order
                     if word in known and word.isalpha() and len(word) > 2)
    least = min(3, 1 + len(captioned) // 50)  # in a large gallery one caption may be chance
    candidates = [word for word, n in counts.most_common(CANDIDATE_WORDS) if n >= least]
    if not candidates:
        return []
    rows = [item.row for item, _ in captioned]
    pictures = normalized(np.asarray(retriever.gallery.vectors[rows], np.float32))
    scores = pictures @ normalized(np.stack([known.word_vector(w) for w in candidates])).T
    ranks = scores.argsort(axis=0).argsort(axis=0) / max(1, len(rows) - 1)  # 1: ranked first
    has = np.array([[word in said for word in candidates] for _, said in captioned])
    auc = (ranks * has).sum(axis=0) / has.sum(axis=0)
    return [word for word, good in zip(candidates, auc >= MIN_AUC, strict=True) if good][:count]


def try_examples(retriever: Retriever, captioned: Sequence[tuple[Item, set[str]]],
                 words: Sequence[str], count: int = 8) -> list[str]:
    """The seed examples, then ones made of the gallery's words, that run well here."""
    candidates = list(dict.fromkeys([*SEED_EXAMPLES, *_made_of(words, captioned)]))
    answers = retriever.answer_many([QueryRequest(text, {}, TOP) for text in candidates])
    # without captions there is nothing to judge the results by: running as written must do
    good = [text for text, answer in zip(candidates, answers, strict=True)
            if isinstance(answer, Answer) and _as_written(answer)
            and (not captioned or _ranks_well(answer, captioned))]
    return good[:count]


def _made_of(words: Sequence[str], captioned: Sequence[tuple[Item, set[str]]]) -> list[str]:
    """For each content word: itself, plus and minus the word its captions use most with it
    (`brick+wall` is left out after `wall+brick`)."""
    made, pairs = [], set()
    for word in words:
        companions = Counter(other for _, said in captioned if word in said
                             for other in sorted(said) if other != word)
        made.append(word)
        for other, _ in companions.most_common(1):
            if frozenset((word, other)) not in pairs:
                made.append(f"{word}+{other}")
            pairs.add(frozenset((word, other)))
            made.append(f"{word}-{other}")
    return made


def _as_written(answer: Answer) -> bool:
    """No word corrected, and (where the reply says) every word from the captions' vocabulary."""
    return not answer.corrections and all(
        source == "captions" for term in answer.terms for source in term.get("sources", ()))


def _ranks_well(answer: Answer, captioned: Sequence[tuple[Item, set[str]]]) -> bool:
    """The first result's caption says every added term, and of the first TOP at least
    GOOD_IN_TOP (or as many as the gallery has) say one of them and no subtracted word."""
    words = [term for term in answer.terms if term["kind"] == "words"]
    added = [set(term["used"]) for term in words if term["sign"] == "+"]
    subtracted = {word for term in words if term["sign"] == "-" for word in term["used"]}

    def fits(said: set[str]) -> bool:
        return _says(said, set().union(*added)) and not _says(said, subtracted)

    said = [_words(hit.caption) for hit in answer.hits]
    there = sum(fits(s) for _, s in captioned)
    return bool(said) and fits(said[0]) and all(_says(said[0], term) for term in added) \
        and sum(map(fits, said)) >= min(GOOD_IN_TOP, there)


def _says(said: set[str], wanted: set[str]) -> bool:
    # a plural in the caption counts: "flowers" says flower
    return any({word, f"{word}s", f"{word}es"} & said for word in wanted)


def _words(caption: str | None) -> set[str]:
    return set(tokenize(caption or ""))
