"""Retrieval metrics: the standard Flickr8k protocol and precision for word queries.

Ranks are 1-based. Ties are broken pessimistically (an item scored equal to the right one is
counted as ahead of it), so a constant scorer cannot look good.
"""

from __future__ import annotations

import numpy as np


def text_to_image_ranks(similarity: np.ndarray, caption_image: np.ndarray) -> np.ndarray:
    """similarity: (captions, images); caption_image[c] = index of caption c's image.

    Returns, per caption, the rank of its own image among all images.
    """
    rows = np.arange(similarity.shape[0])
    correct = similarity[rows, caption_image]
    return (similarity >= correct[:, None]).sum(1)


def image_to_text_ranks(similarity: np.ndarray, caption_image: np.ndarray) -> np.ndarray:
    """similarity: (images, captions). Returns, per image, the best rank of any of its captions."""
    ranks = np.empty(similarity.shape[0], dtype=np.int64)
    for image, scores in enumerate(similarity):
        own = scores[caption_image == image]
        ranks[image] = (scores[None, :] >= own[:, None]).sum(1).min()
    return ranks


def recall_at(ranks: np.ndarray, k: int) -> float:
    """Percentage of queries whose right answer is in the top k."""
    return float(100.0 * np.mean(ranks <= k))


def retrieval_report(image_vectors: np.ndarray, caption_vectors: np.ndarray,
                     caption_image: np.ndarray, image_penalty: np.ndarray | None = None,
                     penalized: np.ndarray | None = None, candidates: int | None = None
                     ) -> dict[str, float]:
    """R@1/5/10 and median rank both ways, from L2-normalized vectors. With `image_penalty`,
    the `penalized` captions (bool per caption) rank images as the server's hubness correction
    ranks sentence queries (`hubness_ranked`); image->text is the plain cosine either way (the
    server orders no image's captions)."""
    similarity = caption_vectors @ image_vectors.T
    ranked = similarity
    if image_penalty is not None and penalized is not None:
        ranked = hubness_ranked(similarity, image_penalty, penalized,
                                candidates or similarity.shape[1])
    t2i = text_to_image_ranks(ranked, caption_image)
    i2t = image_to_text_ranks(similarity.T, caption_image)
    report = {}
    for name, ranks in (("t2i", t2i), ("i2t", i2t)):
        for k in (1, 5, 10):
            report[f"{name}_r{k}"] = recall_at(ranks, k)
        report[f"{name}_medr"] = float(np.median(ranks))
    return report


def hubness_ranked(similarity: np.ndarray, image_penalty: np.ndarray, penalized: np.ndarray,
                   candidates: int) -> np.ndarray:
    """Query-by-image scores whose order is the server's for the `penalized` rows: their best
    `candidates` images by cosine, re-ranked by cosine minus the image's penalty, ahead of all
    others, which keep their cosine order."""
    ranked = similarity.copy()
    rows = np.flatnonzero(penalized)
    scores = similarity[rows]
    candidates = min(candidates, scores.shape[1])
    best = np.argpartition(-scores, candidates - 1, axis=1)[:, :candidates]
    # cosines lie in [-1, 1] and penalties below 1: +4 puts every candidate above the rest
    lifted = np.take_along_axis(scores, best, axis=1) - image_penalty[best] + 4.0
    np.put_along_axis(scores, best, lifted, axis=1)
    ranked[rows] = scores
    return ranked


def precision_at_k(scores: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Fraction of the k best-scored items that are relevant."""
    top = np.argsort(-scores, kind="stable")[:k]
    return float(relevant[top].mean())


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Mean of precision at each relevant item's rank (0 when nothing is relevant)."""
    if not relevant.any():
        return 0.0
    hits = relevant[np.argsort(-scores, kind="stable")]
    precision = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float(precision[hits].mean())
