"""Spelling help for query words: candidates by edit distance, ranked by PHOC and frequency.

Only a non-word is corrected: a word that neither the captions' vocabulary nor general English
knows. `Speller.correct` takes the known words one edit away (a deletion, an insertion, a
substitution or a transposition of neighbours), or two when there are none, and ranks them by
the cosine similarity of their PHOC descriptors (cphoc: words spelled alike share letters in the
same parts of the word) plus a prior for words of the captions and for common words. A real but
rare word one edit from a much more common caption word (`beech`, `beach`) runs as typed and
`Speller.more_common` offers the other as a suggestion. `SpellingIndex` finds the nearest
vocabulary PHOCs of any string: suggestions when nothing is close. See docs/phoc.md.

`reference_phoc` is the same descriptor in plain Python loops: the oracle the C code is tested
against, not for production use.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from cphoc import BIGRAM_LEVELS, BIGRAMS, PHOC_DIM, UNIGRAM_LEVELS, UNIGRAMS, phoc
from server.text import STOP_WORDS
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


# What an edit may insert or substitute: the characters a cleaned query word is made of.
LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789"
MAX_EDITS = 2
CAPTION_BONUS = 0.15  # the gallery's own domain: a caption word is the likelier meaning
COMMON_BONUS = 0.3  # times commonness in [0, 1]: of two spellings, the common word
# Swapped neighbours are among the commonest typos (`dgo`), yet they move letters across the
# halves PHOC compares, so its similarity alone underrates them.
TRANSPOSE_BONUS = 0.2
MIN_TWO_EDIT_SIMILARITY = 0.5  # two edits of a short word reach many words: demand likeness
SHORTEST_FOR_TWO_EDITS = 5  # two edits of a 4-letter string leave half of it: no evidence
TWO_EDIT_ENGLISH = 30_000  # English words (by rank) searched at two edits
RARE_FACTOR = 5  # a known word is "rare next to" a caption word this many times more common


def edits1(word: str) -> set[str]:
    """Every string one edit from `word`: deletion, transposition, substitution, insertion."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = {a + b[1:] for a, b in splits if b}
    transposes = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaces = {a + c + b[1:] for a, b in splits if b for c in LETTERS}
    inserts = {a + c + b for a, b in splits for c in LETTERS}
    return (deletes | transposes | replaces | inserts) - {word}


def edit_distance(a: str, b: str, limit: int = MAX_EDITS) -> int:
    """Optimal string alignment distance (Damerau's four edits, no substring edited twice),
    or `limit + 1` as soon as it is known to exceed `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before, previous = None, list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1,
                             previous[j - 1] + (char_a != char_b))
            if (before is not None and i > 1 and j > 1 and char_a == b[j - 2]
                    and a[i - 2] == char_b):
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return min(previous[-1], limit + 1)


def _letter_counts(words: Sequence[str]) -> np.ndarray:
    """(len(words), 37): how often each of LETTERS occurs in each word, then its length, in the
    narrowest integers that hold the longest word (int8 for a vocabulary: a few MB less)."""
    codes = np.array(words, dtype=str)  # fixed width: one UTF-32 code point per cell
    width = max(codes.dtype.itemsize // 4, 1)
    points = codes.view(np.uint32).reshape(len(words), width) if len(words) else \
        np.zeros((0, width), np.uint32)
    slot = np.full(128, len(LETTERS))
    slot[[ord(c) for c in LETTERS]] = np.arange(len(LETTERS))
    # a letter's column; anything else (padding, any character beyond ASCII) the spare one
    columns = np.where(points < 128, slot[np.minimum(points, 127)], len(LETTERS))
    cells = (np.arange(len(words))[:, None] * (len(LETTERS) + 1) + columns).ravel()
    lengths = [len(w) for w in words]
    counts = np.bincount(cells, minlength=len(words) * (len(LETTERS) + 1))
    counts = counts.reshape(len(words), len(LETTERS) + 1)
    counts[:, -1] = lengths  # the spare column becomes the length
    return counts.astype(np.min_scalar_type(-max(lengths, default=0) - 1))


class Speller:
    """Known words are those of the captions (`caption_words`, most frequent first) and of
    general English (`english`: its words most frequent first, or a word -> rank mapping such
    as `EnglishWords.index`, shared rather than copied); corrections come from both."""

    def __init__(self, caption_words: Sequence[str],
                 english: Mapping[str, int] | Sequence[str] = (),
                 threshold: float = DEFAULT_THRESHOLD):
        self.caption_rank = {w: r for r, w in enumerate(caption_words) if w not in STOP_WORDS}
        self.english_rank = english if isinstance(english, Mapping) else \
            {w: r for r, w in enumerate(english)}
        self.nearest_captions = SpellingIndex(caption_words, threshold)

    @cached_property
    def _two_edit_words(self) -> list[str]:
        """Where two-edit candidates are sought: the caption words and the most common English
        words (a rarer word two edits from a typo is seldom what was meant). Built on first
        use, so a server that never sees such a typo never pays for it."""
        common = (w for w, r in self.english_rank.items() if r < TWO_EDIT_ENGLISH)
        return [w for w in dict.fromkeys([*self.caption_rank, *common]) if w not in STOP_WORDS]

    @cached_property
    def _counts(self) -> np.ndarray:
        # Each edit changes the letter counts by at most 2 (in total): a cheap filter that
        # leaves a few hundred words to measure exactly, instead of the whole vocabulary.
        return _letter_counts(self._two_edit_words)

    def known(self, word: str) -> bool:
        return word not in STOP_WORDS and (word in self.caption_rank or word in self.english_rank)

    def commonness(self, word: str) -> float:
        """In [0, 1]: 1 for the most frequent word of the captions or of English, falling with
        the log of its rank in either list; 0 for a word neither lists."""
        return max(_by_rank(self.caption_rank, word), _by_rank(self.english_rank, word))

    @cached_property
    def _longest(self) -> int:
        return max(map(len, [*self.caption_rank, *self.english_rank]), default=0)

    def candidates(self, word: str) -> list[tuple[str, float]]:
        """Known words at the fewest edits (1 or 2), best first, with their scores."""
        if len(word) > self._longest + MAX_EDITS:  # nothing known is within reach: skip the
            return []                               # ~70 strings per letter edits1 would make
        fewest, words = 1, [w for w in edits1(word) if self.known(w)]  # ~50n strings: fast
        if not words and len(word) >= SHORTEST_FOR_TWO_EDITS:
            fewest, words = 2, self._two_edits(word)
        if not words:
            return []
        likeness = normalized(phoc(words)) @ normalized(phoc(word))
        scored = [(w, float(like) + CAPTION_BONUS * (w in self.caption_rank)
                   + COMMON_BONUS * self.commonness(w) + TRANSPOSE_BONUS * _swapped(word, w))
                  for w, like in zip(words, likeness, strict=True)
                  if fewest == 1 or like >= MIN_TWO_EDIT_SIMILARITY]
        return sorted(scored, key=lambda ws: (-ws[1], ws[0]))

    def _two_edits(self, word: str) -> list[str]:
        """Known words exactly two edits away: (edits of edits would be ~(50n)^2 strings)."""
        # differences in a type that holds both sides: the table's int8 could not hold a
        # query word longer than 127 letters
        query = _letter_counts([word])[0].astype(np.int32)
        apart = np.abs(self._counts[:, :-1] - query[:-1]).sum(axis=1)
        near = np.flatnonzero((apart <= 2 * MAX_EDITS)
                              & (np.abs(self._counts[:, -1] - query[-1]) <= MAX_EDITS))
        words = self._two_edit_words
        return [words[row] for row in near.tolist() if edit_distance(word, words[row]) == MAX_EDITS]
    def correct(self, word: str) -> str | None:
        """The word a non-word stands for, or None when nothing known is close."""
        best = self.candidates(word)
        return best[0][0] if best else None

    def suggest(self, word: str, k: int = 3) -> list[str]:
        """Did-you-mean words for a word that could not be corrected: the nearest caption
        words by PHOC (the vocabulary the gallery speaks)."""
        return [w for w, _ in self.nearest_captions.nearest(word, k)]

    def more_common(self, word: str) -> list[str]:
        """Caption words one edit from a known but much rarer word (`beech` -> `beach`): what
        the user may have meant, offered while the word runs as typed."""
        if word in self.caption_rank:
            return []
        rank = self.english_rank.get(word, len(self.english_rank))
        return sorted((w for w in edits1(word) if w in self.caption_rank
                       and self.english_rank.get(w, rank) * RARE_FACTOR < rank),
                      key=lambda w: self.english_rank[w])


def _swapped(a: str, b: str) -> bool:
    """Whether b is a with two neighbouring characters swapped."""
    if len(a) != len(b):
        return False
    differ = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    return len(differ) == 2 and differ[1] == differ[0] + 1 and a[differ[0]] == b[differ[1]] \
        and a[differ[1]] == b[differ[0]]


def _by_rank(ranks: Mapping[str, int], word: str) -> float:
    if word not in ranks:
        return 0.0
    return 1 - math.log1p(ranks[word]) / math.log1p(len(ranks))
