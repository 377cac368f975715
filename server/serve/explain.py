"""Queries explained: what each term of a query contributed to its vector and to its results.

For each term, the words nearest its own vector (an image term's too: what the model makes of
the picture); for a subtracted term, also what the subtraction moved the query away from: the
words whose cosine to the query dropped most because of it, comparing the query with and
without the term over the vocabulary. Part of any word's drop is only the query growing longer
(`car-yellow` is longer than `car`, so even `car` loses 0.30 of cosine while losing nothing to
yellow's direction); a word is listed only where the term's own direction makes at least half
of its drop. For each result, the added term it matches best (the one whose vector has the
highest cosine with the result's vector) and its cosine with every term.

Terms are explained as the parser reads them: `3*park` is one term of weight 3, and
`park+park+park` three terms of weight 1 (a repeated term stays two terms, server.serve.query);
identical terms get identical words, and a result's tie goes to the first of them.

A single-term query is trivial: its term's nearest words are the query's own (the reply's
`nearest_words`), and every result would match it best. Its explanation holds that one term
with its nearest words, and no per-result matches (`results` is empty).

Pure: numpy over the word space and vectors handed in. The nearest words are WordSpace's own
(`nearest_words`, plain cosine over the caption vocabulary, as the reply's `nearest_words`: the
hubness correction of server.serve.hubness is for gallery images, not for words).
`Retriever.explain` gathers the vectors of an answered query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import numpy as np

from server.serve.query import Kind, Term, format_terms
from server.vectors import normalized
from server.wordspace import WordSpace

K_WORDS = 5  # words listed per term: what the page shows beside each term
PLACES = 3  # decimals of every similarity in an explanation
CANDIDATES = 4  # times k_words: the words that lost most, before those lost to length go
FEW_ROWS = 8  # vectors from which one product for all costs less than one each (measured)


class TermFields(TypedDict):
    term: str  # the term as understood, with its sign and weight: "-yellow", "2*park"
    sign: str  # "+" or "-"
    weight: float
    kind: Kind
    nearest_words: list[tuple[str, float]]  # (word, cosine to the term's vector)
    removed: NotRequired[list[tuple[str, float]]]  # subtracted terms: (word, cosine lost)


class MatchFields(TypedDict):
    best: int  # index in `terms` of the added term the result matches best
    cosines: list[float]  # the result's cosine with each term's vector, in term order


class ExplanationFields(TypedDict):
    terms: list[TermFields]  # in the order of the reply's `terms`
    results: list[MatchFields]  # in the order of the reply's `results`; empty for one term


@dataclass(frozen=True)
class TermExplained:
    term: Term
    nearest_words: tuple[tuple[str, float], ...]
    removed: tuple[tuple[str, float], ...] | None  # (word, cosine lost); None: an added term

    def as_json(self) -> TermFields:
        said = TermFields(term=format_terms([self.term]), sign="+" if self.term.sign > 0 else "-",
                          weight=self.term.weight, kind=self.term.kind,
                          nearest_words=list(self.nearest_words))
        if self.removed is not None:
            said["removed"] = list(self.removed)
        return said


@dataclass(frozen=True)
class ResultExplained:
    best: int
    cosines: tuple[float, ...]

    def as_json(self) -> MatchFields:
        return MatchFields(best=self.best, cosines=list(self.cosines))


@dataclass(frozen=True)
class Explanation:
    terms: tuple[TermExplained, ...]
    results: tuple[ResultExplained, ...]

    def as_json(self) -> ExplanationFields:
        """The JSON-ready dict for the `explain` field of a `results` reply."""
        return ExplanationFields(terms=[term.as_json() for term in self.terms],
                                 results=[match.as_json() for match in self.results])


def explain(word_space: WordSpace, terms: Sequence[Term], term_vectors: np.ndarray,
            query_vector: np.ndarray, result_vectors: np.ndarray, k_words: int = K_WORDS
            ) -> Explanation:
    """What each of `terms` contributed to a query and to its results.

    `term_vectors` holds each term's unit vector, before its sign and weight (row i for
    terms[i]); `query_vector` their sum with signs and weights, as Retriever.read makes it;
    `result_vectors` the gallery rows of the results, best first, as the search ranked them.
    """
    units = normalized(term_vectors)
    subtracted = [i for i, term in enumerate(terms) if term.sign < 0]
    shifts = [_shift_of(query_vector, units[i], terms[i].weight) for i in subtracted]
    # more words where there are subtractions: `_removed` drops some of their candidates
    found = _nearest(word_space, np.stack([*units, *shifts]),
                     CANDIDATES * k_words if shifts else k_words)
    query_size = float(np.linalg.norm(query_vector))
    removed = {i: _removed(word_space, candidates, float(np.linalg.norm(shift)),
                           terms[i].weight * units[i] / query_size, k_words)
               for i, shift, candidates in zip(subtracted, shifts, found[len(terms):],
                                               strict=True)}
    explained = tuple(TermExplained(term, _rounded(found[i][:k_words]), removed.get(i))
                      for i, term in enumerate(terms))
    matches = _matches(terms, units, result_vectors) if len(terms) > 1 else ()
    return Explanation(explained, matches)


def _nearest(word_space: WordSpace, vectors: np.ndarray, k: int
             ) -> list[list[tuple[str, float]]]:
    """The nearest words of each row: one product over the vocabulary per row for a few rows,
    one for all of them past FEW_ROWS. OpenBLAS packs the vocabulary matrix for a product of
    several rows: on 3,379 x 400, 3 rows took 0.23 ms at once and 0.09 ms one by one."""
    if len(vectors) < FEW_ROWS:
        return [word_space.nearest_words(vector, k) for vector in vectors]
    return word_space.nearest_words_many(vectors, k)


def _shift_of(query: np.ndarray, unit: np.ndarray, weight: float) -> np.ndarray:
    """How far a subtracted term turned the query: the query's direction without the term
    minus its direction with it. A word's cosine to the query fell by exactly its cosine to
    this shift times the shift's length, so the words nearest the shift lost the most."""
    without = np.asarray(query, np.float32) + weight * unit  # the term was -weight * unit
    return normalized(without) - normalized(query)


def _removed(word_space: WordSpace, candidates: list[tuple[str, float]], shift_size: float,
             pull: np.ndarray, k: int) -> tuple[tuple[str, float], ...]:
    """The words that lost most to a subtracted term, with the cosine each lost.

    A word u's drop is cos(u, without) * (1 - |without| / |query|), the query only growing
    longer, plus u . pull (pull = weight * term / |query|), the term's own direction: a word is
    kept where the second is at least half of the drop (`car` of `car-yellow` is not)."""
    words = [word for word, _ in candidates]
    drops = np.array([cosine for _, cosine in candidates], np.float32) * shift_size
    own = np.stack([word_space.unit_vector(word) for word in words]) @ pull
    kept = [(word, round(float(drop), PLACES))
            for word, drop, part in zip(words, drops, own, strict=True)
            if drop > 0 and part >= drop / 2]
    return tuple(kept[:k])


def _rounded(words: list[tuple[str, float]]) -> tuple[tuple[str, float], ...]:
    return tuple((word, round(score, PLACES)) for word, score in words)


def _matches(terms: Sequence[Term], units: np.ndarray, result_vectors: np.ndarray
             ) -> tuple[ResultExplained, ...]:
    """Each result's cosine with each term, and the best of the added terms: a result that is
    nearest a subtracted term ranked despite it, not because of it."""
    if len(result_vectors) == 0:
        return ()
    cosines = normalized(result_vectors) @ units.T
    added = np.array([term.sign > 0 for term in terms])
    if not added.any():  # the parser never reads such a query; all terms compete then
        added[:] = True
    best = np.where(added, cosines, -np.inf).argmax(axis=1)  # ties: the first term
    # rounded all at once: per value, Python's round() costs more than the product
    shown = np.round(cosines.astype(np.float64), PLACES).tolist()
    return tuple(ResultExplained(int(index), tuple(row))
                 for index, row in zip(best.tolist(), shown, strict=True))
