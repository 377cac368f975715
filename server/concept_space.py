"""The concept dimensions of the search space: what the backbone's ImageNet classes add.

An image's embedding is its picture vector (the joint space's `d` dimensions) followed by `r`
concept dimensions: the concept prior of its top ImageNet classes (server/learn/concepts.py),
projected onto the `r` directions in which the classes' vectors vary most (`basis`), times a
weight. A word enters the same space as its joint vector followed by that vector's projection,
times the word's own weight: 1 for a word that names a WordNet synset at or above an ImageNet
class (`cat`, `feline`, `dish`, `pizza`), `other` (0 by default) for any other word (`man`,
`running`). So `feline` meets the photos the classifier calls tabby, Persian or lion in the
concept dimensions, while `man in a red shirt` is ranked by the picture dimensions as before.
The classes' knowledge reaches queries that name what ImageNet knows, and only those: one
blended vector for all queries had to trade Flickr8k's sentences against concepts
(docs/concepts.md).

Both sides are linear, so query arithmetic stays exact; a phrase or a caption is the mean of
its words' lifted vectors. Lifting keeps a word vector's length (a caption weighs its words as
before). The model folder's `concepts.npz` holds the basis, the concept words and `other`;
a model without it has no concept dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from server.artifacts import CONCEPTS_FILE
from server.vectors import normalized
from server.wordspace import WordSpace


@dataclass(frozen=True)
class ConceptSpace:
    basis: np.ndarray  # (r, d): orthonormal rows in the joint space
    words: frozenset[str]  # words that name what an ImageNet class is (or is a kind of)
    other: float = 0.0  # the concept weight of any other word

    @property
    def rank(self) -> int:
        return int(self.basis.shape[0])

    def weight(self, word: str) -> float:
        return 1.0 if word in self.words else self.other

    def lift(self, vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Rows of the joint space (n, d) into the search space (n, d + r), each row keeping
        its length: [x ; w B x], rescaled to |x|."""
        vectors = np.asarray(vectors, np.float32)
        lengths = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = vectors / np.maximum(lengths, 1e-12)
        concept = np.asarray(weights, np.float32)[:, None] * (unit @ self.basis.T)
        return normalized(np.hstack([unit, concept])) * lengths

    def lift_words(self, word_space: WordSpace) -> WordSpace:
        """The vocabulary in the search space, each word by its own weight."""
        weights = np.array([self.weight(w) for w in word_space.words], np.float32)
        return WordSpace(word_space.words, self.lift(word_space.matrix, weights),
                         word_space.idf)

    def relift(self, vector: np.ndarray, word: str) -> np.ndarray:
        """A search-space vector made for `word` (a blend of other words', say) with its concept
        dimensions remade from its joint part by the word's own weight: a unit vector."""
        joint = np.asarray(vector, np.float32)[None, : self.basis.shape[1]]
        return normalized(self.lift(joint, np.array([self.weight(word)]))[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """What `load` reads, as arrays for `np.savez` (beside the classes' own arrays)."""
        return {"basis": self.basis.astype(np.float32), "concept_words": np.array(
            sorted(self.words)), "other": np.array(self.other, np.float32)}

    @classmethod
    def load(cls, directory: Path) -> ConceptSpace | None:
        """The concept space of a model folder; None for a model without one."""
        path = Path(directory) / CONCEPTS_FILE
        if not path.exists():
            return None
        with np.load(path) as data:
            if "basis" not in data or data["basis"].shape[0] == 0:
                return None
            return cls(data["basis"], frozenset(data["concept_words"].tolist()),
                       float(data["other"]))
