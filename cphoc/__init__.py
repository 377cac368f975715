"""PHOC descriptors (pyramidal histograms of characters) computed by a small C extension.

A PHOC says which characters and common bigrams occur in which part of a word (halves, thirds,
quarters, fifths), so words spelled alike get vectors with a high cosine similarity. The layout
is that of Lluis Gomez's cphoc, 604 dimensions; see cphoc/README.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

try:
    import cphoc._cphoc as _cphoc
except ImportError as error:  # pragma: no cover - only without a build
    raise ImportError(
        "cphoc's C extension is not built: run `pip install -e .` at the repository root"
    ) from error

PHOC_DIM: int = _cphoc.PHOC_DIM
"""604: 36 unigrams x (2 + 3 + 4 + 5) regions, then 50 bigrams x 2 regions."""
UNIGRAMS: str = _cphoc.UNIGRAMS
"""The alphabet, in dimension order: "a".."z" then "0".."9"."""
BIGRAMS: tuple[str, ...] = _cphoc.BIGRAMS
"""The 50 most common English bigrams, in dimension order."""
UNIGRAM_LEVELS: tuple[int, ...] = _cphoc.UNIGRAM_LEVELS
"""(2, 3, 4, 5): the word is split into halves, thirds, quarters and fifths."""
BIGRAM_LEVELS: tuple[int, ...] = _cphoc.BIGRAM_LEVELS
"""(2,): bigrams are placed in halves only."""

__all__ = ["BIGRAMS", "BIGRAM_LEVELS", "PHOC_DIM", "UNIGRAMS", "UNIGRAM_LEVELS", "phoc"]


def phoc(words: str | Sequence[str]) -> np.ndarray:
    """PHOC of one word, shape (604,), or of a sequence of words, shape (n, 604); float32 0/1.

    ASCII capitals count as lower case; any other character outside the alphabet still takes
    its position in the word but sets nothing. The arrays are writable views of buffers the C
    code filled (no copy).
    """
    if isinstance(words, str):
        return np.frombuffer(_cphoc.build_phoc(words), dtype=np.float32)
    return np.frombuffer(_cphoc.build_phocs(words), dtype=np.float32).reshape(-1, PHOC_DIM)
