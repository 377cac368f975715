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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

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


@dataclass
class Captions:
    """The captioned images of a gallery's first SAMPLE, their words, and for each word the
    images whose captions say it (positions in `items`)."""

    items: list[Item]
    said: list[set[str]] = field(default_factory=list)
    postings: dict[str, set[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.said = [set(tokenize(item.caption or "")) for item in self.items]
        for position, words in enumerate(self.said):
            for word in words:
                self.postings.setdefault(word, set()).add(position)

    def saying(self, words: Iterable[str]) -> set[int]:
        """The images whose captions say one of the words (or its plural)."""
        return set().union(*(self.postings.get(form, set()) for form in _forms(words)))


def offer(retriever: Retriever, count: int = 8, sample: int = SAMPLE) -> Offer:
    captions = Captions([item for item in retriever.gallery.page(0, sample) if item.caption])
    words = content_words(retriever, captions, count)
    return Offer(try_examples(retriever, captions, words, count), words)


def content_words(retriever: Retriever, captions: Captions, count: int = 8) -> list[str]:
    """Caption words the model finds from the pictures, the most used first."""
    known = retriever.word_space
    counts = {word: len(images) for word, images in sorted(captions.postings.items())
              if word in known and word.isalpha() and len(word) > 2}
    least = min(3, 1 + len(captions.items) // 50)  # in a large gallery one caption may be chance
    candidates = [word for word, n in Counter(counts).most_common(CANDIDATE_WORDS)
                  if n >= least]
    if not candidates:
        return []
    rows = [item.row for item in captions.items]
    pictures = normalized(np.asarray(retriever.gallery.vectors[rows], np.float32))
    scores = pictures @ normalized(np.stack([known.word_vector(w) for w in candidates])).T
    ordered = np.sort(scores, axis=0)
    last = max(1, len(rows) - 1)
    good = []
    for column, word in enumerate(candidates):
        # the word's images' ranks among all, from 0 (last) to 1 (first): their mean is the AUC
        mine = scores[sorted(captions.postings[word]), column]
        if np.searchsorted(ordered[:, column], mine).mean() / last >= MIN_AUC:
            good.append(word)
    return good[:count]



def try_examples(retriever: Retriever, captions: Captions, words: Sequence[str],
                 count: int = 8) -> list[str]:
    """The seed examples, then ones made of the gallery's words, that run well here."""
    candidates = list(dict.fromkeys([*SEED_EXAMPLES, *_made_of(words, captions)]))
    answers = retriever.answer_many([QueryRequest(text, {}, TOP) for text in candidates])
    # without captions there is nothing to judge the results by: running as written must do
    good = [text for text, answer in zip(candidates, answers, strict=True)
            if isinstance(answer, Answer) and _as_written(answer)
            and (not captions.items or _ranks_well(answer, captions))]
    return good[:count]


def _made_of(words: Sequence[str], captions: Captions) -> list[str]:
    """For each content word: itself, plus and minus the word its captions use most with it
    (`brick+wall` is left out after `wall+brick`)."""
    made, pairs = [], set()
    for word in words:
        companions = Counter(other for position in sorted(captions.postings[word])
                             for other in sorted(captions.said[position]) if other != word)
        made.append(word)
        for other, _ in companions.most_common(1):
            if frozenset((word, other)) not in pairs:
                made.append(f"{word}+{other}")
            pairs.add(frozenset((word, other)))
            made.append(f"{word}-{other}")
    return made


def _as_written(answer: Answer) -> bool:
    """No word corrected (a real word outside the captions runs as typed: it counts)."""
    return not answer.corrections


def _ranks_well(answer: Answer, captions: Captions) -> bool:
    """The first result's caption says every added term, and of the first TOP at least
    GOOD_IN_TOP (or as many as the gallery has) say one of them and no subtracted word."""
    words = [term for term in answer.terms if term["kind"] == "words"]
    added = [term["used"] for term in words if term["sign"] == "+"]
    subtracted = [word for term in words if term["sign"] == "-" for word in term["used"]]
    wanted, unwanted = _forms(w for term in added for w in term), _forms(subtracted)
    said = [set(tokenize(hit.caption or "")) for hit in answer.hits]
    fits = [bool(words & wanted) and not words & unwanted for words in said]
    there = captions.saying(wanted) - captions.saying(unwanted)  # plurals of plurals: harmless
    return bool(said) and fits[0] and all(said[0] & _forms(term) for term in added) \
        and sum(fits) >= min(GOOD_IN_TOP, len(there))


def _forms(words: Iterable[str]) -> set[str]:
    """The words and their plurals: a caption that says "flowers" says flower."""
    return {form for word in words for form in (word, f"{word}s", f"{word}es")}

