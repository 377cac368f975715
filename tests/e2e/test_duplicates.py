"""Near duplicates over a real server: planted copies of real photos (resized, recompressed,
cropped, brightened) indexed among other photos by the real indexer, then listed by the
`duplicates` message; an index made without appearance vectors says how to get them, and the
indexer adds them keeping every id.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from server.artifacts import DEFAULT_MODEL_DIR, load_word_space
from server.datasets import SHARED_FLICKR8K, read_flickr8k
from server.samples import COPY_KINDS, plant_copies
from server.serve.duplicates import DUPLICATES_FILE
from server.serve.encoder import ImageEncoder
from server.serve.gallery import Gallery
from server.serve.indexer import IndexOptions, build_index, scan_folder
from tests.conftest import start_server, stop_server
from tests.e2e.test_server import Client

ORIGINALS, OTHERS = 10, 50


def index(folder: Path, index_dir: Path, model: Path = DEFAULT_MODEL_DIR):
    return build_index(scan_folder(folder), folder, index_dir, ImageEncoder(model),
                       words=load_word_space(), options=IndexOptions(progress=False))


def planted_library(folder: Path, originals: int = ORIGINALS, others: int = OTHERS
                    ) -> list[tuple[str, str]]:
    """Dev photos in `folder`, the first `originals` of them with their planted copies:
    (original, copy) paths relative to the folder."""
    if not SHARED_FLICKR8K.is_dir():
        pytest.skip(f"no Flickr8k at {SHARED_FLICKR8K}")
    (folder / "photos").mkdir(parents=True)
    dev = [record.image for record in read_flickr8k(SHARED_FLICKR8K, "dev")]
    chosen = [dev[i] for i in np.random.default_rng(1).permutation(len(dev))[:originals + others]]
    for path in chosen:
        shutil.copy(path, folder / "photos" / path.name)
    planted = plant_copies([folder / "photos" / path.name for path in chosen[:originals]],
                           folder / "copies")
    return [(str(o.relative_to(folder)), str(c.relative_to(folder))) for o, c in planted]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[Path, list[tuple[str, str]]]:
    folder = tmp_path_factory.mktemp("duplicates") / "photos"
    return folder, planted_library(folder)


def model_without_duplicates(folder: Path) -> Path:
    """The shipped model less its appearance model (the same fingerprint: the same vectors)."""
    folder.mkdir()
    for path in DEFAULT_MODEL_DIR.iterdir():
        if path.name != DUPLICATES_FILE:
            (folder / path.name).symlink_to(path)
    return folder


def all_groups(client: Client, k: int = 3) -> tuple[list[dict], list[dict]]:
    """Every group, page by page; and the replies."""
    groups, replies, after = [], [], 0
    while after is not None:
        reply = client.send({"type": "duplicates", "after": after, "k": k})
        assert reply["type"] == "duplicates", reply
        replies.append(reply)
        groups += reply["groups"]
        after = reply["next"]
    return groups, replies


def test_planted_copies_are_grouped_with_their_originals(photos, tmp_path):
    folder, planted = photos
    index_dir = tmp_path / "index"
    report = index(folder, index_dir, model_without_duplicates(tmp_path / "model"))
    assert report.total == ORIGINALS + OTHERS + len(planted)
    ids = {item.path: item.id for item in Gallery(index_dir).all_items()}
    running = start_server(index_dir, tmp_path / "server.log")
    try:
        client = Client(running.ws_url)
        assert client.hello["gallery"]["duplicates"] is False
        reply = client.send({"type": "duplicates"})
        assert reply["groups"] == [] and "scripts.index" in reply["setup"], reply
        client.close()
    finally:
        stop_server(running)

    index(folder, index_dir)  # the shipped model: appearance vectors added, ids kept
    assert {item.path: item.id for item in Gallery(index_dir).all_items()} == ids
    running = start_server(index_dir, tmp_path / "server2.log")
    try:
        client = Client(running.ws_url)
        assert client.hello["gallery"]["duplicates"] is True
        groups, replies = all_groups(client)
        client.close()
    finally:
        stop_server(running)
    path_of = {image_id: path for path, image_id in ids.items()}
    members = [{path_of[r["id"]] for r in group["results"]} for group in groups]
    assert all(group["count"] == len(group["results"]) for group in groups)  # all shown here
    assert replies[0]["total"] == len(groups) and replies[-1]["next"] is None
    assert [g["count"] for g in groups] == sorted((g["count"] for g in groups), reverse=True)
    group_of = {path: number for number, paths in enumerate(members) for path in paths}
    together = [group_of.get(copy, -1) == group_of.get(original, -2)
                for original, copy in planted]
    print(f"{sum(together)} of {len(planted)} copies grouped with their original "
          f"({', '.join(COPY_KINDS)})")
    assert sum(together) >= 0.95 * len(planted)
    # no group holds two different photos: every member is one original or its copies
    source = {copy: original for original, copy in planted}
    for paths in members:
        assert len({source.get(path, path) for path in paths}) == 1, paths
