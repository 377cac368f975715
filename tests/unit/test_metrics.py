"""Metric code against brute-force references on small random inputs."""

import numpy as np
import pytest

from server.learn.metrics import (
    average_precision,
    hubness_ranked,
    image_to_text_ranks,
    precision_at_k,
    recall_at,
    retrieval_report,
    text_to_image_ranks,
)
from server.serve.hubness import correct


def brute_t2i(sim, caption_image):
    # pessimistic ties: every image scoring at least as high as the right one is ahead of it
    return np.array([
        sum(1 for i in range(sim.shape[1]) if sim[c, i] >= sim[c, caption_image[c]])
        for c in range(sim.shape[0])
    ])


def brute_i2t(sim, caption_image):
    ranks = []
    for i in range(sim.shape[0]):
        order = sorted(range(sim.shape[1]), key=lambda c: -sim[i, c])
        ranks.append(min(order.index(c) + 1 for c in range(sim.shape[1]) if caption_image[c] == i))
    return np.array(ranks)


@pytest.mark.parametrize("seed", range(5))
def test_ranks_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    caption_image = np.repeat(np.arange(7), 5)
    sim = rng.normal(size=(35, 7))
    np.testing.assert_array_equal(text_to_image_ranks(sim, caption_image),
                                  brute_t2i(sim, caption_image))
    np.testing.assert_array_equal(image_to_text_ranks(sim.T, caption_image),
                                  brute_i2t(sim.T, caption_image))


def test_ties_are_pessimistic():
    sim = np.zeros((4, 4))
    assert (text_to_image_ranks(sim, np.arange(4)) == 4).all()


def test_perfect_and_report():
    rng = np.random.default_rng(0)
    images = np.eye(6)
    caption_image = np.repeat(np.arange(6), 5)
    captions = images[caption_image] + 0.01 * rng.normal(size=(30, 6))
    captions /= np.linalg.norm(captions, axis=1, keepdims=True)
    report = retrieval_report(images, captions, caption_image)
    assert report["t2i_r1"] == report["i2t_r1"] == 100.0
    assert report["t2i_medr"] == report["i2t_medr"] == 1.0
    assert recall_at(np.array([1, 2, 6, 11]), 5) == 50.0


def brute_ap(scores, relevant):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    hits, total = 0, 0.0
    for rank, item in enumerate(order, 1):
        if relevant[item]:
            hits += 1
            total += hits / rank
    return total / max(1, sum(relevant))


@pytest.mark.parametrize("seed", range(5))
def test_precision_and_ap_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=50)
    relevant = rng.random(50) < 0.3
    order = sorted(range(50), key=lambda i: -scores[i])
    assert precision_at_k(scores, relevant, 5) == pytest.approx(np.mean(relevant[order[:5]]))
    assert average_precision(scores, relevant) == pytest.approx(brute_ap(scores, relevant))
    assert average_precision(scores, np.zeros(50, bool)) == 0.0


@pytest.mark.parametrize("seed", range(3))
def test_hubness_ranking_is_the_servers(seed):
    """A penalized caption orders images as the server's correction of its best candidates
    does (then the rest by cosine); image->text ignores the penalty."""
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(12, 5))
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    captions = rng.normal(size=(24, 5))
    captions /= np.linalg.norm(captions, axis=1, keepdims=True)
    penalty, penalized = rng.random(12) * 0.5, np.arange(24) % 2 == 0
    ranked = hubness_ranked(captions @ images.T, penalty, penalized, candidates=4)
    for c, scores in enumerate(captions @ images.T):
        best = np.argsort(-scores)[:4]
        expected = (correct(best, scores[best], penalty, beta=1.0)[0].tolist()
                    + np.argsort(-scores)[4:].tolist()) if penalized[c] else np.argsort(
                        -scores).tolist()
        assert np.argsort(-ranked[c]).tolist() == expected
    caption_image = np.arange(24) % 12
    plain = retrieval_report(images, captions, caption_image)
    corrected = retrieval_report(images, captions, caption_image, penalty, penalized, 4)
    assert {k: v for k, v in corrected.items() if k.startswith("i2t")} == {
        k: v for k, v in plain.items() if k.startswith("i2t")}
