"""Word lookup by spelling: PHOC descriptors (cphoc) and the nearest vocabulary word to a typo.

A query word missing from the word space (a typo such as "bycicle") still has a PHOC, and words
spelled alike have PHOCs with a high cosine similarity, so the closest vocabulary PHOC is the
likely intended word. `SpellingIndex.correct` returns it when it is close enough; otherwise the
caller shows `SpellingIndex.nearest` as suggestions. See docs/phoc.md.

`reference_phoc` is the same descriptor in plain Python loops: the oracle the C code is tested
against, not for production use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from cphoc import BIGRAM_LEVELS, BIGRAMS, PHOC_DIM, UNIGRAM_LEVELS, UNIGRAMS, phoc
from server.vectors import normalized

DEFAULT_THRESHOLD = 0.7
"""Least cosine similarity for `SpellingIndex.correct` to accept a word (see docs/phoc.md)."""


def reference_phoc(word: str) -> np.ndarray:
    """The PHOC of `word` as cphoc computes it, written for reading: float32, shape (604,)."""
    # ASCII capitals count as lower case; other characters keep their position, match nothing.
    chars = [c.lower() if "A" <= c <= "Z" else c for c in word]
    length = len(chars)
    vector = np.zeros(PHOC_DIM, np.float32)
    offset = 0
    for level in UNIGRAM_LEVELS:
        for region in range(level):
            for k, char in enumerate(chars):
                if char in UNIGRAMS and _occupies(k, k + 1, length, level, region):
                    vector[offset + region * len(UNIGRAMS) + UNIGRAMS.index(char)] = 1
        offset += level * len(UNIGRAMS)
    for level in BIGRAM_LEVELS:
        for region in range(level):
            for k in range(length - 1):
                pair = chars[k] + chars[k + 1]
                if pair in BIGRAMS and _occupies(k, k + 2, length, level, region):
                    vector[offset + region * len(BIGRAMS) + BIGRAMS.index(pair)] = 1
        offset += level * len(BIGRAMS)
    return vector


@lru_cache(maxsize=1 << 16)
def _occupies(first: int, last: int, length: int, level: int, region: int) -> bool:
    """Whether positions [first, last) of a `length`-character word lie at least half inside
    region `region` of `level`.

    In single precision, step by step, as the reference C code does: when a region boundary
    falls exactly on the middle of the n-gram (ratio exactly 1/2) rounding decides, and we
    must decide the same way to give the same vectors.
    """
    f32 = np.float32
    start, end = f32(first) / f32(length), f32(last) / f32(length)
    region_start, region_end = f32(region) / f32(level), f32(region + 1) / f32(level)
    overlap = min(end, region_end) - max(start, region_start)
    with np.errstate(invalid="ignore", divide="ignore"):  # huge words: start == end in float
        return bool(overlap / (end - start) >= f32(0.5))


@dataclass(frozen=True)
class Correction:
    """The vocabulary word a query is taken to mean, and how alike their PHOCs are (cosine)."""

    word: str
    similarity: float


class SpellingIndex:
    """Nearest vocabulary words to any string by the cosine similarity of their PHOCs.

    The vocabulary's PHOCs are computed once (C code), L2-normalized and stored one row per
    dimension. A query's PHOC is 0/1, so its dot product with every vocabulary word is the sum
    of the rows at its ones (a few dozen of the 604): cheaper than a full matrix-vector
    product, and no BLAS threads to wait for on a busy machine.
    """

    def __init__(self, vocabulary: Iterable[str], threshold: float = DEFAULT_THRESHOLD):
        self.words = list(vocabulary)
        self.threshold = threshold
        self._known = set(self.words)
        self._by_dim = np.ascontiguousarray(normalized(phoc(self.words)).T)  # (604, n)

    def __len__(self) -> int:
        return len(self.words)

    def similarities(self, word: str) -> np.ndarray:
        """Cosine similarity of `word`'s PHOC with every vocabulary word's (0 when either has
        no alphabet character at all)."""
        ones = np.flatnonzero(phoc(word))
        if ones.size == 0:
            return np.zeros(len(self.words), np.float32)
        return self._by_dim[ones].sum(axis=0) / np.float32(np.sqrt(ones.size))

    def nearest(self, word: str, k: int = 5) -> list[tuple[str, float]]:
        """The `k` most similar vocabulary words, best first; ties keep vocabulary order (for a
        frequency-sorted vocabulary: the more common word first)."""
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        similarities = self.similarities(word)
        candidates = np.arange(len(similarities))
        if 0 < k < len(similarities):  # the k best and everything tied with the k-th, in order
            kth = np.partition(similarities, len(similarities) - k)[len(similarities) - k]
            candidates = np.flatnonzero(similarities >= kth)
        order = candidates[np.argsort(-similarities[candidates], kind="stable")][:k]
        return [(self.words[i], float(similarities[i])) for i in order]

    def correct(self, word: str) -> Correction | None:
        """The vocabulary word `word` stands for: itself when known, else the nearest one when
        its similarity reaches the threshold, else None (show `nearest` as suggestions)."""
        if word in self._known:
            return Correction(word, 1.0)
        best = self.nearest(word, k=1)
        if best and best[0][1] >= self.threshold:
            return Correction(*best[0])
        return None
