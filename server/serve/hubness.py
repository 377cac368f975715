"""Hubness correction for sentence queries: images close to every caption rank a little lower.

In a space learned from few photos, some images (hubs) lie close to most texts and fill the top
of any long query's results. The correction (cross-domain similarity local scaling, the image
side: Conneau et al. 2018) scores an image by its cosine minus `beta` times its *hubness*: the
mean cosine of its `k` nearest captions among a bank of training captions (`caption-bank.npy`
in the model folder: vectors only, 5,000 captions of Flickr8k's training split, made at
export). Measured on Flickr8k's dev split it raises text->image R@1 and lowers one- and two-word
queries' P@5 (docs/concepts.md), so the server applies it to queries of SENTENCE_WORDS words or
more only, re-ranking the best HUB_CANDIDATES by cosine.

An image's hubness depends on its vector and the bank alone: it is computed once per gallery
generation and model (a few seconds for 10,000 images) and kept beside the generation.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from server.artifacts import BANK_FILE

log = logging.getLogger("wordpix.server")

BETA = 0.5  # chosen on Flickr8k dev (docs/concepts.md)
NEIGHBOURS = 50  # captions of the bank an image's hubness is the mean cosine of
SENTENCE_WORDS = 3  # a query of this many words or more is corrected
HUB_CANDIDATES = 100  # the best by cosine that are re-ranked
CHUNK = 2048  # images scored against the bank at a time


def load_bank(model_dir: Path) -> np.ndarray | None:
    """The model's caption bank (unit rows of the search space), or None where it has none."""
    path = Path(model_dir) / BANK_FILE
    return np.load(path).astype(np.float32) if path.exists() else None


def hubness(vectors: np.ndarray, bank: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """Each row's mean cosine to its `k` nearest rows of `bank` (both unit rows)."""
    out = np.empty(len(vectors), np.float32)
    k = min(k, len(bank))
    for start in range(0, len(vectors), CHUNK):
        scores = np.asarray(vectors[start : start + CHUNK], np.float32) @ bank.T
        out[start : start + CHUNK] = np.partition(scores, -k, axis=1)[:, -k:].mean(axis=1)
    return out


def cached_hubness(vectors: np.ndarray, bank: np.ndarray, folder: Path, tag: str) -> np.ndarray:
    """`hubness`, kept in `folder` under a name of `tag` (the generation and the vectors' kind)
    and the bank's digest: a new generation, or another model's bank, computes it anew."""
    digest = hashlib.sha256(bank.tobytes()).hexdigest()[:12]
    path = Path(folder) / f"hubness-{tag}-{digest}.npy"
    if path.exists():
        found = np.load(path)
        if len(found) == len(vectors):
            return found
    log.info("computing the hubness of %d images (once per gallery generation)", len(vectors))
    values = hubness(vectors, bank)
    tmp = path.with_suffix(".tmp.npy")
    try:
        np.save(tmp, values)
        tmp.replace(path)
    except OSError as error:  # a read-only index: computed again at the next start
        log.warning("cannot keep the hubness in %s: %s", folder, error.strerror or error)
    return values


def correct(rows: np.ndarray, scores: np.ndarray, values: np.ndarray, beta: float = BETA
            ) -> tuple[np.ndarray, np.ndarray]:
    """Candidates re-ranked by score - beta * hubness: (rows, corrected scores), best first."""
    corrected = scores - beta * values[rows]
    order = np.argsort(-corrected, kind="stable")
    return rows[order], corrected[order]
