"""General English words in the joint space: the most frequent words of GloVe 6B 50d, mapped.

The captions teach the model a few thousand words. Any other real word still runs as typed:
its general-English vector (GloVe 6B 50d, Wikipedia + Gigaword) is mapped into the joint space
by blending the learned vectors of the caption words nearest to it in GloVe's space (softmax
over their cosine similarities, the `k` nearest). The map is chosen on Flickr8k's dev split with
words held out of it (docs/text-space.md); it needs no training, so it also covers caption words
the model will learn later. Only the table's most frequent rows are kept: the rarer entries are
largely misspellings and fragments, and a typo should be corrected, not looked up.

The table is two files in the model folder: the words, most frequent first, and their vectors
(float16, memory-mapped, so a 100k-word table costs its pages only when words are looked up).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from server.artifacts import ENGLISH_VECTORS_FILE, ENGLISH_WORDS_FILE, read_manifest
from server.concept_space import ConceptSpace
from server.text import normalize_word
from server.vectors import normalized
from server.wordspace import WordSpace

MAPPED_CACHE = 4096  # English words kept mapped for the next query (at 400 dims: ~7 MB)


@dataclass(frozen=True)
class BlendMap:
    """How a GloVe vector becomes a joint-space vector: the `k` caption words nearest to it in
    GloVe's space, weighted by softmax(similarity / temperature)."""

    k: int = 20
    temperature: float = 0.05


def blend(queries: np.ndarray, anchors: np.ndarray, targets: np.ndarray,
          how: BlendMap) -> np.ndarray:
    """Rows of `queries` (GloVe vectors) to the joint space: each the softmax-weighted mean of
    the `targets` (unit joint vectors) of its `how.k` most similar `anchors` (unit GloVe
    vectors of the same words)."""
    similarity = normalized(queries) @ anchors.T
    k = min(how.k, anchors.shape[0])
    top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    near = np.take_along_axis(similarity, top, axis=1)
    weights = np.exp((near - near.max(axis=1, keepdims=True)) / how.temperature)
    weights /= weights.sum(axis=1, keepdims=True)
    return normalized(np.einsum("nk,nkd->nd", weights, targets[top]))


class EnglishWords:
    """The general-English table, looked up by word, mapped into `word_space`'s joint space."""

    def __init__(self, words: list[str], vectors: np.ndarray, word_space: WordSpace,
                 how: BlendMap = BlendMap(), concepts: ConceptSpace | None = None):
        """`concepts`: the word space's concept dimensions, if it has them; a blend's are remade
        for the English word itself (its own concept weight, not its neighbours')."""
        if len(words) != len(vectors):
            raise ValueError(f"{len(words)} English words but {len(vectors)} vectors")
        self.words, self.vectors, self.how, self.concepts = words, vectors, how, concepts
        self.index = {word: row for row, word in enumerate(words)}  # row = frequency rank
        shared = [w for w in word_space.words if w in self.index]
        self._anchors = normalized(self.vectors[[self.index[w] for w in shared]])
        self._targets = normalized(word_space.matrix[[word_space.index[w] for w in shared]])
        self._mapped: dict[str, np.ndarray] = {}  # words mapped so far (a query's cost: ~0.1 ms)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return normalize_word(word) in self.index

    def joint_vector(self, word: str) -> np.ndarray:
        """The word's mapped vector (unit length); KeyError when English does not list it."""
        key = normalize_word(word)
        if key not in self.index:
            raise KeyError(f"{word!r} is not in the English vocabulary")
        if (known := self._mapped.get(key)) is not None:
            return known
        glove = np.asarray(self.vectors[self.index[key]], np.float32)[None]
        mapped = blend(glove, self._anchors, self._targets, self.how)[0]
        mapped = mapped if self.concepts is None else self.concepts.relift(mapped, key)
        if len(self._mapped) >= MAPPED_CACHE:
            self._mapped.clear()
        mapped.flags.writeable = False  # handed to every query that asks for the word
        self._mapped[key] = mapped
        return mapped

    @classmethod
    def load(cls, directory: Path, word_space: WordSpace) -> EnglishWords | None:
        """The table in a model folder, mapped as its manifest says; None when it has none."""
        directory = Path(directory)
        if not (directory / ENGLISH_WORDS_FILE).exists():
            return None
        how = BlendMap(**read_manifest(directory).get("english", {}).get("map", {}))
        return cls(*read_table(directory), word_space, how, ConceptSpace.load(directory))


def read_table(directory: Path) -> tuple[list[str], np.ndarray]:
    """A model folder's table: its words, most frequent first, and their vectors (mapped)."""
    words = (Path(directory) / ENGLISH_WORDS_FILE).read_text(encoding="utf-8").split("\n")
    return words, np.load(Path(directory) / ENGLISH_VECTORS_FILE, mmap_mode="r")


def save_table(directory: Path, words: list[str], vectors: np.ndarray) -> None:
    """Write a table (words most frequent first) into a model folder."""
    if any("\n" in w or not w for w in words):
        raise ValueError("an English word is empty or contains a newline")
    (Path(directory) / ENGLISH_WORDS_FILE).write_text("\n".join(words), encoding="utf-8")
    np.save(Path(directory) / ENGLISH_VECTORS_FILE, np.asarray(vectors, np.float16))


def joint_word(word: str, word_space: WordSpace, english: EnglishWords | None
               ) -> tuple[str, np.ndarray] | None:
    """(where its vector came from, its unit vector) for a word the way a query reads it: the
    captions' own word, else general English's; None for a word neither knows."""
    if word in word_space:
        return "captions", word_space.unit_vector(word)
    if english is not None and word in english:
        return "english", english.joint_vector(word)
    return None
