"""The hubness correction (server/serve/hubness.py) against a brute-force reference, and which
queries the retriever corrects."""

from __future__ import annotations

import numpy as np

from server.artifacts import DEFAULT_MODEL_DIR, load_word_space
from server.serve.gallery import Gallery, Item, write_generation
from server.serve.hubness import cached_hubness, correct, hubness
from server.serve.retrieval import Retriever
from server.serve.search import ExactSearch
from server.vectors import normalized


def test_hubness_is_the_mean_of_the_nearest_captions_cosines():
    rng = np.random.default_rng(0)
    images, bank = normalized(rng.normal(size=(30, 6))), normalized(rng.normal(size=(40, 6)))
    expected = [np.mean(sorted(image @ bank.T)[-5:]) for image in images]
    np.testing.assert_allclose(hubness(images, bank, k=5), expected, atol=1e-6)
    np.testing.assert_allclose(hubness(images, bank[:3], k=5),  # k beyond the bank: all of it
                               (images @ bank[:3].T).mean(axis=1), atol=1e-6)


def test_correction_reranks_by_score_less_hubness():
    rows = np.array([4, 1, 7])
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    values = np.zeros(10, np.float32)
    values[4] = 0.5  # a hub: close to every caption
    found, corrected = correct(rows, scores, values, beta=0.5)
    assert found.tolist() == [1, 7, 4]
    np.testing.assert_allclose(corrected, [0.8, 0.7, 0.65], atol=1e-6)


def test_hubness_is_kept_per_generation_and_bank(tmp_path):
    rng = np.random.default_rng(1)
    images, bank = normalized(rng.normal(size=(20, 4))), normalized(rng.normal(size=(60, 4)))
    first = cached_hubness(images, bank, tmp_path, "faiss-3")
    assert len(list(tmp_path.glob("hubness-faiss-3-*.npy"))) == 1
    np.testing.assert_array_equal(cached_hubness(images, bank, tmp_path, "faiss-3"), first)
    cached_hubness(images, bank[:30], tmp_path, "faiss-3")  # another model's bank
    assert len(list(tmp_path.glob("hubness-faiss-3-*.npy"))) == 2


def test_the_retriever_corrects_one_long_phrase_only(tmp_path):
    """Sentence queries are re-ranked (a hub drops); arithmetic and short queries are not."""
    words = load_word_space(DEFAULT_MODEL_DIR)
    query = words.word_vector("man") + words.word_vector("red") + words.word_vector("shirt")
    rng = np.random.default_rng(2)
    vectors = normalized(query[None, :] + 0.3 * rng.normal(size=(40, words.dim)))
    items = [Item(i + 1, i, f"{i}.jpg", 1, 0, "") for i in range(len(vectors))]
    write_generation(tmp_path, root=tmp_path, model_fingerprint="x", items=items,
                     vectors=vectors.astype(np.float32), skipped=[], next_id=len(items) + 1)
    gallery = Gallery(tmp_path)
    plain = Retriever(words, gallery, ExactSearch(gallery.vectors))
    top = plain.answer("man in a red shirt", k=5).hits[0].id
    values = np.zeros(len(vectors), np.float32)
    values[top - 1] = 1.0  # the best match made a hub
    corrected = Retriever(words, gallery, ExactSearch(gallery.vectors), hubness=values)
    assert top not in [r.id for r in corrected.answer("man in a red shirt", k=5).hits]
    for unchanged in ("man+red+shirt", "red shirt", f"[IMG_{top + 1}]+man red shirt"):
        assert ([r.id for r in corrected.answer(unchanged, k=5).hits]
                == [r.id for r in plain.answer(unchanged, k=5).hits])
