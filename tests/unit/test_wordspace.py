import numpy as np
import pytest

from server.learn.word2vec import Word2VecConfig, train_word2vec
from server.wordspace import WordSpace, load_pretrained_glove


@pytest.fixture
def space():
    vectors = np.array([[1, 0, 0], [0, 2, 0], [0, 0, 4]], np.float32)
    return WordSpace(["dog", "beach", "snow"], vectors)


def test_mean_caption_vector(space):
    np.testing.assert_allclose(space.caption_vector("A dog on the beach"), [0.5, 1.0, 0.0])
    # repeated words count twice; unknown words are ignored
    np.testing.assert_allclose(space.caption_vector("dog dog zebra beach"), [2 / 3, 2 / 3, 0])


def test_tfidf_caption_vector(space):
    space.fit_idf(["dog beach", "dog snow", "dog"])
    idf = space.idf
    assert idf["dog"] < idf["beach"] == idf["snow"]
    got = space.caption_vector("dog beach", weighting="tfidf")
    expected = (idf["dog"] * np.array([1, 0, 0]) + idf["beach"] * np.array([0, 2, 0])) / (
        idf["dog"] + idf["beach"]
    )
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize("caption", ["", "   ", "the of a", "zebra unicorn", "!!!"])
@pytest.mark.parametrize("weighting", ["mean", "tfidf"])
def test_empty_or_unknown_caption_is_zero_not_nan(space, caption, weighting):
    space.fit_idf(["dog beach"])
    vector = space.caption_vector(caption, weighting)
    assert vector.shape == (3,) and not np.isnan(vector).any() and not vector.any()
    assert space.nearest_words(vector) == []


def test_tfidf_without_idf_and_bad_weighting_say_what_to_do(space):
    with pytest.raises(ValueError, match="fit_idf"):
        space.caption_vector("dog", "tfidf")
    with pytest.raises(ValueError, match="mean"):
        space.caption_vector("dog", "max")


def test_caption_matrix_and_word_lookup(space):
    matrix = space.caption_matrix(["dog", "snow", ""])
    np.testing.assert_allclose(matrix, [[1, 0, 0], [0, 0, 4], [0, 0, 0]])
    assert "Dog!" in space and "cat" not in space
    np.testing.assert_allclose(space.word_vector("#Beach"), [0, 2, 0])
    with pytest.raises(KeyError, match="cat"):
        space.word_vector("cat")


def test_save_and_load_keep_idf(space, tmp_path):
    space.fit_idf(["dog beach", "snow"])
    space.save(tmp_path / "space.npz")
    loaded = WordSpace.load(tmp_path / "space.npz")
    assert loaded.idf == pytest.approx(space.idf)
    assert loaded.words == space.words
    np.testing.assert_array_equal(loaded.matrix, space.matrix)
    # and the same vectors as gensim KeyedVectors, for that ecosystem's tools
    np.testing.assert_array_equal(loaded.keyed_vectors()["beach"], space.word_vector("beach"))


def test_word2vec_behind_the_same_interface():
    sentences = [["dog", "park", "ball"], ["cat", "sofa", "yarn"]] * 100
    kv = train_word2vec(sentences, Word2VecConfig(dim=8, epochs=5, min_count=1))
    space = WordSpace.from_keyed_vectors(kv)
    assert space.dim == 8 and "dog" in space
    assert space.caption_vector("dog in the park").shape == (8,)


def test_pretrained_glove_baseline_loads():
    english = load_pretrained_glove()
    assert len(english) == 400_000 and english.dim == 50
    dog = english.word_vector("dog") / np.linalg.norm(english.word_vector("dog"))
    def similarity(word):
        vector = english.word_vector(word)
        return float(dog @ vector / np.linalg.norm(vector))

    assert similarity("cat") > similarity("economy")
