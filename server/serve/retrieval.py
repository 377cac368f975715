"""Queries to ranked gallery images: the semantics of the query language.

Each term becomes a unit vector (a word's joint-space vector; a phrase's mean of its words; a
gallery or uploaded image's embedding), is multiplied by its weight and sign, and the terms are
summed. The gallery is ranked by cosine similarity to the sum, leaving out the images the query
names. Unknown words are replaced by the vocabulary word with the nearest PHOC, and the answer
says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from server.serve.gallery import Gallery
from server.serve.query import QueryError, Term, format_terms, parse
from server.serve.search import Search
from server.serve.spelling import SpellingIndex
from server.text import tokenize
from server.vectors import normalized
from server.wordspace import WordSpace

# The reference's examples; the page shows those the loaded model can answer.
SEED_EXAMPLES = (
    "america", "england", "sydney", "flag", "healthy", "happyness", "music", "eye", "hairstyle",
    "watch", "work", "people+park", "bike+park", "bike-park", "beach+sunrise", "beach-sunrise",
    "car+yellow", "car-yellow", "cold", "cold-snow", "train", "train-car", "paint",
    "travel+paint", "fish", "fish+food",
)


# Looking a misspelled word up costs ~0.2 ms (its PHOC against the whole vocabulary): a query of
# 500 characters of typos would hold the event loop for tens of milliseconds
MAX_CORRECTIONS = 8


class Hit(NamedTuple):
    id: int
    score: float
    path: str
    caption: str | None


@dataclass(frozen=True)
class QueryRequest:
    text: str
    uploads: Mapping[int, np.ndarray] = field(default_factory=dict)
    k: int = 24
    exclude_query_images: bool = True


@dataclass(frozen=True)
class Answer:
    query: str                                  # the query as understood
    terms: list[dict]                           # each term: sign, weight, kind, text, used
    corrections: list[tuple[str, str]]          # (typed, used instead)
    hits: list[Hit]
    nearest_words: list[tuple[str, float]] = field(default_factory=list)


class _Parsed(NamedTuple):
    """A request of a batch that parsed: where it sits in the batch, and its query vector."""

    position: int
    request: QueryRequest
    terms: list[Term]
    vector: np.ndarray
    understood: list[dict]
    corrections: list[tuple[str, str]]
    rows: set[int]  # gallery rows the query names


class Retriever:
    def __init__(self, word_space: WordSpace, gallery: Gallery, search: Search,
                 spelling: SpellingIndex | None = None, vectors: np.ndarray | None = None):
        """`vectors` are the gallery's rows as `search` ranks them (gallery.search_vectors)."""
        self.word_space, self.gallery, self.search = word_space, gallery, search
        self.vectors = gallery.vectors if vectors is None else vectors
        self.spelling = spelling or SpellingIndex(word_space.words)

    def answer(self, text: str, uploads: Mapping[int, np.ndarray] | None = None, k: int = 24,
               exclude_query_images: bool = True, nearest_words: int = 8) -> Answer:
        request = QueryRequest(text, uploads or {}, k, exclude_query_images)
        (result,) = self.answer_many([request], nearest_words)
        if isinstance(result, QueryError):
            raise result
        return result

    def answer_many(self, requests: list[QueryRequest], nearest_words: int = 8
                    ) -> list[Answer | QueryError]:
        """Answer a batch with one product over the gallery and one over the vocabulary.

        The server batches the queries that arrive together: under load this is several times
        cheaper per query than answering one at a time. A bad query is its QueryError in the
        list and does not disturb the others.
        """
        results: dict[int, Answer | QueryError] = {}  # by position in `requests`
        good: list[_Parsed] = []
        for position, request in enumerate(requests):
            try:
                terms = parse(request.text)
                good.append(_Parsed(position, request, terms,
                                    *self.query_vector(terms, request.uploads)))
            except QueryError as error:
                results[position] = error
        if not good:
            return [results[position] for position in range(len(requests))]  # all errors
        vectors = np.stack([parsed.vector for parsed in good])
        hits = self.search.search_many(
            vectors, max(parsed.request.k for parsed in good),
            [parsed.rows if parsed.request.exclude_query_images else () for parsed in good])
        neighbours = self.word_space.nearest_words_many(vectors, nearest_words)
        wanted = sorted({row for found in hits for row in found.rows.tolist()})
        items = dict(zip(wanted, self.gallery.items(wanted), strict=True))
        for parsed, found, near in zip(good, hits, neighbours, strict=True):
            k = parsed.request.k
            corrected = [replace(term, words=tuple(said["used"])) if term.kind == "words"
                         else term for term, said in zip(parsed.terms, parsed.understood,
                                                         strict=True)]
            results[parsed.position] = Answer(
                query=format_terms(corrected), terms=parsed.understood,
                corrections=parsed.corrections,
                hits=[Hit(items[row].id, round(score, 4), items[row].path, items[row].caption)
                      for row, score in zip(found.rows[:k].tolist(), found.scores[:k].tolist(),
                                            strict=True)],
                nearest_words=[(w, round(score, 4)) for w, score in near])
        return [results[position] for position in range(len(requests))]  # all filled by now

    def query_vector(self, terms: list[Term], uploads: Mapping[int, np.ndarray]
                     ) -> tuple[np.ndarray, list[dict], list[tuple[str, str]], set[int]]:
        """The summed vector, each term as understood, word corrections, gallery rows named."""
        total = np.zeros(self.word_space.dim, np.float32)
        understood: list[dict] = []
        corrections: list[tuple[str, str]] = []
        rows: set[int] = set()
        for term in terms:
            if term.kind == "words":
                used = [self._known_word(word, corrections) for word in term.words]
                vector = np.mean(normalized([self.word_space.word_vector(w) for w in used]), axis=0)
            elif term.kind == "image":
                item = self.gallery.by_id(term.ref)
                if item is None:
                    raise QueryError(f"there is no image {term.text} in this gallery")
                rows.add(item.row)
                used, vector = [term.text], np.asarray(self.vectors[item.row])
            else:
                if term.ref not in uploads:
                    raise QueryError(f"no {term.text} on this connection: upload an image first")
                used, vector = [term.text], uploads[term.ref]
            total += term.sign * term.weight * normalized(vector)
            understood.append({"sign": "+" if term.sign > 0 else "-", "weight": term.weight,
                               "kind": term.kind, "text": term.text, "used": used})
        if np.linalg.norm(total) < 1e-6:
            raise QueryError("the terms cancel each other out: nothing is left to search for")
        return total, understood, corrections, rows

    def _known_word(self, word: str, corrections: list[tuple[str, str]]) -> str:
        if word in self.word_space:
            return word
        if len(corrections) >= MAX_CORRECTIONS:
            raise QueryError(f"too many unknown words: at most {MAX_CORRECTIONS} are corrected "
                             "in one query")
        correction = self.spelling.correct(word)
        if correction is None:
            suggestions = ", ".join(w for w, _ in self.spelling.nearest(word, 3))
            raise QueryError(f"unknown word {word!r}: the model never saw it in a caption. "
                             f"Did you mean {suggestions}?")
        corrections.append((word, correction.word))
        return correction.word

    def answerable(self, queries: tuple[str, ...] = SEED_EXAMPLES) -> list[str]:
        """The queries this model can run (misspellings it can correct included)."""
        good = []
        for query in queries:
            try:
                self.query_vector(parse(query), {})
                good.append(query)
            except QueryError:
                pass
        return good

    def gallery_examples(self, count: int = 8, sample: int = 20_000) -> list[str]:
        """The words this gallery's captions use most that the model knows (none without
        captions)."""
        counts = Counter(  # the first `sample` images: enough, and quick for a million
            word for item in self.gallery.page(0, sample) if item.caption
            for word in set(tokenize(item.caption)) if word in self.word_space)
        return [word for word, _ in counts.most_common(count)]
