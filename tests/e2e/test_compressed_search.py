"""The search for galleries larger than memory: IVF-PQ codes read through a memory map, the
best candidates re-scored exactly; how the server picks it; a large captioned gallery's blend.

The codes here are coarser than the shipped ones (PQ10 rather than PQ50: training 50 parts is
a minute on a busy 2-core machine); what the shipped index reaches is measured by
scripts/bench_scale.py (docs/scale.md).
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from server.artifacts import DEFAULT_MODEL_DIR, load_word_space, model_fingerprint
from server.serve.app import load_app
from server.serve.gallery import Gallery, Item, write_generation
from server.serve.search import (
    COMPRESS_FROM,
    EXACT_UP_TO,
    CompressedSearch,
    ExactSearch,
    compressed_file,
    make_search,
    pick_backend,
)

COUNT, DIM = 12_000, load_word_space(DEFAULT_MODEL_DIR).dim
CHEAP = "IVF{lists}_HNSW32,PQ10np"


def clustered(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(100, DIM))
    vectors = centres[rng.integers(0, 100, count)] + 0.8 * rng.normal(size=(count, DIM))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def gallery(tmp_path_factory) -> Path:
    """A gallery index of COUNT vectors (by the shipped model's fingerprint, so the server
    opens it), with captions, and a compressed search index already built for it."""
    folder = tmp_path_factory.mktemp("large")
    vectors = clustered(COUNT, seed=1)
    items = [Item(i + 1, i, f"photos/{i:05d}.jpg", 1000, 0, f"photo {i}") for i in range(COUNT)]
    write_generation(folder, root=Path("/photos"), model_fingerprint=model_fingerprint(
        DEFAULT_MODEL_DIR), items=items, vectors=vectors, skipped=[], next_id=COUNT + 1,
        caption_vectors=clustered(COUNT, seed=2))
    opened = Gallery(folder)
    CompressedSearch(opened.vectors, compressed_file(opened.search_cache()), factory=CHEAP)
    return folder


def test_compressed_search_reads_codes_from_disk_and_ranks_exactly(gallery):
    opened = Gallery(gallery)
    index_file = compressed_file(opened.search_cache())
    built = index_file.stat().st_mtime_ns
    search = CompressedSearch(opened.vectors, index_file)
    assert index_file.stat().st_mtime_ns == built  # opened from its file, not built again
    lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(search.index).invlists)
    assert type(lists).__name__ == "OnDiskInvertedLists"  # the codes stay on disk (mmap)

    exact = ExactSearch(np.asarray(opened.vectors))
    queries = clustered(40, seed=3)
    overlap = [len(set(search.search(q, 10).rows) & set(exact.search(q, 10).rows)) / 10
               for q in queries]
    assert np.mean(overlap) >= 0.9
    hits = search.search(queries[0], 10)
    assert np.allclose(hits.scores, np.asarray(opened.vectors)[hits.rows] @ queries[0],
                       atol=1e-5)  # re-scored against the exact vectors, best first
    assert np.all(np.diff(hits.scores) <= 0)
    kept = search.search(queries[0], 10, exclude={int(hits.rows[0])})
    assert int(hits.rows[0]) not in kept.rows.tolist() and len(kept.rows) == 10
    assert len(search.search(queries[0], 300).rows) == 300  # more than it re-ranks


def test_the_server_picks_the_compressed_search_by_size_or_flag(gallery):
    assert pick_backend(EXACT_UP_TO, "auto") == "exact"
    assert pick_backend(COMPRESS_FROM, "auto") == "faiss"
    assert pick_backend(COMPRESS_FROM + 1, "auto") == "compressed"
    assert pick_backend(10, "compressed") == "compressed"
    with pytest.raises(ValueError, match="10,000 images at least"):
        make_search(clustered(500, seed=4), "compressed", gallery / "small.index")

    cache = Gallery(gallery).search_cache()
    built = compressed_file(cache).stat().st_mtime_ns
    app = load_app(DEFAULT_MODEL_DIR, gallery, backend="compressed", caption_weight=0)
    assert isinstance(app.retriever.search, CompressedSearch)
    assert compressed_file(cache).stat().st_mtime_ns == built  # the file built above, opened
    assert not cache.exists()  # and no index of another kind made in its place
    answer = app.retriever.answer("a dog on the beach", k=12)
    assert len(answer.hits) == 12 and all(hit.path.startswith("photos/") for hit in answer.hits)


def test_a_large_captioned_gallery_blends_into_a_mapped_file(gallery):
    opened = Gallery(gallery)
    in_memory = opened.search_vectors(caption_weight=1.0)
    on_disk = opened.search_vectors(caption_weight=1.0, in_memory_up_to=1000)
    assert isinstance(on_disk, np.memmap) and not isinstance(in_memory, np.memmap)
    assert (gallery / f"blend-{opened.generation}-c1.npy").exists()
    assert np.allclose(np.asarray(on_disk), in_memory, atol=1e-6)
