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
                     penalized: np.ndarray | None = None) -> dict[str, float]:
    """R@1/5/10 and median rank both ways, from L2-normalized vectors; with `image_penalty`,
    each image's score for the `penalized` captions (bool per caption) lowered by it, as the
    server's hubness correction scores sentence queries (it orders no image's captions)."""
    similarity = caption_vectors @ image_vectors.T
    if image_penalty is not None and penalized is not None:
        similarity[penalized] -= image_penalty[None, :]
    t2i = text_to_image_ranks(similarity, caption_image)
    i2t = image_to_text_ranks(similarity.T, caption_image)
    report = {}
    for name, ranks in (("t2i", t2i), ("i2t", i2t)):
        for k in (1, 5, 10):
            report[f"{name}_r{k}"] = recall_at(ranks, k)
        report[f"{name}_medr"] = float(np.median(ranks))
    return report


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
