"""Near-duplicate photos: an appearance vector per image, made at indexing, and groups of them.

The joint space cannot tell copies from look-alikes: it places a photo and its resized copy at
cosine 0.58 now and then, and two different photos of dogs on grass above 0.95
(docs/gallery-index.md, "Near duplicates"). What is near-identical is how a photo looks, so each
image also gets an appearance vector, from the same decoding and the same network run:
- its colour layout: the picture shrunk to 6 x 6 (box filter), each channel less its mean,
  unit length: survives resizing, recompression and brightness, not a shift;
- what the ImageNet classifier sees: the graph's `classes` output, as log-probabilities less
  their mean, projected onto 64 principal components fitted on training photos, unit length:
  survives crops and shifts (burst shots), not heavy blur;
each half scaled by 1/sqrt(2), so the cosine of two appearance vectors is the mean of the two
cosines. `python -m scripts.calibrate_duplicates --write` fits the components and chooses the
threshold on planted copies of dev photos (models/duplicates.npz).

Groups are the connected components of "cosine at or above the threshold" among each image's
nearest neighbours (`make_search`: exact up to 200,000 images, faiss beyond), never an
all-pairs loop.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from server.images import LAYOUT_DIM
from server.serve.search import EXACT_UP_TO, make_search
from server.vectors import normalized

DUPLICATES_FILE = "duplicates.npz"  # in the model folder
CLASS_COMPONENTS = 64
APPEARANCE_DIM = CLASS_COMPONENTS + LAYOUT_DIM
NEIGHBOURS = 16  # looked at per image: a burst longer than this still chains into one group
QUERY_CHUNK = 2048  # images whose neighbours are searched at once: memory stays a few MB


class DuplicateModel(NamedTuple):
    """The appearance's class projection and the grouping threshold (models/duplicates.npz)."""

    mean: np.ndarray  # (1000,) of the centred log-probabilities the components were fitted on
    components: np.ndarray  # (1000, CLASS_COMPONENTS)
    threshold: float  # appearance cosine at or above which two photos are near duplicates
    fingerprint: str  # of the file: an index made with other components is made again

    @classmethod
    def load(cls, model_dir: Path) -> DuplicateModel:
        path = Path(model_dir) / DUPLICATES_FILE
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is missing: make it with `python -m scripts.calibrate_duplicates "
                "--write` (the shipped model has it)")
        with np.load(path) as saved:
            fields = {name: saved[name] for name in ("mean", "components", "threshold")}
        return cls(fields["mean"].astype(np.float32), fields["components"].astype(np.float32),
                   float(fields["threshold"]),
                   hashlib.sha256(path.read_bytes()).hexdigest()[:16])

    @property
    def settings(self) -> dict:
        """What an index records of it: which model made its appearances, and the threshold
        its groups are made with."""
        return {"model": self.fingerprint, "threshold": round(self.threshold, 4)}

    def appearance(self, classes: np.ndarray, layouts: np.ndarray) -> np.ndarray:
        """(n, APPEARANCE_DIM) unit rows from the graph's class probabilities (n, 1000) and the
        images' colour layouts (n, LAYOUT_DIM)."""
        projected = normalized(centred_log(classes) - self.mean) @ self.components
        half = np.float32(np.sqrt(0.5))
        return np.hstack([normalized(projected) * half,
                          np.asarray(layouts, np.float32) * half]).astype(np.float32)


def centred_log(classes: np.ndarray) -> np.ndarray:
    """Class probabilities as log-probabilities less each row's mean (floored at 1e-6: the
    classifier's long tail is noise)."""
    logs = np.log(np.clip(np.asarray(classes, np.float32), 1e-6, None))
    return logs - logs.mean(axis=1, keepdims=True)


def fit_components(classes: np.ndarray, count: int = CLASS_COMPONENTS
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The mean and the first `count` principal directions of photos' centred log classes."""
    rows = normalized(centred_log(classes))
    mean = rows.mean(axis=0)
    _, _, directions = np.linalg.svd(rows - mean, full_matrices=False)
    return mean.astype(np.float32), directions[:count].T.astype(np.float32)


def near_pairs(appearances: np.ndarray, threshold: float, neighbours: int = NEIGHBOURS
               ) -> tuple[np.ndarray, np.ndarray]:
    """(m, 2) row pairs (i < j) whose appearance cosine is at least `threshold`, among each
    image's `neighbours` nearest, and their cosines (m,)."""
    count = len(appearances)
    if count < 2:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.float32)
    # exact, then faiss IVF at any size: the compressed search needs a file, and appearance
    # vectors are a fifth of an embedding's size
    search = make_search(np.ascontiguousarray(appearances, np.float32),
                         "exact" if count <= EXACT_UP_TO else "faiss")
    k = min(neighbours + 1, count)
    found: dict[tuple[int, int], float] = {}
    for start in range(0, count, QUERY_CHUNK):
        rows = np.arange(start, min(start + QUERY_CHUNK, count))
        hits = search.search_many(np.asarray(appearances[rows], np.float32), k,
                                  [[int(row)] for row in rows])
        for row, hit in zip(rows, hits, strict=True):
            close = hit.scores >= threshold
            for other, score in zip(hit.rows[close].tolist(), hit.scores[close].tolist(),
                                    strict=True):
                found[(min(int(row), other), max(int(row), other))] = score
    pairs = np.array(sorted(found), np.int64).reshape(-1, 2)
    return pairs, np.array([found[(a, b)] for a, b in pairs.tolist()], np.float32)


def groups(count: int, pairs: np.ndarray) -> list[list[int]]:
    """Connected components of `pairs` among rows 0..count-1 with two rows or more, each sorted,
    largest first (then by first row)."""
    parent = np.arange(count)

    def root(row: int) -> int:
        while parent[row] != row:
            parent[row] = parent[parent[row]]  # halve the path as we go
            row = int(parent[row])
        return row

    for first, second in pairs.tolist():
        a, b = root(first), root(second)
        if a != b:
            parent[max(a, b)] = min(a, b)
    members: dict[int, list[int]] = {}
    for row in {int(r) for r in pairs.ravel().tolist()}:
        members.setdefault(root(row), []).append(row)
    return sorted((sorted(rows) for rows in members.values()), key=lambda g: (-len(g), g[0]))


def duplicate_groups(appearances: np.ndarray, threshold: float) -> list[list[int]]:
    """Groups of near-identical images (rows of `appearances`), largest first."""
    return groups(len(appearances), near_pairs(appearances, threshold)[0])
