"""The gallery map (server/serve/gallery_map.py) on synthetic clusters of unit vectors, each
cluster built around a known word's vector: layouts, incremental updates, the map file,
regions and their labels, and the packed layout."""

from __future__ import annotations

import numpy as np
import pytest

from server.serve.gallery_map import (
    MAP_FILE,
    MAP_FORMAT,
    Region,
    compute_layout,
    label_by_relevance,
    load_map,
    pack_layout,
    regions,
    save_map,
    unpack_layout,
    update_layout,
)
from server.vectors import normalized

DIM = 50
CLUSTER_WORDS = ("dog", "cat", "beach", "mountain", "car", "bicycle", "snow", "river", "ball",
                 "tree")
OTHER_WORDS = tuple(f"word{n}" for n in range(40))  # the rest of a vocabulary
SPREAD = 0.15  # noise around a cluster's word: clusters apart, as in a real gallery


@pytest.fixture(scope="module")
def vocabulary() -> tuple[list[str], np.ndarray]:
    words = [*CLUSTER_WORDS, *OTHER_WORDS]
    return words, normalized(np.random.default_rng(7).normal(size=(len(words), DIM)))


def around_words(matrix: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` unit vectors, each near the vector of one of CLUSTER_WORDS, and which one."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, len(CLUSTER_WORDS), count)
    return normalized(matrix[cluster] + SPREAD * rng.normal(size=(count, DIM))), cluster


@pytest.fixture(scope="module")
def gallery(vocabulary) -> dict[str, np.ndarray]:
    """2,000 images (ids 10, 20, ...: not their rows) and their layout, computed once."""
    vectors, cluster = around_words(vocabulary[1], 2000, seed=1)
    return {"ids": 10 * np.arange(1, 2001), "vectors": vectors, "cluster": cluster,
            "xy": compute_layout(vectors, seed=0)}


def test_the_layout_fills_the_unit_square_keeping_its_shape(gallery):
    xy = gallery["xy"]
    assert xy.shape == (2000, 2) and xy.dtype == np.float32
    assert xy.min() >= 0 and xy.max() <= 1
    extent = np.ptp(xy, axis=0)
    assert extent.max() == pytest.approx(1)  # the longer axis spans [0, 1]
    shorter = int(np.argmin(extent))
    middle = (xy[:, shorter].min() + xy[:, shorter].max()) / 2
    assert middle == pytest.approx(0.5, abs=1e-6)  # the shorter one is centred


def test_the_layout_keeps_clusters_together(gallery):
    xy, cluster = gallery["xy"], gallery["cluster"]
    nearest = np.argsort(((xy[:, None] - xy[None]) ** 2).sum(-1), axis=1)[:, 1:6]
    assert np.mean(cluster[nearest] == cluster[:, None]) > 0.95


def test_the_same_seed_gives_the_same_layout_and_another_seed_another(gallery):
    vectors = gallery["vectors"][:1200]  # over 1,000: approximate neighbours, the large path
    again = compute_layout(vectors, seed=0)
    np.testing.assert_array_equal(compute_layout(vectors, seed=0), again)
    assert not np.allclose(compute_layout(vectors, seed=1), again, atol=1e-3)


@pytest.mark.parametrize("count", [0, 1, 2, 5, 12])
def test_tiny_galleries_are_laid_out(vocabulary, count):
    vectors, _ = around_words(vocabulary[1], count, seed=count)
    messages: list[str] = []
    xy = compute_layout(vectors, progress=messages.append)
    assert xy.shape == (count, 2) and xy.dtype == np.float32
    assert np.isfinite(xy).all() and ((xy >= 0) & (xy <= 1)).all()
    if count >= 2:
        assert len(np.unique(xy, axis=0)) == count  # distinct images, distinct places
        assert messages


def test_identical_vectors_share_the_centre():
    xy = compute_layout(normalized(np.ones((20, DIM))))
    np.testing.assert_array_equal(xy, np.full((20, 2), 0.5, np.float32))


def test_a_few_new_images_go_among_their_neighbours_and_old_ones_stay(gallery, vocabulary):
    ids, vectors, xy = gallery["ids"], gallery["vectors"], gallery["xy"]
    kept = np.arange(20, 2000)  # the first 20 images were deleted
    new_vectors, new_cluster = around_words(vocabulary[1], 60, seed=2)  # 3% of the gallery
    new_ids = 100_000 + np.arange(60)
    mixed = np.random.default_rng(3).permutation(len(kept) + 60)  # rows in any order
    current_ids = np.concatenate([ids[kept], new_ids])[mixed]
    current_vectors = np.concatenate([vectors[kept], new_vectors])[mixed]

    placed, recomputed = update_layout(ids, xy, current_ids, current_vectors)

    assert not recomputed and placed.shape == (len(current_ids), 2)
    old = np.isin(current_ids, ids)
    position_of = dict(zip(ids.tolist(), xy.tolist(), strict=True))
    np.testing.assert_array_equal(placed[old],
                                  np.array([position_of[i] for i in current_ids[old]],
                                           np.float32))
    cluster_of = dict(zip(ids.tolist(), gallery["cluster"].tolist(), strict=True))
    old_xy, old_cluster = placed[old], np.array([cluster_of[i] for i in current_ids[old]])
    for image, where in zip(current_ids[~old], placed[~old], strict=True):
        nearest_on_map = np.argmin(((old_xy - where) ** 2).sum(axis=1))
        assert old_cluster[nearest_on_map] == new_cluster[image - 100_000]  # in its island
        assert np.sqrt(((old_xy[nearest_on_map] - where) ** 2).sum()) < 0.05


def test_an_unchanged_gallery_keeps_its_map(gallery):
    xy, recomputed = update_layout(gallery["ids"], gallery["xy"], gallery["ids"][::-1],
                                   gallery["vectors"][::-1])
    assert not recomputed
    np.testing.assert_array_equal(xy, gallery["xy"][::-1])


def test_many_new_images_or_no_usable_map_recompute(gallery, vocabulary):
    ids, xy = gallery["ids"][:200], gallery["xy"][:200]
    new_vectors, _ = around_words(vocabulary[1], 200, seed=4)  # as many new as old: 50%
    current_ids = np.concatenate([ids, 100_000 + np.arange(200)])
    current_vectors = np.concatenate([gallery["vectors"][:200], new_vectors])
    placed, recomputed = update_layout(ids, xy, current_ids, current_vectors)
    assert recomputed
    np.testing.assert_array_equal(placed, compute_layout(current_vectors))
    for previous_ids, previous_xy in ((ids[:0], xy[:0]), (ids, xy[:100])):  # none, mismatched
        assert update_layout(previous_ids, previous_xy, current_ids, current_vectors)[1]
    empty, recomputed = update_layout(ids, xy, ids[:0], gallery["vectors"][:0])
    assert empty.shape == (0, 2) and not recomputed


def test_the_map_file_round_trips_and_is_replaced_whole(tmp_path, gallery):
    assert load_map(tmp_path) is None
    save_map(tmp_path, gallery["ids"][:5], gallery["xy"][:5], generation=3)
    save_map(tmp_path, gallery["ids"], gallery["xy"], generation=4)
    loaded = load_map(tmp_path)
    assert loaded is not None
    assert (loaded.generation, loaded.format) == (4, MAP_FORMAT)
    assert loaded.ids.dtype == np.int64 and loaded.xy.dtype == np.float32
    np.testing.assert_array_equal(loaded.ids, gallery["ids"])
    np.testing.assert_array_equal(loaded.xy, gallery["xy"])
    assert [path.name for path in tmp_path.iterdir()] == [MAP_FILE]  # no temporary left
    with pytest.raises(ValueError):
        save_map(tmp_path, gallery["ids"], gallery["xy"][:3], generation=5)
    assert load_map(tmp_path).generation == 4  # type: ignore[union-attr]


def test_regions_labelled_before_they_had_further_words_are_labelled_again(tmp_path, gallery):
    """The layout kept (people have learnt it), the regions read as not labelled yet."""
    region = {"level": 0, "x": 0.5, "y": 0.5, "radius": 0.1, "count": 5, "label": "dog"}
    save_map(tmp_path, gallery["ids"][:5], gallery["xy"][:5], generation=3, regions=[region])
    loaded = load_map(tmp_path)
    assert loaded is not None and loaded.regions is None
    np.testing.assert_array_equal(loaded.xy, gallery["xy"][:5])
    save_map(tmp_path, gallery["ids"][:5], gallery["xy"][:5], generation=3,
             regions=[{**region, "also": ["grass"]}])
    assert load_map(tmp_path).regions == [{**region, "also": ["grass"]}]  # type: ignore[union-attr]


def test_a_map_of_another_format_or_unreadable_is_none(tmp_path):
    np.savez(tmp_path / MAP_FILE, ids=np.arange(3), xy=np.zeros((3, 2)),
             generation=np.int64(1), format=np.int64(MAP_FORMAT + 1))
    assert load_map(tmp_path) is None
    (tmp_path / MAP_FILE).write_bytes(b"not a zip file")
    assert load_map(tmp_path) is None


def test_regions_cover_the_gallery_at_each_level_and_are_named_by_their_words(gallery,
                                                                          vocabulary):
    found = regions(gallery["xy"], levels=(10, 40))
    for level, count in enumerate((10, 40)):
        at_level = [region for region in found if region.level == level]
        assert len(at_level) == count
        assert sum(region.count for region in at_level) == 2000
        assert [r.count for r in at_level] == sorted((r.count for r in at_level), reverse=True)
    for region in found:
        assert 0 <= region.x <= 1 and 0 <= region.y <= 1 and region.radius > 0
    labels = label_by_relevance(found, gallery["xy"], gallery["vectors"], *vocabulary)
    first = [named[0] for named in labels]
    assert sorted(first[:10]) == sorted(CLUSTER_WORDS)  # one region per cluster, its word
    # the finer level: four regions a cluster, and their best words only ten, yet named
    # apart where a free word is among the best few
    assert len(set(first[10:])) >= 30
    assert [len(named) for named in labels] == [3] * 10 + [2] * 40  # LABEL_WORDS
    assert label_by_relevance([], gallery["xy"], gallery["vectors"], *vocabulary) == []


def test_a_regions_further_words_say_more_than_its_first_again():
    """Pictures of dogs on grass: `dogs` stands out there as much as `dog`, but says it again;
    the second word is `grass`."""
    rng = np.random.default_rng(5)
    dog = normalized(rng.normal(size=DIM))
    away = rng.normal(size=DIM)
    grass = normalized(away - (away @ dog) * dog - 0.3 * dog)  # nowhere near dog as a word
    cat = normalized(rng.normal(size=DIM))
    others = normalized(rng.normal(size=(30, DIM)))
    words = ["dog", "dogs", "grass", "cat", *(f"word{n}" for n in range(30))]
    matrix = np.vstack([dog, normalized(dog + 0.1 * rng.normal(size=DIM)), grass, cat, others])
    vectors = normalized(np.vstack([dog + 0.6 * grass + SPREAD * rng.normal(size=(40, DIM)),
                                    cat + SPREAD * rng.normal(size=(40, DIM))]))
    xy = np.vstack([np.full((40, 2), 0.2), np.full((40, 2), 0.8)]).astype(np.float32)
    found = [Region(0, 0.2, 0.2, 0.01, 40), Region(0, 0.8, 0.8, 0.01, 40)]
    on_grass, _ = label_by_relevance(found, xy, vectors, words, matrix)
    assert on_grass[:2] == ["dog", "grass"] and "dogs" not in on_grass


def test_a_regions_words_are_among_the_describing_ones():
    """Pictures of people wearing hats: "wearing" stands out there as much as "hat" and
    "people", and is among the region's words until the describing words leave it out, as its
    first word or a further one; a vocabulary with no describing word labels as if all were."""
    rng = np.random.default_rng(11)
    people, wearing, hat, cat = normalized(rng.normal(size=(4, DIM)))
    others = normalized(rng.normal(size=(300, DIM)))  # enough that the three are not near words
    words = ["people", "wearing", "hat", "cat", *(f"word{n}" for n in range(300))]
    matrix = np.vstack([people, wearing, hat, cat, others])
    vectors = normalized(np.vstack([
        people + 0.8 * wearing + 0.6 * hat + SPREAD * rng.normal(size=(40, DIM)),
        cat + SPREAD * rng.normal(size=(40, DIM))]))
    xy = np.vstack([np.full((40, 2), 0.2), np.full((40, 2), 0.8)]).astype(np.float32)
    found = [Region(0, 0.2, 0.2, 0.01, 40), Region(0, 0.8, 0.8, 0.01, 40)]
    plain, _ = label_by_relevance(found, xy, vectors, words, matrix)
    assert plain == ["hat", "wearing", "people"]
    describing = set(words) - {"wearing"}
    described, _ = label_by_relevance(found, xy, vectors, words, matrix, describing=describing)
    assert described[:2] == ["hat", "people"] and "wearing" not in described
    no_hat, _ = label_by_relevance(found, xy, vectors, words, matrix,
                                   describing=describing - {"hat"})
    assert no_hat[0] == "people" and "hat" not in no_hat and "wearing" not in no_hat
    assert label_by_relevance(found, xy, vectors, words, matrix, describing=set()) == \
        label_by_relevance(found, xy, vectors, words, matrix)


def test_the_larger_region_takes_a_word_two_regions_want(vocabulary):
    """Both regions of dog pictures are best named `dog`; a level uses a word once, and the
    larger region chooses first, wherever it is in the list."""
    words, matrix = vocabulary
    rng = np.random.default_rng(3)
    dog, cat = CLUSTER_WORDS.index("dog"), CLUSTER_WORDS.index("cat")
    counts = {(0.2, 0.5): (dog, 30), (0.8, 0.5): (dog, 20), (0.5, 0.9): (cat, 50)}
    vectors, xy, found = [], [], []
    for (x, y), (word, count) in counts.items():
        vectors.append(normalized(matrix[word] + SPREAD * rng.normal(size=(count, DIM))))
        xy.append(np.array([x, y]) + 0.01 * rng.normal(size=(count, 2)))
        found.append(Region(0, x, y, 0.02, count))
    order = [1, 2, 0]  # the smaller dog region listed first
    labels = label_by_relevance([found[i] for i in order], np.concatenate(xy).astype(np.float32),
                                np.concatenate(vectors), words, matrix)
    named = {number: words[0] for number, words in zip(order, labels, strict=True)}
    assert named[0] == "dog" and named[2] == "cat"
    assert named[1] not in ("dog", "cat")


def test_regions_of_few_images_are_as_many_as_their_places():
    xy = np.array([[0.1, 0.1], [0.1, 0.1], [0.9, 0.5]], np.float32)
    found = regions(xy, levels=(8, 32))
    assert [(r.level, r.count) for r in found] == [(0, 2), (0, 1), (1, 2), (1, 1)]
    assert regions(xy[:0]) == []


def test_the_packed_layout_round_trips_within_its_quantisation(gallery):
    ids, xy = gallery["ids"], gallery["xy"]
    packed = pack_layout(ids, xy)
    assert packed["count"] == 2000
    assert len(packed["ids"]) * 3 / 4 + len(packed["xy"]) * 3 / 4 == pytest.approx(8 * 2000,
                                                                                   abs=4)
    unpacked_ids, unpacked_xy = unpack_layout(packed)
    np.testing.assert_array_equal(unpacked_ids, ids)
    assert np.abs(unpacked_xy - xy).max() <= 0.5 / 65535 + 1e-7
    empty = unpack_layout(pack_layout(ids[:0], xy[:0]))
    assert empty[0].shape == (0,) and empty[1].shape == (0, 2)
    with pytest.raises(ValueError):
        pack_layout(np.array([2**31]), xy[:1])
    with pytest.raises(ValueError):
        unpack_layout({**packed, "count": 1999})
