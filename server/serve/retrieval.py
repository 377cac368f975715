"""Queries to ranked gallery images: the semantics of the query language.

Each term becomes a unit vector (a word's joint-space vector; a phrase's mean of its words; a
gallery or uploaded image's embedding), is multiplied by its weight and sign, and the terms are
summed. The gallery is ranked by cosine similarity to the sum, leaving out the images the query
names. A word the captions taught runs as learned; any other English word runs as typed through
its general-English vector mapped into the joint space (server.english), and the answer says
which of the two each word came from. Only a non-word is corrected (server.serve.spelling), and
the answer says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np

from server.english import EnglishWords, joint_word
from server.serve.explain import K_WORDS, Explanation, explain
from server.serve.filters import Order, Within
from server.serve.gallery import Gallery, Item
from server.serve.hubness import HUB_CANDIDATES, SENTENCE_WORDS, correct
from server.serve.query import QueryError, Term, format_terms, parse
from server.serve.relevance import RelevanceLines
from server.serve.search import Hits, Search, search_within
from server.serve.spelling import Speller
from server.vectors import normalized
from server.wordspace import WordSpace

# Correcting a non-word costs up to ~20 ms (two-edit candidates, docs/text-space.md): a query of
# 500 characters of typos would otherwise hold the event loop for seconds
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
    within: Within | None = None  # only the photos this filter keeps
    order: Order = "score"  # or "date": the close matches newest first, then the others


@dataclass(frozen=True)
class Answer:
    query: str                                  # the query as understood
    terms: list[dict]                           # each term: sign, weight, kind, text, used
    corrections: list[tuple[str, str]]          # (typed, used instead)
    matches: list[Item]                         # the gallery images found, best first
    scores: list[float]                         # their cosine similarities, 4 places
    nearest_words: list[tuple[str, float]] = field(default_factory=list)
    suggestions: list[tuple[str, list[str]]] = field(default_factory=list)  # (word, others)
    line: float | None = None  # the relevance line for this query (server.serve.relevance)
    relevant: int | None = None  # how many of `matches` score above it

    @property
    def hits(self) -> list[Hit]:
        return [Hit(item.id, score, item.path, item.caption)
                for item, score in zip(self.matches, self.scores, strict=True)]


class Reading(NamedTuple):
    """A query read into one vector, and what the reading took or offers."""

    vector: np.ndarray
    understood: list[dict]  # each term: sign, weight, kind, text, used (and words' sources)
    corrections: list[tuple[str, str]]  # (typed, used instead): non-words only
    suggestions: list[tuple[str, list[str]]]  # (word run as typed, what it may have meant)
    rows: set[int]  # gallery rows the query names


class Description(NamedTuple):
    item: Item
    nearest_words: list[tuple[str, float]]   # nearest the image as a query ranks it
    picture_words: list[tuple[str, float]]   # nearest its picture alone


class _Parsed(NamedTuple):
    """A request of a batch that parsed: where it sits in the batch, and how it was read."""

    position: int
    request: QueryRequest
    terms: list[Term]
    reading: Reading


# Candidates of a query ordered by date: its close matches are ordered among these many
DATED_CANDIDATES = 500


def _candidates(request: QueryRequest) -> int:
    return max(request.k, DATED_CANDIDATES) if request.order == "date" else request.k


def _by_date(found: Hits, line: float | None, k: int, items: Mapping[int, Item]) -> Hits:
    """The close matches (above `line`; without one, the best `k`) newest first, then the
    others as they ranked."""
    close = int((found.scores >= line).sum()) if line is not None else min(k, len(found.rows))
    newest = sorted(range(close), key=lambda i: items[int(found.rows[i])].taken or "",
                    reverse=True)
    order = np.array([*newest, *range(close, len(found.rows))], np.int64)
    return Hits(found.rows[order], found.scores[order])


class Retriever:
    def __init__(self, word_space: WordSpace, gallery: Gallery, search: Search,
                 english: EnglishWords | None = None, speller: Speller | None = None,
                 vectors: np.ndarray | None = None, hubness: np.ndarray | None = None,
                 lines: RelevanceLines | None = None):
        """`vectors` are the gallery's rows as `search` ranks them (gallery.search_vectors);
        `hubness` their hubness (server.serve.hubness), which corrects sentence queries;
        `lines` where close matches end (server.serve.relevance)."""
        self.word_space, self.gallery, self.search = word_space, gallery, search
        self.english = english
        self.vectors = gallery.vectors if vectors is None else vectors
        self.speller = speller or Speller(word_space.words, english.index if english else ())
        self.hubness = hubness
        self.lines = lines

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
                                    self.read(terms, request.uploads)))
            except QueryError as error:
                results[position] = error
        if not good:
            return [results[position] for position in range(len(requests))]  # all errors
        vectors = np.stack([parsed.reading.vector for parsed in good])
        sentences = [self._is_sentence(parsed.terms) for parsed in good]
        hits = self._search(good, vectors, sentences)
        neighbours = self.word_space.nearest_words_many(vectors, nearest_words)
        wanted = sorted({row for found in hits for row in found.rows.tolist()})
        items = dict(zip(wanted, self.gallery.items(wanted), strict=True))
        for parsed, found, near, sentence in zip(good, hits, neighbours, sentences, strict=True):
            k = parsed.request.k
            line = self.lines.line(parsed.terms, sentence) if self.lines else None
            if parsed.request.order == "date":
                found = _by_date(found, line, k, items)
            scores = found.scores[:k]
            # the words used differ from those typed only where a word was corrected
            corrected = parsed.terms if not parsed.reading.corrections else [
                replace(term, words=tuple(said["used"])) if term.kind == "words" else term
                for term, said in zip(parsed.terms, parsed.reading.understood, strict=True)]
            results[parsed.position] = Answer(
                query=format_terms(corrected), terms=parsed.reading.understood,
                corrections=parsed.reading.corrections,
                suggestions=parsed.reading.suggestions,
                matches=[items[row] for row in found.rows[:k].tolist()],
                # all at once: per hit, Python's round() was a tenth of a query's cost
                scores=np.round(scores.astype(np.float64), 4).tolist(),
                nearest_words=[(w, round(score, 4)) for w, score in near],
                line=line, relevant=None if line is None else int((scores >= line).sum()))
        return [results[position] for position in range(len(requests))]  # all filled by now

    def _search(self, good: list[_Parsed], vectors: np.ndarray, sentences: list[bool]
                ) -> list[Hits]:
        """Each query's candidates: one product for the batch's unfiltered queries, and each
        filtered one among the rows its filter keeps; sentences re-ranked for hubness."""
        wanted = [_candidates(parsed.request) for parsed in good]
        more = [HUB_CANDIDATES if sentence else 0 for sentence in sentences]
        excludes = [parsed.reading.rows if parsed.request.exclude_query_images else set()
                    for parsed in good]
        hits: list[Hits] = [Hits(np.zeros(0, np.int64), np.zeros(0, np.float32))] * len(good)
        plain = [i for i, parsed in enumerate(good) if parsed.request.within is None]
        if plain:
            found = self.search.search_many(vectors[plain], max(wanted[i] + more[i]
                                                                for i in plain),
                                            [excludes[i] for i in plain])
            for i, one in zip(plain, found, strict=True):
                hits[i] = one
        for i, parsed in enumerate(good):
            if parsed.request.within is not None:
                hits[i] = search_within(self.vectors,
                                        self.gallery.rows_within(parsed.request.within),
                                        vectors[i], wanted[i] + more[i], excludes[i])
        return [self._corrected(found, n) if sentence else found
                for found, n, sentence in zip(hits, wanted, sentences, strict=True)]

    def _corrected(self, found: Hits, k: int) -> Hits:
        """A sentence query's candidates re-ranked for hubness, the best `k` kept."""
        assert self.hubness is not None  # only sentences are corrected, and only with it
        rows, scores = correct(found.rows, found.scores, self.hubness)
        return Hits(rows[:k], scores[:k])

    def _is_sentence(self, terms: list[Term]) -> bool:
        """Whether a query reads as a caption, the kind the hubness correction was chosen for:
        one added phrase of SENTENCE_WORDS words or more. Arithmetic (`dog+beach+sunset`,
        `[IMG_1]+park+park`) is left as it is, so a repeated term still equals its weight."""
        if self.hubness is None or len(terms) != 1:
            return False
        term = terms[0]
        return term.kind == "words" and term.sign > 0 and len(term.words) >= SENTENCE_WORDS

    def read(self, terms: list[Term], uploads: Mapping[int, np.ndarray]) -> Reading:
        """The terms summed into one vector, with what each was taken to be."""
        total = np.zeros(self.word_space.dim, np.float32)
        reading = Reading(total, [], [], [], set())
        for term in terms:
            said: dict[str, Any] = {"sign": "+" if term.sign > 0 else "-",
                                       "weight": term.weight, "kind": term.kind,
                                       "text": term.text}
            if term.kind == "words":
                found = [self._word(word, reading) for word in term.words]
                said |= {"used": [w for w, _, _ in found], "sources": [s for _, s, _ in found]}
                # one word's vector is a unit already (the usual query: skip the mean's cost)
                vector = found[0][2] if len(found) == 1 else \
                    normalized(np.mean([v for _, _, v in found], axis=0))
            elif term.kind == "image":
                item = self.gallery.by_id(term.ref)
                if item is None:
                    raise QueryError(f"there is no image {term.text} in this gallery")
                reading.rows.add(item.row)
                said["used"], vector = [term.text], normalized(self.vectors[item.row])
            else:
                if term.ref not in uploads:
                    raise QueryError(f"no {term.text} on this connection: upload an image first")
                said["used"], vector = [term.text], normalized(uploads[term.ref])
            total += term.sign * term.weight * vector
            reading.understood.append(said)
        if np.linalg.norm(total) < 1e-6:
            raise QueryError("the terms cancel each other out: nothing is left to search for")
        return reading

    def _word(self, word: str, reading: Reading) -> tuple[str, str, np.ndarray]:
        """(the word used, where its vector came from, its unit vector) for a query word:
        the captions' own word, else English's, else the correction of a non-word."""
        known = joint_word(word, self.word_space, self.english)
        if known is not None:
            source, vector = known
            if source == "english" and (others := self.speller.more_common(word)):
                reading.suggestions.append((word, others))
            return word, source, vector
        if len(reading.corrections) >= MAX_CORRECTIONS:
            raise QueryError(f"too many unknown words: at most {MAX_CORRECTIONS} are corrected "
                             "in one query")
        corrected = self.speller.correct(word)
        if corrected is None:
            suggestions = self.speller.suggest(word)
            raise QueryError(f"unknown word {word!r}: not an English word we know, and no known "
                             f"word is spelled like it. Did you mean {', '.join(suggestions)}?",
                             word=word, suggestions=suggestions)
        reading.corrections.append((word, corrected))
        used, source, vector = self._word(corrected, reading)
        return used, source, vector

    def explain(self, answer: Answer, uploads: Mapping[int, np.ndarray] | None = None,
                k_words: int = K_WORDS) -> Explanation:
        """What each term of an answered query contributed (server.serve.explain).

        The terms are read again from `answer.query`, where every correction is made already:
        no word is corrected twice, and each term's vector comes from `read` itself, given the
        term alone with sign and weight 1 (its unit vector). The results' vectors are the
        gallery rows as the search ranked them."""
        terms = parse(answer.query)
        units = np.stack([self.read([replace(term, sign=1, weight=1.0)], uploads or {}).vector
                          for term in terms])
        scales = np.array([term.sign * term.weight for term in terms], np.float32)
        rows = [item.row for item in answer.matches]
        return explain(self.word_space, terms, units, scales @ units,
                       np.asarray(self.vectors[rows], np.float32), k_words)

    def describe(self, image_id: int, k: int = 8) -> Description:
        """What the model makes of a gallery image: the words nearest the vector `[IMG_<id>]`
        adds to a query, and those nearest its picture alone."""
        item = self.gallery.by_id(image_id)
        if item is None:
            raise QueryError(f"there is no image [IMG_{image_id}] in this gallery")
        both = np.stack([self.vectors[item.row], self.gallery.vectors[item.row]])
        ranked, picture = self.word_space.nearest_words_many(both, k)
        rounded = [[(w, round(score, 4)) for w, score in found] for found in (ranked, picture)]
        return Description(item, *rounded)
