"""The word-query protocol of scripts/evaluate.py on hand-made records."""

from pathlib import Path

import numpy as np
import pytest

from server.datasets import CaptionedImage
from server.learn.evaluate import query_vectors, word_queries, word_query_report
from server.wordspace import WordSpace


@pytest.fixture
def records():
    captions = [
        ("A dog on the beach", "A brown dog"),
        ("A dog in snow",),
        ("Two children on the beach", "Kids and a dog"),
        ("A red car",),
    ]
    return [CaptionedImage(Path(f"{i}.jpg"), c) for i, c in enumerate(captions)]


@pytest.fixture
def words():
    return WordSpace(["dog", "beach", "snow", "car"], np.eye(4, 3, dtype=np.float32) * 2)


def test_queries_and_relevance(records, words):
    queries, relevant = word_queries(records, words, min_images=2, max_pairs=10)
    # single words: in the vocabulary and in captions of >= 2 images; pairs: in one caption
    assert queries == [("beach",), ("dog",), ("beach", "dog")]
    np.testing.assert_array_equal(relevant, [[1, 0, 1, 0], [1, 1, 1, 0], [1, 0, 0, 0]])


def test_query_vectors_sum_unit_word_vectors(words):
    vectors = query_vectors([("dog",), ("dog", "beach")], words.matrix, words.index)
    np.testing.assert_allclose(vectors, [[1, 0, 0], [1, 1, 0]])


def test_report_matches_brute_force():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(20, 4))
    queries = [("a",), ("b",), ("a", "b")]
    relevant = rng.random((3, 20)) < 0.4
    vectors = rng.normal(size=(3, 4))
    report = word_query_report(images, queries, relevant, vectors)
    top5 = [np.argsort(-(images @ v))[:5] for v in vectors]
    assert report["words_n"] == 2 and report["pairs_n"] == 1
    assert report["words_p5"] == pytest.approx(np.mean([relevant[i][top5[i]].mean()
                                                        for i in (0, 1)]))
    assert report["pairs_p5"] == pytest.approx(relevant[2][top5[2]].mean())
