"""The model committed in models/ loads with the installed packages alone, embeds real images,
and its concept prior's files are its own."""

import dataclasses
import json
import shutil

import numpy as np
import pytest
import skimage.data
from PIL import Image

from server.artifacts import (
    DEFAULT_MODEL_DIR,
    ENCODER_FILE,
    HEAD_FILE,
    MANIFEST_FILE,
    MAP_WORDS_FILE,
    WORDS_FILE,
    load_word_space,
)
from server.english import EnglishWords, read_table
from server.images import to_array
from server.learn.map_labels import WORDNET, describing_words, export_map_words
from server.serve.encoder import ImageEncoder
from server.wordspace import WordSpace

KB = 1024


def test_shipped_model_is_small_and_described():
    files = {p.name: p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir() if p.is_file()}
    assert {WORDS_FILE, HEAD_FILE, ENCODER_FILE, MANIFEST_FILE} <= set(files)
    assert max(files.values()) <= 25 * KB * KB  # what a git host takes without LFS
    manifest = json.loads((DEFAULT_MODEL_DIR / MANIFEST_FILE).read_text())
    assert {"data", "model", "train", "code_version", "dev_metrics"} <= set(manifest)


def test_shipped_model_embeds_real_photos_into_the_word_space():
    encoder = ImageEncoder()
    words = load_word_space()
    photos = [Image.fromarray(skimage.data.chelsea()), Image.fromarray(skimage.data.coffee())]
    vectors = encoder.embed(photos)
    assert vectors.shape == (2, words.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, rtol=1e-5)
    assert len(words) > 3000 and "dog" in words
    # the cat photo is nearer "cat" than "bicycle"; the coffee cup nearer "cup" than "snow"
    def similarity(row, word):
        unit = words.word_vector(word) / np.linalg.norm(words.word_vector(word))
        return float(vectors[row] @ unit)

    assert similarity(0, "cat") > similarity(0, "bicycle")
    assert similarity(1, "cup") > similarity(1, "snow")


def test_the_class_vectors_file_matches_the_model_it_was_exported_with():
    """concepts.npz holds what the concept prior's words give in this model's word space, its
    basis is theirs, and its concept words are WordNet's names at or above the classes."""
    from server.learn.concepts import Concepts, class_vectors, concept_basis, concept_words
    from server.learn.export import concept_config
    from server.learn.wordnet import DEBIAN_NOUNS, WordNet

    concepts, config = Concepts.load(DEFAULT_MODEL_DIR), concept_config(DEFAULT_MODEL_DIR)
    joint = WordSpace.load(DEFAULT_MODEL_DIR / WORDS_FILE)  # not lifted
    english = EnglishWords(*read_table(DEFAULT_MODEL_DIR), joint)
    assert len(concepts.wnids) == 1000 and concepts.vectors.shape == (1000, joint.dim)
    np.testing.assert_allclose(concepts.vectors, class_vectors(
        concepts.phrases, joint, english, config.concept_decay), atol=1e-5)
    np.testing.assert_allclose(concepts.space.basis,
                               concept_basis(concepts.vectors, config.concept_rank), atol=1e-5)
    if DEBIAN_NOUNS.exists():
        assert concepts.space.words == concept_words(WordNet(), concepts.wnids)
    assert {"cat", "feline", "dish", "pizza", "dog"} <= concepts.space.words
    assert not {"man", "running", "grass"} & concepts.space.words


def test_the_graph_blends_the_prior_of_the_files_classes():
    """The graph's embedding is [picture ; weight * basis @ prior], the prior made of its own
    classes output and concepts.npz's vectors: the file is the graph's."""
    from server.learn.concepts import Concepts, prior_embedding
    from server.learn.export import concept_config

    concepts, config = Concepts.load(DEFAULT_MODEL_DIR), concept_config(DEFAULT_MODEL_DIR)
    encoder = ImageEncoder()
    photos = [Image.fromarray(p) for p in (skimage.data.chelsea(), skimage.data.coffee(),
                                           skimage.data.rocket())]
    inputs = np.stack([to_array(photo, encoder.image_size) for photo in photos])
    embedding, picture, classes = encoder.run(inputs, "embedding", "picture", "classes")
    expected = prior_embedding(picture, classes, concepts.vectors, concepts.space.basis,
                               config, config.concept_temperature)
    np.testing.assert_allclose(embedding, expected, atol=1e-4)
    # the same blend at another temperature is the graph's softmax at it, top classes and all
    hotter = dataclasses.replace(config, concept_temperature=2 * config.concept_temperature)
    again = prior_embedding(picture, classes ** 0.5 / (classes ** 0.5).sum(1, keepdims=True),
                            concepts.vectors, concepts.space.basis, hotter,
                            hotter.concept_temperature)
    np.testing.assert_allclose(prior_embedding(picture, classes, concepts.vectors,
                                               concepts.space.basis, hotter,
                                               config.concept_temperature), again, atol=1e-5)
    assert not np.allclose(again, embedding, atol=1e-3)
    manifest = json.loads((DEFAULT_MODEL_DIR / MANIFEST_FILE).read_text())
    assert manifest["concepts"]["concept_rank"] == concepts.space.rank
    assert {"t2i_r1", "words_p5", "pairs_p5"} <= set(manifest["dev_served"])


@pytest.mark.skipif(not WORDNET.is_dir(), reason="needs Debian's wordnet-base")
def test_the_map_words_file_is_the_one_its_words_give(tmp_path):
    """models/map-words.txt is what `export_map_words` writes from the shipped words, and the
    word space loads it; a model without the file labels its maps with any word."""
    shipped = load_word_space()
    assert shipped.describing is not None
    assert shipped.describing == frozenset(describing_words(shipped.words))
    assert "wearing" in shipped.words and "wearing" not in shipped.describing
    for name in (MANIFEST_FILE, WORDS_FILE):
        shutil.copy(DEFAULT_MODEL_DIR / name, tmp_path / name)
    assert load_word_space(tmp_path).describing is None
    assert export_map_words(tmp_path) == len(shipped.describing)
    assert (tmp_path / MAP_WORDS_FILE).read_text() == (DEFAULT_MODEL_DIR / MAP_WORDS_FILE
                                                       ).read_text()
    assert load_word_space(tmp_path).describing == shipped.describing
