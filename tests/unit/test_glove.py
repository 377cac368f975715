import itertools
import random

import numpy as np
import pytest
from gensim.models import KeyedVectors

from server.learn.glove import GloveConfig, cooccurrence, train_glove


def brute_force_cooccurrence(sentences, vocab_size, window):
    counts = np.zeros((vocab_size, vocab_size))
    for sentence in sentences:
        words = [w for w in sentence if w >= 0]
        for a in range(len(words)):
            for b in range(a + 1, min(len(words), a + window + 1)):
                counts[words[a], words[b]] += 1.0 / (b - a)
                counts[words[b], words[a]] += 1.0 / (b - a)
    return counts


def test_cooccurrence_matches_brute_force():
    rng = random.Random(0)
    sentences = [[rng.randrange(-1, 6) for _ in range(rng.randrange(0, 15))] for _ in range(50)]
    got = cooccurrence(sentences, 6, window=3).toarray()
    np.testing.assert_allclose(got, brute_force_cooccurrence(sentences, 6, 3))
    assert np.allclose(got, got.T)


def test_cooccurrence_windows_stop_at_sentence_ends_and_skip_oov():
    got = cooccurrence([[0, -1, 1], [2]], 3, window=1).toarray()
    # the unknown word is removed before counting, so 0 and 1 become neighbours; 2 is alone
    assert got[0, 1] == got[1, 0] == 1.0
    assert got[1, 2] == 0 and got[2].sum() == 0


TOPICS = {
    "animals": ["cat", "dog", "kitten", "puppy", "fur", "paw"],
    "vehicles": ["car", "truck", "wheel", "engine", "road", "driver"],
    "kitchen": ["pan", "stove", "soup", "spoon", "knife", "chef"],
}


def planted_corpus(n_sentences=1500, seed=0):
    rng = random.Random(seed)
    names = list(TOPICS)
    return [rng.sample(TOPICS[rng.choice(names)], 4) for _ in range(n_sentences)]


@pytest.fixture(scope="module")
def planted():
    config = GloveConfig(dim=16, iterations=60, min_count=1, x_max=10, batch_size=512)
    return train_glove(planted_corpus(), config, progress=False)


def test_glove_recovers_planted_topics(planted):
    kv = planted.vectors
    assert len(kv) == 18 and kv.vector_size == 16
    for words in TOPICS.values():
        for word in words:
            neighbours = [w for w, _ in kv.most_similar(word, topn=3)]
            assert set(neighbours) <= set(words), (word, neighbours)


def test_glove_cost_falls(planted):
    costs = planted.costs
    assert len(costs) == 60
    assert costs[-1] < 0.2 * costs[0]
    assert all(b <= a * 1.05 for a, b in itertools.pairwise(costs))


def test_glove_is_reproducible():
    config = GloveConfig(dim=8, iterations=5, min_count=1, batch_size=256, seed=3)
    a = train_glove(planted_corpus(300), config, progress=False)
    b = train_glove(planted_corpus(300), config, progress=False)
    np.testing.assert_array_equal(a.vectors.vectors, b.vectors.vectors)
    c = train_glove(planted_corpus(300), GloveConfig(**{**config.__dict__, "seed": 4}),
                    progress=False)
    assert not np.array_equal(a.vectors.vectors, c.vectors.vectors)


def test_exported_vectors_load_with_plain_gensim(planted, tmp_path):
    text = tmp_path / "vectors.txt"
    planted.vectors.save_word2vec_format(str(text), binary=False)
    loaded = KeyedVectors.load_word2vec_format(str(text), binary=False)
    assert loaded.index_to_key == planted.vectors.index_to_key
    np.testing.assert_allclose(loaded["dog"], planted.vectors["dog"], atol=1e-5)
    native = tmp_path / "vectors.kv"
    planted.vectors.save(str(native))
    assert KeyedVectors.load(str(native)).get_vecattr("dog", "count") == \
        planted.vectors.get_vecattr("dog", "count")


def test_too_small_corpus_says_why():
    with pytest.raises(ValueError, match="min_count"):
        train_glove([["one"]], GloveConfig(min_count=2), progress=False)
    with pytest.raises(ValueError, match="co-occur"):
        train_glove([["one"], ["two"]], GloveConfig(min_count=1), progress=False)
