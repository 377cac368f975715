"""A map of the gallery: every image placed on a 2-D layout of the joint space, and regions of
that layout at several zoom levels, each labelled by the words whose best images lie there.

The layout is a t-SNE of the images' unit vectors (openTSNE: PCA initialisation, cosine
affinities over approximate neighbours, FFT-interpolated gradients from 10,000 images up), scaled
into the unit square. It is kept beside the index in `map.npz` and updated incrementally: when a
new generation adds few images, the old ones keep their places (a map that reshuffles after
every import is a map nobody learns) and each new one is put among its nearest old neighbours;
when many are new, the layout is computed again. Regions are k-means clusters of the positions
(what looks like a region on the map is one), each labelled by the words whose images stand
out there most (`label_by_relevance`).

Serving and indexing import this module: it never imports torch, and imports openTSNE (with
its scikit-learn and scipy: a second of imports) only to lay out 100 images or more; regions
are faiss's k-means and numpy.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import faiss
import numpy as np

from server.serve.gallery import Gallery
from server.vectors import normalized
from server.wordspace import WordSpace

log = logging.getLogger("wordpix.map")

MAP_FILE = "map.npz"
MAP_FORMAT = 1  # bump when the file's arrays change meaning; an older map is then recomputed

# t-SNE: openTSNE's defaults (Belkina et al. 2019; Linderman et al. 2019) but a shorter second
# phase. Past ~350 iterations the layout mostly keeps expanding, and the FFT grid, which grows
# with its extent rather than with the number of images, makes each iteration dearer: on 10,000
# clustered 50-D vectors, of each image's 10 nearest neighbours 43.0% stayed among its 10
# nearest in 2-D after 250 iterations, 43.4% after 350, 43.6% after 500 (the phase taking 2.1x
# as long as 350's) and 43.8% after 750 (4.7x).
PERPLEXITY = 30.0
# Fewer images are laid out by PCA: t-SNE's neighbourhoods need numbers (on the 12 sample
# photos its layout stayed the thin line its PCA initialisation starts from)
TSNE_FROM = 100
EARLY_EXAGGERATION = 12.0
EARLY_ITERATIONS = 250
EARLY_MOMENTUM = 0.5
ITERATIONS = 350
MOMENTUM = 0.8
# Below this many images a gradient step is too little work to share: openTSNE's threads meet
# at every iteration, and on a busy machine waiting for the other one costs more than the step
# (measured on 2 cores beside other work: 2,000 images in 3 s on one thread, 22 s on two)
PARALLEL_FROM = 10_000

NEW_IMAGE_NEIGHBOURS = 10  # old images a new one is placed among
REGION_RADIUS_QUANTILE = 0.8  # a region's circle holds this share of its members: outliers
                              # that t-SNE leaves between clusters would inflate a maximum
KMEANS_ITERATIONS = 25  # of each level's k-means (faiss's default)
KMEANS_STARTS = 4  # k-means++ starts, the tightest kept (2-D: each is cheap)
LABEL_CANDIDATES = 5  # a region takes the best word among this many not used at its level
QUANTISED = 65535  # positions travel as uint16


class MapData(NamedTuple):
    """A map as stored: `xy[i]` is image `ids[i]`'s position, made for `generation`."""

    ids: np.ndarray  # (N,) int64
    xy: np.ndarray  # (N, 2) float32 in [0, 1]
    generation: int
    format: int
    regions: list[dict] | None = None  # labelled, as `labelled_regions` made them, if kept


class Region(NamedTuple):
    """A cluster of the map's positions at one zoom level."""

    level: int  # index into the levels asked for: 0 is the coarsest
    x: float  # the members' median position: inside the region even when it is not convex
    y: float
    radius: float  # REGION_RADIUS_QUANTILE of the members lie this close to (x, y)
    # shadows tuple.count(), which nothing calls on a Region: "count" says it best
    count: int  # type: ignore[assignment]


# ---- layout -----------------------------------------------------------------------------


def compute_layout(vectors: np.ndarray, seed: int = 0, n_jobs: int = 2,
                   progress: Callable[[str], None] | None = None) -> np.ndarray:
    """(N, 2) float32 positions in [0, 1] x [0, 1] for N unit vectors, row by row.

    The same vectors, seed and `n_jobs` give the same layout bit for bit (seeded neighbour
    search, initialisation and optimisation), so a map made twice is one map. `n_jobs`
    threads from PARALLEL_FROM images up; `progress` hears each phase as it starts.
    Galleries too small for t-SNE's neighbourhoods are laid out by PCA instead; none is too
    small to lay out.
    """
    report = progress or (lambda message: None)
    points = np.ascontiguousarray(vectors, np.float32)
    if len(points) < 2 or not np.ptp(points, axis=0).any():
        return np.full((len(points), 2), 0.5, np.float32)  # one image, or all the same
    if len(points) < TSNE_FROM:
        report(f"laying out {len(points)} images by PCA")
        return _fit_unit_square(_principal_components(points))
    perplexity = min(PERPLEXITY, (len(points) - 1) / 3)
    return _fit_unit_square(_tsne(points, perplexity, seed, n_jobs, report))


def _tsne(points: np.ndarray, perplexity: float, seed: int, n_jobs: int,
          report: Callable[[str], None]) -> np.ndarray:
    """openTSNE's two phases: exaggerated attraction first, so that clusters form before
    they settle (without it, a cluster split early stays split), then plain t-SNE."""
    from openTSNE import TSNEEmbedding, affinity, initialization
    n_jobs = n_jobs if len(points) >= PARALLEL_FROM else 1
    report(f"finding the neighbours of {len(points)} images")
    # "auto": exact neighbours below 1,000 images, Annoy (bundled with openTSNE) above
    affinities = affinity.PerplexityBasedNN(points, perplexity=perplexity, metric="cosine",
                                            method="auto", n_jobs=n_jobs, random_state=seed)
    # PCA keeps the global arrangement (which clusters lie near which) that t-SNE alone loses
    start = initialization.pca(points, random_state=seed)
    # "auto": Barnes-Hut below 10,000 images, FFT-interpolated gradients from there
    embedding = TSNEEmbedding(start, affinities, negative_gradient_method="auto",
                              n_jobs=n_jobs, random_state=seed)
    report(f"early exaggeration ({EARLY_ITERATIONS} iterations)")
    embedding = embedding.optimize(n_iter=EARLY_ITERATIONS, exaggeration=EARLY_EXAGGERATION,
                                   momentum=EARLY_MOMENTUM)
    report(f"refining ({ITERATIONS} iterations)")
    embedding = embedding.optimize(n_iter=ITERATIONS, momentum=MOMENTUM)
    return np.asarray(embedding, np.float64)


def _principal_components(points: np.ndarray) -> np.ndarray:
    """The two leading principal components (fewer rows than that: zero beyond them)."""
    centred = points - points.mean(axis=0)
    left, singular, _ = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    components = np.zeros((len(points), 2))
    rank = min(2, len(singular))
    components[:, :rank] = left[:, :rank] * singular[:rank]
    return components


def _fit_unit_square(points: np.ndarray) -> np.ndarray:
    """Scale both axes by one factor (a map keeps its shape) so that the longer one spans
    [0, 1], and centre the shorter one."""
    low, extent = points.min(axis=0), np.ptp(points, axis=0)
    longest = float(extent.max())
    if longest == 0:
        return np.full(points.shape, 0.5, np.float32)
    fitted = (points - low) / longest + (1 - extent / longest) / 2
    return np.clip(fitted, 0, 1).astype(np.float32)


# ---- incremental update -----------------------------------------------------------------


def update_layout(previous_ids: np.ndarray, previous_xy: np.ndarray, ids: np.ndarray,
                  vectors: np.ndarray, seed: int = 0, recompute_above: float = 0.1
                  ) -> tuple[np.ndarray, bool]:
    """Positions for `ids` (the rows of `vectors`) given the previous map, and whether the
    layout was computed again from scratch.

    Images already on the map keep their position exactly; new ones go to the
    similarity-weighted median position of their nearest old images (a median: an image
    between two clusters goes into one of them rather than into the empty space between);
    removed ones drop out. When more than `recompute_above` of the images are new, placing
    them one by one would crowd the old regions, so the whole layout is computed again, as
    it is when the previous map does not fit (missing, or not one position per id).
    """
    ids = np.asarray(ids, np.int64)
    previous_ids = np.asarray(previous_ids, np.int64)
    previous_xy = np.asarray(previous_xy, np.float32)
    if len(ids) == 0:
        return np.zeros((0, 2), np.float32), False
    if not _usable(previous_ids, previous_xy):
        return compute_layout(vectors, seed), True
    order = np.argsort(previous_ids, kind="stable")
    slot = np.minimum(np.searchsorted(previous_ids, ids, sorter=order), len(order) - 1)
    found = previous_ids[order[slot]] == ids
    if found.all():
        return previous_xy[order[slot]], False
    if not found.any() or np.mean(~found) > recompute_above:
        return compute_layout(vectors, seed), True
    xy = np.empty((len(ids), 2), np.float32)
    xy[found] = previous_xy[order[slot[found]]]
    points = np.asarray(vectors, np.float32)
    xy[~found] = _place_among(points[~found], points[found], xy[found])
    return xy, False


def _usable(previous_ids: np.ndarray, previous_xy: np.ndarray) -> bool:
    """A previous map to build on: one finite position per id, ids unique."""
    return (len(previous_ids) > 0 and previous_ids.ndim == 1
            and previous_xy.shape == (len(previous_ids), 2)
            and bool(np.isfinite(previous_xy).all())
            and len(np.unique(previous_ids)) == len(previous_ids))


def _place_among(new: np.ndarray, old: np.ndarray, old_xy: np.ndarray) -> np.ndarray:
    """Each new vector's position: the weighted median of its nearest old vectors' positions,
    weighted by cosine. Exact neighbours (faiss's flat inner-product index), as few images
    are placed this way: at most `recompute_above` of the gallery."""
    index = faiss.IndexFlatIP(old.shape[1])
    index.add(np.ascontiguousarray(old))
    similarity, neighbours = index.search(np.ascontiguousarray(new),
                                          min(NEW_IMAGE_NEIGHBOURS, len(old)))
    weights = np.maximum(similarity, 1e-3)  # a far neighbour still counts, a little
    return np.stack([_weighted_median(old_xy[neighbours, axis], weights)
                     for axis in range(2)], axis=1).astype(np.float32)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Row by row, the value at which the sorted values' cumulative weight reaches half."""
    order = np.argsort(values, axis=1, kind="stable")
    ranked = np.take_along_axis(values, order, axis=1)
    cumulative = np.cumsum(np.take_along_axis(weights, order, axis=1), axis=1)
    middle = np.argmax(cumulative >= cumulative[:, -1:] / 2, axis=1)
    return ranked[np.arange(len(values)), middle]


# ---- the map file -----------------------------------------------------------------------


def save_map(directory: Path, ids: np.ndarray, xy: np.ndarray, generation: int,
             regions: list[dict] | None = None) -> None:
    """Write `directory/map.npz` atomically: a reader (the server) sees the old map or the
    new one, and a crash leaves the old one in place. `regions`, labelled, are kept with it
    as JSON: labelling them takes seconds at 100,000 images, better spent at indexing than
    while a page waits."""
    ids, xy = np.asarray(ids, np.int64), np.asarray(xy, np.float32)
    if ids.ndim != 1 or xy.shape != (len(ids), 2):
        raise ValueError(f"one (x, y) per id: {ids.shape} ids, {xy.shape} positions")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"{MAP_FILE}.tmp"
    try:
        with open(tmp, "wb") as file:  # a file object: np.savez would add ".npz" to a path
            arrays: dict[str, Any] = {"ids": ids, "xy": xy, "generation": np.int64(generation),
                                      "format": np.int64(MAP_FORMAT)}
            if regions is not None:
                arrays["regions"] = np.array(json.dumps(regions))
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        tmp.replace(directory / MAP_FILE)
    finally:
        tmp.unlink(missing_ok=True)


def load_map(directory: Path) -> MapData | None:
    """The map beside an index; None if there is none, or it is of another format or
    unreadable (the indexer then computes a new one)."""
    path = Path(directory) / MAP_FILE
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            if int(stored["format"]) != MAP_FORMAT:
                return None
            regions = json.loads(str(stored["regions"])) if "regions" in stored else None
            if regions is not None and not all("also" in region for region in regions):
                regions = None  # labelled before regions had further words: label them again
            found = MapData(stored["ids"].astype(np.int64), stored["xy"].astype(np.float32),
                            int(stored["generation"]), MAP_FORMAT, regions)
    except (OSError, KeyError, ValueError) as error:  # BadZipFile is an OSError
        log.warning("ignoring the unreadable map %s: %s", path, error)
        return None
    return found if found.xy.shape == (len(found.ids), 2) else None


# ---- regions ------------------------------------------------------------------------------


def regions(xy: np.ndarray, levels: Sequence[int] = (8, 32, 128), seed: int = 0
            ) -> list[Region]:
    """The map's regions: `levels[i]` k-means clusters of the positions at level i (fewer
    where the map has fewer distinct positions), largest first within a level.

    Clustering the 2-D positions, not the vectors, makes a region what the eye sees as one.
    """
    xy = np.asarray(xy, np.float32)
    if len(xy) == 0:
        return []
    distinct = len(np.unique(xy, axis=0))
    found: list[Region] = []
    for level, wanted in enumerate(levels):
        clusters = min(int(wanted), distinct)
        found += _regions_of(level, _kmeans(xy, clusters, seed), clusters, xy)
    return found


def _kmeans(xy: np.ndarray, clusters: int, seed: int) -> np.ndarray:
    """Each position's cluster among `clusters` (faiss's k-means: seeded, and no scipy or
    scikit-learn to import where a gallery is labelled)."""
    if clusters <= 1:
        return np.zeros(len(xy), np.int64)
    points = np.ascontiguousarray(xy, np.float32)
    best, lowest = None, np.inf
    for start in range(KMEANS_STARTS):  # the best of a few: one can still merge two clusters
        kmeans = faiss.Kmeans(2, clusters, niter=KMEANS_ITERATIONS, seed=seed + start,
                              min_points_per_centroid=1, max_points_per_centroid=len(xy))
        kmeans.train(points, init_centroids=_spread_starts(points, clusters, seed + start))
        tightness = float(np.asarray(kmeans.obj)[-1])  # the last iteration's squared error
        if tightness < lowest:
            best, lowest = kmeans, tightness
    assert best is not None
    return best.index.search(points, 1)[1].ravel()


def _spread_starts(points: np.ndarray, clusters: int, seed: int) -> np.ndarray:
    """k-means++ starts: each next one drawn with odds growing as the square of its distance
    to the nearest start so far, so that no two start in one cluster and none is left out
    (random starts merged two of ten well-apart clusters)."""
    rng = np.random.default_rng(seed)
    starts = [points[rng.integers(len(points))]]
    nearest = ((points - starts[0]) ** 2).sum(axis=1)
    for _ in range(clusters - 1):
        total = float(nearest.sum())
        chosen = rng.choice(len(points), p=nearest / total) if total > 0 else \
            rng.integers(len(points))
        starts.append(points[chosen])
        nearest = np.minimum(nearest, ((points - points[chosen]) ** 2).sum(axis=1))
    return np.ascontiguousarray(starts, np.float32)


def _group_sums(values: np.ndarray, group: np.ndarray, groups: int) -> np.ndarray:
    """(groups, columns): the sum of `values`' rows in each group."""
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(groups + 1))
    sums = np.zeros((groups, values.shape[1]), np.float32)
    for number in range(groups):
        sums[number] = values[order[bounds[number] : bounds[number + 1]]].sum(axis=0)
    return sums


def _regions_of(level: int, labels: np.ndarray, clusters: int, xy: np.ndarray
                ) -> list[Region]:
    """One level's regions from its cluster labels, largest first."""
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(clusters + 1))
    found = []
    for cluster in range(clusters):
        members = xy[order[bounds[cluster]:bounds[cluster + 1]]]
        if len(members) == 0:
            continue
        middle = np.median(members, axis=0)
        radius = np.quantile(np.linalg.norm(members - middle, axis=1), REGION_RADIUS_QUANTILE)
        found.append(Region(level, float(middle[0]), float(middle[1]), float(radius),
                            len(members)))
    return sorted(found, key=lambda region: (-region.count, region.x, region.y))


# ---- the layout on the wire -----------------------------------------------------------------


def pack_layout(ids: np.ndarray, xy: np.ndarray) -> dict[str, object]:
    """The layout for a JSON message: ids as little-endian int32 and positions as
    little-endian uint16 (x, y) pairs (1/65535 of the map: finer than any screen), each
    base64: 8 bytes an image before base64, where one JSON object per image is 40 or more."""
    ids = np.asarray(ids, np.int64)
    xy = np.asarray(xy, np.float32)
    if xy.shape != (len(ids), 2):
        raise ValueError(f"one (x, y) per id: {ids.shape} ids, {xy.shape} positions")
    if len(ids) and (ids.min() < np.iinfo(np.int32).min or ids.max() > np.iinfo(np.int32).max):
        raise ValueError("image ids beyond int32 do not fit the packed layout")
    quantised = np.rint(np.clip(xy, 0, 1) * QUANTISED).astype("<u2")
    return {"count": len(ids), "ids": _base64(ids.astype("<i4")), "xy": _base64(quantised)}


def unpack_layout(fields: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """`pack_layout`'s inverse: (ids int64, xy float32), xy within 1/131070 of what was
    packed."""
    count = int(fields["count"])
    ids = np.frombuffer(base64.b64decode(fields["ids"]), "<i4").astype(np.int64)
    quantised = np.frombuffer(base64.b64decode(fields["xy"]), "<u2")
    if len(ids) != count or len(quantised) != 2 * count:
        raise ValueError(f"a packed layout of {count} images holds {len(ids)} ids and "
                         f"{len(quantised) / 2:g} positions")
    return ids, (quantised.reshape(count, 2) / QUANTISED).astype(np.float32)


def _base64(array: np.ndarray) -> str:
    return base64.b64encode(array.tobytes()).decode("ascii")


# ---- what the indexer and the server call -----------------------------------------------------


def update_gallery_map(gallery: Gallery, log: Callable[[str], None] | None = None,
                       words: WordSpace | None = None) -> MapData:
    """Bring `map.npz` beside the index up to date with its current generation (the previous
    map's positions kept where it can: `update_layout`), with its regions labelled by `words`
    where given, and return it."""
    previous = load_map(gallery.directory)
    if previous is not None and previous.generation == gallery.generation:
        if words is None or previous.regions is not None:
            return previous
        labelled = labelled_regions(previous.xy, gallery.vectors, words.words, words.matrix,
                                    describing=words.describing)
        save_map(gallery.directory, previous.ids, previous.xy, previous.generation, labelled)
        return previous._replace(regions=labelled)
    started = time.perf_counter()
    ids = np.array([item.id for item in gallery.all_items()], np.int64)  # in row order
    if log is not None:  # a new layout of 100,000 images takes a minute or two: say so first
        log(f"the map of {len(ids):,} images ...")
    xy, recomputed = update_layout(
        previous.ids if previous else np.zeros(0, np.int64),
        previous.xy if previous else np.zeros((0, 2), np.float32), ids, gallery.vectors)
    regions = None if words is None else labelled_regions(
        xy, gallery.vectors, words.words, words.matrix, describing=words.describing)
    save_map(gallery.directory, ids, xy, gallery.generation, regions)
    if log is not None:
        log(f"map of {len(ids):,} images {'laid out' if recomputed else 'updated'} in "
            f"{time.perf_counter() - started:.1f} s")
    return MapData(ids, xy, gallery.generation, MAP_FORMAT, regions)


def labelled_regions(xy: np.ndarray, vectors: np.ndarray, words: Sequence[str],
                     word_matrix: np.ndarray, seed: int = 0,
                     describing: Collection[str] | None = None) -> list[dict[str, object]]:
    """The map's regions at every level with their words, as a message carries them: `label`
    the region's word, `also` the further words its images stand out for (among `describing`,
    where given: see label_by_relevance)."""
    found = regions(xy, seed=seed)
    labels = label_by_relevance(found, xy, vectors, words, word_matrix, seed, describing)
    return [{"level": region.level, "x": round(region.x, 4), "y": round(region.y, 4),
             "radius": round(region.radius, 4), "count": region.count,
             "label": named[0] if named else "", "also": named[1:]}
            for region, named in zip(found, labels, strict=True)]


# Words a level's labels are chosen from: the most frequent caption words for the coarse
# regions (the vocabulary is in frequency order), more for finer ones: a region of an eighth of
# the gallery is "dog" or "water", a small one may be "greyhound" (chosen on Flickr8k dev).
# Regions of fewer images than GENERIC_FROM on average choose among all: in a gallery of 12
# photos a region is one photo, a rocket, not "girls".
LABEL_VOCABULARY = (60, 300, None)
# Words a region of each level is labelled with: an eighth of a gallery is seldom one thing
# (on Flickr8k the people are in every region: "shirt wearing people"), a small region is;
# fewer on finer levels, whose labels crowd the zoomed map. Chosen on Flickr8k dev: over five
# layouts the labels name 6.8 of the 10 commonest caption nouns, their first words 4.6
# (docs/figures/eval_map_labels-dev.md).
LABEL_WORDS = (3, 2, 1)
GENERIC_FROM = 25
LABEL_SAMPLE = 20_000  # images a word's similarities are standardised over
SAME_AS = 10  # a further word among a chosen one's this many nearest words says it again


def label_by_relevance(found: list[Region], xy: np.ndarray, vectors: np.ndarray,
                       words: Sequence[str], word_matrix: np.ndarray, seed: int = 0,
                       describing: Collection[str] | None = None) -> list[list[str]]:
    """The words of each region, best first: those whose similarity to the region's images
    stands out most from their similarity to the whole gallery (each word's cosines to the
    images standardised, then averaged over the region's). A region's first word is used by
    no other region of its level; its further words (LABEL_WORDS) are not near words of
    those before them ("dog" is not followed by "dogs"). Where `describing` is given (the
    model's map-words.txt), all of them are among its words: a region of people stands out
    for "wearing" and "holding" too, which say nothing of what is in it.

    The word nearest a region's mean vector is a poor label: images sit in a cone of their
    own, away from the words (the modality gap), so the nearest words of any mean are the
    same few hubs ("wagon", "structure"). Standardising each word over the gallery asks the
    question retrieval answers: where on the map do this word's best images lie?
    """
    if not found or len(words) == 0:
        return [[] for _ in found]
    rows = np.random.default_rng(seed).permutation(len(xy))[:LABEL_SAMPLE]
    sample = normalized(np.asarray(vectors[np.sort(rows)], np.float32))
    places = np.asarray(xy, np.float32)[np.sort(rows)]
    matrix = normalized(np.asarray(word_matrix, np.float32))
    same = _SameWords(matrix)
    allowed = None if describing is None else set(describing)
    describes = np.array([allowed is None or word in allowed for word in words], bool)
    labels: list[list[str]] = [[] for _ in found]
    for level, size in enumerate(LABEL_VOCABULARY):
        at_level = [i for i, region in enumerate(found) if region.level == level]
        if not at_level:
            continue
        centres = np.array([[found[i].x, found[i].y] for i in at_level], np.float32)
        member = np.argmin(((places[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
        count = words_per_region(level, len(xy) / len(at_level))
        if len(xy) / len(at_level) < GENERIC_FROM:
            size = None
        relevance = _relevance(matrix[:size], sample, member, len(at_level))
        used: set[int] = set()
        for slot in sorted(range(len(at_level)), key=lambda j: -found[at_level[j]].count):
            order = np.argsort(-relevance[slot])
            kept = order[describes[order]]
            ranked = [int(w) for w in (kept if len(kept) else order)]
            free = [w for w in ranked[:LABEL_CANDIDATES] if w not in used]
            chosen = [free[0] if free else ranked[0]]
            used.add(chosen[0])
            for word in ranked:
                if len(chosen) >= count:
                    break
                if not any(same(word, other) for other in chosen):
                    chosen.append(word)
            labels[at_level[slot]] = [words[w] for w in chosen]
    return labels


def words_per_region(level: int, images: float) -> int:
    """How many words label a region of `level` whose regions hold `images` on average:
    LABEL_WORDS, but one where they hold fewer than GENERIC_FROM (a photo or two, which one
    word names; further words chosen among all are noise there: "groomsmen: australian,
    fries" for a picture of coins)."""
    return LABEL_WORDS[min(level, len(LABEL_WORDS) - 1)] if images >= GENERIC_FROM else 1


class _SameWords:
    """Whether two words of a unit-row matrix say the same: either among the other's SAME_AS
    nearest (itself included). Each word's nearest found once, when first asked."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = matrix
        self.nearest: dict[int, set[int]] = {}

    def __call__(self, a: int, b: int) -> bool:
        return a == b or b in self._of(a) or a in self._of(b)

    def _of(self, word: int) -> set[int]:
        if word not in self.nearest:
            similarity = self.matrix @ self.matrix[word]
            count = min(SAME_AS, len(similarity))
            self.nearest[word] = {int(w) for w in
                                  np.argpartition(-similarity, count - 1)[:count]} | {word}
        return self.nearest[word]


WORD_CHUNK = 256  # candidate words scored at once: 256 x 20,000 similarities, 20 MB


def _relevance(candidates: np.ndarray, sample: np.ndarray, member: np.ndarray, regions: int
               ) -> np.ndarray:
    """(regions, words): each word's cosines to the sample standardised over the sample, then
    averaged over each region's members."""
    counts = np.maximum(np.bincount(member, minlength=regions), 1)
    relevance = np.empty((regions, len(candidates)), np.float32)
    for start in range(0, len(candidates), WORD_CHUNK):
        similarity = candidates[start : start + WORD_CHUNK] @ sample.T
        standard = (similarity - similarity.mean(axis=1, keepdims=True)) / np.maximum(
            similarity.std(axis=1, keepdims=True), 1e-6)
        relevance[:, start : start + WORD_CHUNK] = \
            _group_sums(standard.T, member, regions) / counts[:, None]
    return relevance
