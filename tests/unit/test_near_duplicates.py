"""Near duplicates' parts against brute force: the pairs among neighbours, the groups, the
appearance vector's halves."""

from __future__ import annotations

import numpy as np
from PIL import Image

from server.artifacts import DEFAULT_MODEL_DIR
from server.images import LAYOUT_DIM, colour_layout
from server.serve.duplicates import (
    APPEARANCE_DIM,
    DuplicateModel,
    duplicate_groups,
    groups,
    near_pairs,
)
from server.vectors import normalized


def clustered(count: int, spread: float, seed: int = 0) -> np.ndarray:
    """Unit vectors in tight clusters of 1 to 4 around random centres."""
    rng = np.random.default_rng(seed)
    rows = []
    while len(rows) < count:
        centre = rng.normal(size=32)
        rows += [centre + spread * rng.normal(size=32) for _ in range(rng.integers(1, 5))]
    return normalized(np.array(rows[:count], np.float32))


def test_near_pairs_are_every_pair_above_the_threshold():
    vectors = clustered(300, 0.15)
    pairs, scores = near_pairs(vectors, 0.9)
    similarity = vectors @ vectors.T
    i, j = np.nonzero(np.triu(similarity >= 0.9, k=1))
    assert {tuple(p) for p in pairs.tolist()} == set(zip(i.tolist(), j.tolist(), strict=True))
    assert np.allclose(scores, similarity[pairs[:, 0], pairs[:, 1]], atol=1e-5)


def test_groups_are_the_connected_pieces():
    pairs = np.array([[0, 1], [1, 2], [5, 6], [8, 9], [6, 9]])
    assert groups(12, pairs) == [[5, 6, 8, 9], [0, 1, 2]]
    assert groups(3, np.zeros((0, 2), np.int64)) == []
    vectors = clustered(200, 0.05, seed=3)
    found = duplicate_groups(vectors, 0.95)
    similarity = vectors @ vectors.T >= 0.95
    reach = similarity.copy()  # transitive closure, by brute force
    for _ in range(8):
        reach = (reach.astype(np.int32) @ reach.astype(np.int32)) > 0
    expected = {tuple(np.flatnonzero(row).tolist()) for row in reach if row.sum() > 1}
    assert {tuple(g) for g in found} == expected


def test_the_appearance_is_two_unit_halves():
    model = DuplicateModel.load(DEFAULT_MODEL_DIR)
    rng = np.random.default_rng(0)
    classes = rng.dirichlet(np.ones(1000) * 0.05, size=3).astype(np.float32)
    pictures = [Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
                for _ in range(3)]
    layouts = np.stack([colour_layout(picture) for picture in pictures])
    made = model.appearance(classes, layouts)
    assert made.shape == (3, APPEARANCE_DIM) and layouts.shape == (3, LAYOUT_DIM)
    assert np.allclose(np.linalg.norm(made, axis=1), 1, atol=1e-5)
    assert np.allclose(np.linalg.norm(made[:, -LAYOUT_DIM:], axis=1), np.sqrt(0.5), atol=1e-5)
    assert 0.5 < model.threshold < 1 and model.settings["model"] == model.fingerprint


def test_a_colour_layout_ignores_size_and_brightness_not_content():
    rng = np.random.default_rng(1)
    picture = Image.fromarray(rng.integers(0, 255, (12, 18, 3), dtype=np.uint8)).resize(
        (360, 240), Image.Resampling.BICUBIC)
    brighter = Image.fromarray(np.clip(np.asarray(picture, np.float32) + 20, 0, 255)
                               .astype(np.uint8))
    layout = colour_layout(picture)
    assert float(layout @ colour_layout(picture.resize((90, 60)))) > 0.99
    assert float(layout @ colour_layout(brighter)) > 0.98
    assert float(layout @ colour_layout(picture.transpose(Image.Transpose.ROTATE_180))) < 0.9
    assert not colour_layout(Image.new("RGB", (50, 50), "gray")).any()  # flat: no layout
