"""Whether the map's labels mean something, on Flickr8k dev (what the labelling was chosen on;
test is reported once by `python -m scripts.eval_map_labels --split test`): the map a real
server sends, and for the 10 most common caption nouns the label nearest their photos.
Prints the table (`pytest -s`)."""

from __future__ import annotations

import pytest

from server.artifacts import load_word_space
from server.datasets import SHARED_FLICKR8K
from server.learn.map_labels import WORDNET, index_pictures, label_table, print_table
from server.serve.gallery_map import unpack_layout
from tests.conftest import start_server, stop_server
from tests.e2e.test_server import Client

# dev reaches 8 on the shipped layout, 6.8 on average over five (docs/gallery-index.md); kept
# from falling below 4, the fewest of ten layouts: another machine's arithmetic lays the map
# out as another seed would (t-SNE), and faiss's k-means may cut its regions differently
AT_LEAST = 4


def test_labels_name_common_nouns_where_their_photos_lie(tmp_path):
    if not SHARED_FLICKR8K.is_dir() or not WORDNET.is_dir():
        pytest.skip("needs ../shared/datasets/flickr8k and Debian's wordnet-base")
    captions = index_pictures("dev", tmp_path / "index")
    running = start_server(tmp_path / "index", tmp_path / "server.log")
    try:
        client = Client(running.ws_url)
        reply = client.send({"type": "map"})
        client.close()
    finally:
        stop_server(running)
    ids, xy = unpack_layout(reply)
    table = label_table(captions, ids, xy, reply["regions"], load_word_space())
    print()
    print_table(table)
    assert len(table.rows) == 10 and AT_LEAST <= table.good <= table.possible
