"""The concept prior's parts on small data: WordNet's noun file as written, class vectors by the
query's word path, the concept dimensions, and the network against a plain-loops reference
(server/learn/concepts.py, server/learn/wordnet.py, server/concept_space.py). The shipped
model's own file and graph: tests/unit/test_shipped_model.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from server.concept_space import ConceptSpace
from server.learn.concepts import (
    ConceptConfig,
    ImageSide,
    class_phrases,
    class_vectors,
    concept_basis,
    concept_words,
)
from server.learn.wordnet import DEBIAN_NOUNS, WordNet
from server.wordspace import WordSpace

# data.noun's layout (wndb(5WN)): offset lex_filenum ss_type w_cnt(hex) word lex_id ...
# p_cnt ptr... | gloss. Three synsets: tabby -> domestic cat -> cat (and an instance hypernym).
NOUNS = "\n".join([
    "  1 This software and database is being provided to you, the LICENSEE, by",
    "  2 Princeton University under the following license.",
    "02121620 05 n 02 cat 0 true_cat 0 001 ~ 02121808 n 0000 | feline mammal",
    "02121808 05 n 04 domestic_cat 0 house_cat 0 Felis_domesticus 0 Felis_catus 0 002 "
    "@ 02121620 n 0000 ~ 02123045 n 0000 | any domesticated member of the genus Felis",
    "02123045 05 n 02 tabby 1 tabby_cat 0 001 @ 02121808 n 0000 | a cat with a grey coat",
    "09999999 05 n 01 Tom(a) 0 001 @i 02123045 n 0000 | a cat of a cartoon",
    ""])


@pytest.fixture
def wordnet(tmp_path) -> WordNet:
    path = tmp_path / "data.noun"
    path.write_text(NOUNS)
    return WordNet(path)


def test_wordnet_reads_words_and_hypernyms(wordnet):
    tabby = wordnet["n02123045"]
    assert tabby.words == ("tabby", "tabby cat") and tabby.hypernyms == (2121808,)
    assert wordnet["02121808"].words[:2] == ("domestic cat", "house cat")
    assert wordnet["n09999999"].words == ("Tom",)  # "(a)" marks an adjective's position
    assert [[s.words[0] for s in level] for level in wordnet.ancestors("n09999999", 5)] == [
        ["tabby"], ["domestic cat"], ["cat"]]  # instance hypernyms count; the top ends it
    assert wordnet.descendants_of({2121620}, "n02123045")
    assert not wordnet.descendants_of({2123045}, "n02121620")
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        WordNet(DEBIAN_NOUNS.parent / "nowhere")


@pytest.mark.skipif(not DEBIAN_NOUNS.exists(), reason="no Debian wordnet-base")
def test_the_real_wordnet_knows_imagenet_classes():
    wordnet = WordNet()
    levels = [[w for s in level for w in s.words] for level in wordnet.ancestors("n02123045", 3)]
    assert "cat" in levels[1] and "feline" in levels[2]  # tabby -> domestic cat -> cat -> feline
    assert "dish" in wordnet.ancestors("n07873807", 1)[0][0].words  # pizza -> dish


def test_class_vectors_follow_the_query_word_path(wordnet):
    words = WordSpace(["tabby", "cat", "house", "true"],
                      np.array([[3, 0, 0], [0, 2, 0], [0, 0, 1], [1, 1, 0]], np.float32))
    phrases = class_phrases(wordnet, ["n02123045", "n09999999"], levels=2)
    assert phrases[0] == [["tabby", "tabby cat"],
                          ["domestic cat", "house cat", "Felis domesticus", "Felis catus"],
                          ["cat", "true cat"]]
    vectors = class_vectors(phrases, words, None, decay=0.5)
    unit = {w: words.word_vector(w) / np.linalg.norm(words.word_vector(w)) for w in words.words}

    def level(found: list[np.ndarray]) -> np.ndarray:
        mean = np.mean(found, axis=0)
        return mean / np.linalg.norm(mean)

    # a phrase is the mean of its known words' unit vectors; unknown words (felis) are left out
    expected = (level([unit["tabby"], (unit["tabby"] + unit["cat"]) / 2])
                + 0.5 * level([unit["cat"], unit["house"], unit["cat"], unit["cat"]])
                + 0.25 * level([unit["cat"], (unit["true"] + unit["cat"]) / 2]))
    np.testing.assert_allclose(vectors[0], expected / np.linalg.norm(expected), atol=1e-6)
    # Tom is known to nobody: the class starts from its ancestors
    assert np.linalg.norm(vectors[1]) == pytest.approx(1)


def reference(features: np.ndarray, head: nn.Module, classifier: nn.Linear,
              vectors: np.ndarray, basis: np.ndarray, config: ConceptConfig) -> np.ndarray:
    """The network in plain loops: the unit picture, then the weight times the basis's
    projection of the renormalized top-k classes' vectors, normalized together."""
    with torch.no_grad():
        pictures = head(torch.from_numpy(features)).numpy()
        logits = classifier(torch.from_numpy(features)).numpy() / config.concept_temperature
    out = []
    for picture, row in zip(pictures, logits, strict=True):
        probabilities = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
        top = sorted(range(len(row)), key=lambda c: -probabilities[c])[:config.concept_top_k]
        prior = sum(probabilities[c] * vectors[c] for c in top) / sum(probabilities[c]
                                                                        for c in top)
        total = np.concatenate([picture / np.linalg.norm(picture), config.concept_weight
                                * basis @ (prior / np.linalg.norm(prior))])
        out.append(total / np.linalg.norm(total))
    return np.array(out)


@pytest.mark.parametrize("config", [ConceptConfig(concept_top_k=3, concept_weight=0.5,
                                                  concept_rank=2),
                                    ConceptConfig(concept_top_k=1, concept_temperature=2.0,
                                                  concept_weight=2.0, concept_rank=3)])
def test_the_network_blends_as_the_reference_does(config):
    torch.manual_seed(0)
    head, classifier = nn.Linear(8, 4), nn.Linear(8, 10)
    vectors = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    basis = concept_basis(vectors, config.concept_rank)
    network = ImageSide(nn.Identity(), head, classifier, vectors, basis, config).eval()
    features = np.random.default_rng(1).normal(size=(6, 8)).astype(np.float32)
    with torch.no_grad():
        embedding, picture, classes = network(torch.from_numpy(features))
    assert embedding.shape == (6, 4 + config.concept_rank)
    np.testing.assert_allclose(embedding.numpy(), reference(features, head, classifier, vectors,
                                                            basis, config), atol=1e-5)
    np.testing.assert_allclose(classes.sum(1).numpy(), 1, atol=1e-5)
    np.testing.assert_allclose(torch.linalg.norm(picture, dim=1).numpy(), 1, atol=1e-5)
    no_prior = ImageSide(nn.Identity(), head, classifier, vectors, basis,
                         ConceptConfig(concept_rank=0)).eval()
    with torch.no_grad():
        torch.testing.assert_close(no_prior(torch.from_numpy(features))[0], picture)


def test_the_basis_spans_where_the_classes_vary_most():
    rng = np.random.default_rng(2)
    vectors = rng.normal(size=(50, 3)) @ np.diag([5, 2, 0.1]) @ np.linalg.qr(
        rng.normal(size=(3, 3)))[0]
    basis = concept_basis(vectors, 2)
    np.testing.assert_allclose(basis @ basis.T, np.eye(2), atol=1e-5)
    # the directions of the two largest singular values, whatever their sign
    _, _, expected = np.linalg.svd(vectors, full_matrices=False)
    np.testing.assert_allclose(np.abs(basis @ expected[:2].T), np.eye(2), atol=1e-4)
    np.testing.assert_array_equal(concept_basis(vectors, 2), basis)  # the same every time


def test_concept_words_are_the_one_word_names_at_or_above_the_classes(wordnet):
    assert concept_words(wordnet, ["n02123045"]) == {"tabby", "cat"}  # "tabby cat" is two
    assert "tom" in concept_words(wordnet, ["n09999999"])


def test_lifting_keeps_lengths_and_gives_concept_words_their_dimensions():
    basis = np.array([[1.0, 0.0, 0.0]], np.float32)
    space = ConceptSpace(basis, frozenset({"cat"}), other=0.25)
    words = WordSpace(["cat", "man"], np.array([[3, 4, 0], [0, 0, 2]], np.float32))
    lifted = space.lift_words(words)
    np.testing.assert_allclose(np.linalg.norm(lifted.matrix, axis=1), [5, 2], atol=1e-5)
    unit = np.array([0.6, 0.8, 0, 0.6]) / np.linalg.norm([0.6, 0.8, 0, 0.6])
    np.testing.assert_allclose(lifted.matrix[0], 5 * unit, atol=1e-5)  # weight 1: [x ; Bx]
    np.testing.assert_allclose(lifted.matrix[1], [0, 0, 2, 0], atol=1e-6)  # Bx = 0
    # a vector made for a word elsewhere (an English blend) gets that word's own dimensions
    np.testing.assert_allclose(space.relift(np.array([0.6, 0.8, 0, 0.9]), "cat"), unit,
                               atol=1e-6)
    other = space.relift(np.array([0.6, 0.8, 0, 0.9]), "dog")
    np.testing.assert_allclose(other[3] / other[0], 0.25, atol=1e-6)
