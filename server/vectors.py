"""Vector helpers shared by training and serving: unit rows and top-k columns."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k largest scores of each row, best first, equal scores in column
    order (which of several equal to the k-th largest are kept is argpartition's choice)."""
    columns = scores.shape[1]
    k = min(k, columns)
    if k <= 0:
        return np.zeros((len(scores), 0), np.int64)
    # the last k after partitioning: -scores would be one more pass over a batch's scores
    # (docs/server.md, Speed)
    top = np.argpartition(scores, columns - k, axis=1)[:, columns - k:] if k < columns else \
        np.broadcast_to(np.arange(columns), scores.shape)
    order = np.lexsort((top, -np.take_along_axis(scores, top, axis=1)), axis=1)
    return np.take_along_axis(top, order, axis=1)


def normalized(vectors: npt.ArrayLike) -> np.ndarray:
    """Rows (or one vector) scaled to unit length, as float32; all-zero ones stay zero."""
    vectors = np.asarray(vectors, np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
