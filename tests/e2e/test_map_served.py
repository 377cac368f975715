"""The gallery's map over a real server and real indexer runs: laid out at indexing, kept
where images stay when a few change, served compactly with labelled regions."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from server.samples import write_large_photos, write_sample_gallery
from server.serve.gallery import Gallery
from server.serve.gallery_map import MAP_FILE, load_map, unpack_layout, words_per_region
from tests.conftest import start_server, stop_server
from tests.e2e.test_photo_library import index
from tests.e2e.test_server import Client


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    root = tmp_path_factory.mktemp("mapped")
    write_sample_gallery(root / "photos")
    write_large_photos(root / "photos" / "phone", 20, size=(640, 480))
    index(root / "photos", root / "index")
    return root


def test_the_map_is_made_at_indexing_and_kept_where_images_stay(mapped, tmp_path):
    shutil.copytree(mapped, tmp_path / "copy")
    folder, index_dir = tmp_path / "copy" / "photos", tmp_path / "copy" / "index"
    first = load_map(index_dir)
    assert first is not None and first.generation == Gallery(index_dir).generation
    assert len(first.ids) == 32 and np.all((first.xy >= 0) & (first.xy <= 1))
    (folder / "moon.jpg").unlink()  # one of 32 gone, one new: the others stay put
    shutil.copy(folder / "cat.jpg", folder / "cat-again.jpg")
    index(folder, index_dir)
    second = load_map(index_dir)
    assert second is not None and second.generation == first.generation + 1
    before = dict(zip(first.ids.tolist(), first.xy.tolist(), strict=True))
    after = dict(zip(second.ids.tolist(), second.xy.tolist(), strict=True))
    assert len(after) == 32 and all(after[i] == before[i] for i in after if i in before)


def test_the_server_serves_the_map_with_labelled_regions(mapped, tmp_path):
    shutil.copytree(mapped / "index", tmp_path / "index")
    (tmp_path / "index" / MAP_FILE).unlink()  # an index made before maps: the server lays it out
    running = start_server(tmp_path / "index", tmp_path / "server.log")
    try:
        client = Client(running.ws_url)
        reply = client.send({"type": "map", "id": 3})
        again = client.send({"type": "map"})
        client.close()
    finally:
        stop_server(running)
    assert reply["type"] == "map" and reply["id"] == 3 and reply["count"] == 32
    ids, xy = unpack_layout(reply)
    gallery = Gallery(tmp_path / "index")
    assert sorted(ids.tolist()) == sorted(item.id for item in gallery.all_items())
    assert xy.shape == (32, 2) and np.all((xy >= 0) & (xy <= 1))
    assert len(reply["thumbs"]) == 32 and all(t.startswith("/thumbs/") for t in reply["thumbs"])
    levels = {region["level"] for region in reply["regions"]}
    assert levels == {0, 1, 2}
    assert all(region["label"] and 0 <= region["x"] <= 1 for region in reply["regions"])
    # the further words: as many as the level has (none here: regions of a photo or two)
    sizes = {level: np.mean([r["count"] for r in reply["regions"] if r["level"] == level])
             for level in levels}
    assert all(len(region["also"]) == words_per_region(region["level"],
                                                       sizes[region["level"]]) - 1
               and region["label"] not in region["also"] for region in reply["regions"])
    assert sum(r["count"] for r in reply["regions"] if r["level"] == 0) == 32
    assert again["ids"] == reply["ids"]  # made once
    assert (tmp_path / "index" / MAP_FILE).exists()  # and kept beside the index
