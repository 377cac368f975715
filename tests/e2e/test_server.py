"""The query server end to end: `python -m server` on loopback, a real WebSocket client.

Every bad input of the protocol is sent on one connection, each must get an error reply, and a
good query must still work after it; at the end the server's log must hold no traceback.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket

import numpy as np
import pytest
from PIL import Image
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect

from server.samples import SAMPLE_PHOTOS
from server.text import tokenize
from tests.conftest import page_key, start_server, stop_server

ISSUE_SEED = ["people+park", "bike-park", "beach+sunrise", "car-yellow", "cold-snow",
              "train-car", "travel+paint", "fish+food", "[IMG_1]+park", "[IMG_3]-dog",
              "[IMG_1]+[IMG_10]", "[IMG_1]+park+park+park"]


class Client:
    def __init__(self, url: str, **options):
        self._context = connect(url, **options)
        self.connection = self._context.__enter__()
        self.hello = json.loads(self.connection.recv(timeout=10))

    def send(self, message: str | bytes | dict) -> dict:
        self.connection.send(json.dumps(message) if isinstance(message, dict) else message)
        return json.loads(self.connection.recv(timeout=30))

    def query(self, text: str, **fields) -> dict:
        return self.send({"type": "query", "q": text, **fields})

    def close(self) -> None:
        self._context.__exit__(None, None, None)


@pytest.fixture
def client(server):
    opened = Client(server.ws_url)
    yield opened
    opened.close()


@pytest.fixture
def tuxpaint(tuxpaint_server):
    opened = Client(tuxpaint_server.ws_url)
    yield opened
    opened.close()


def assert_still_works(client: Client) -> None:
    reply = client.query("cat")
    assert reply["type"] == "results" and reply["results"], reply


def test_hello_names_the_gallery_and_how_to_show_it(client, sample_gallery):
    assert client.hello["type"] == "hello"
    gallery = client.hello["gallery"]
    assert gallery["count"] == len(sample_gallery.photos)
    assert gallery["name"] == "index" and gallery["title"] == "Photos"  # the image folder's
    assert gallery["fit"] == "cover"  # photos: cropped to square tiles
    assert client.hello["limits"]["uploads"] == 16


def test_the_examples_run_as_written_and_find_what_they_say(client):
    examples = client.hello["examples"]
    assert len(examples) == 8
    assert "people+park" not in examples  # no caption says people or park: it would show noise
    for example in examples:
        reply = client.query(example, k=3)
        assert reply["corrections"] == [] and reply["query"] == example
        added = [w for term in reply["terms"] if term["sign"] == "+" for w in term["used"]]
        top = set(tokenize(reply["results"][0]["caption"]))
        assert set(added) <= top, (example, reply["results"][0])


def test_the_gallery_words_are_caption_words_seen_in_the_pictures(client):
    words = client.hello["gallery_examples"]
    captions = {w for _, caption in SAMPLE_PHOTOS.values() for w in tokenize(caption)}
    assert len(words) == 8 and set(words) <= captions
    assert words[:3] == ["wall", "brick", "brown"]  # "wall" is in two captions, then a-z
    assert "camera" not in words  # in two captions, but the camera is small in both pictures


def test_clip_art_is_shown_whole_and_offered_for_what_it_shows(tuxpaint):
    gallery = tuxpaint.hello["gallery"]
    assert gallery["title"] == "Tux Paint stamps" and gallery["fit"] == "contain"
    examples, words = tuxpaint.hello["examples"], tuxpaint.hello["gallery_examples"]
    assert "people+park" not in examples and "flower" in examples
    assert "car" in words and "flower" in words
    # in many captions ("called a penny", "Two flowers"), but naming nothing one can see
    assert not {"called", "one", "two"} & set(words)
    for example in examples:
        top = tuxpaint.query(example, k=1)["results"][0]["caption"]
        added = example.split("-")[0].split("+")
        assert all(word in tokenize(top) or f"{word}s" in tokenize(top) for word in added), \
            (example, top)


def test_describe_gives_an_images_caption_and_nearest_words(client, ids):
    reply = client.send({"type": "describe", "image": ids["cat"], "id": 4})
    assert reply["type"] == "described" and reply["id"] == 4 and reply["image"] == ids["cat"]
    assert reply["caption"] == "a brown cat looking at the camera"
    assert reply["url"] == f"/images/{ids['cat']}"
    words = [w for w, _ in reply["nearest_words"]]
    assert len(words) == 8 and "cat" in words[:3]
    scores = [s for _, s in reply["nearest_words"]]
    assert scores == sorted(scores, reverse=True)
    picture = [w for w, _ in reply["picture_words"]]  # the picture alone, without its caption
    assert len(picture) == 8 and picture != words
    assert len(client.send({"type": "describe", "image": ids["cat"], "k": 3})[
        "nearest_words"]) == 3
    assert client.send({"type": "describe", "image": 99999})["code"] == "bad_query"
    assert client.send({"type": "describe"})["code"] == "bad_request"
    assert client.send({"type": "describe", "image": "1"})["code"] == "bad_request"


@pytest.mark.parametrize("query", ISSUE_SEED)
def test_every_seed_example_gets_ranked_images(client, query):
    reply = client.query(query, k=5, id=7)
    assert reply["type"] == "results", reply
    assert reply["id"] == 7 and len(reply["results"]) == 5
    scores = [r["score"] for r in reply["results"]]
    assert scores == sorted(scores, reverse=True)
    for result in reply["results"]:
        assert result["url"] == f"/images/{result['id']}"
    assert reply["nearest_words"] and reply["ms"] >= 0


def test_browse_pages_through_the_gallery_by_key_in_id_order(client, ids):
    first = client.send({"type": "browse", "k": 5})
    assert first["type"] == "gallery" and first["total"] == len(ids)
    assert [r["id"] for r in first["results"]] == [1, 2, 3, 4, 5]  # [IMG_n]: the n-th image
    assert first["after"] == 0 and first["next"] == 5
    rest = client.send({"type": "browse", "after": first["next"], "k": 100})
    assert [r["id"] for r in rest["results"]] == sorted(ids.values())[5:]
    assert rest["next"] is None  # the last page
    exact = client.send({"type": "browse", "after": 0, "k": len(ids)})
    assert len(exact["results"]) == len(ids) and exact["next"] is None
    for bad in ({"after": -1}, {"after": "5"}, {"offset": 5}):
        assert client.send({"type": "browse", **bad})["code"] == "bad_request"


def test_words_find_their_pictures(client, ids):
    for word, name in [("cat", "cat"), ("coffee", "coffee"), ("grass", "grass"),
                       ("camera", "camera"), ("flag", "astronaut"), ("moon", "moon")]:
        top = [r["id"] for r in client.query(word, k=3)["results"]]
        assert ids[name] in top, (word, top)


def test_mixed_signs_with_two_images_leave_both_out(client, ids):
    query = f"[IMG_{ids['cat']}]-[IMG_{ids['coffee']}]+grass-moon"
    reply = client.query(query, k=len(ids))
    returned = [r["id"] for r in reply["results"]]
    assert ids["cat"] not in returned and ids["coffee"] not in returned
    assert len(returned) == len(ids) - 2
    assert [t["sign"] for t in reply["terms"]] == ["+", "-", "+", "-"]
    kept = [r["id"] for r in client.query(query, k=len(ids), exclude_query_images=False)[
        "results"]]
    assert ids["cat"] in kept[:3] and ids["coffee"] in kept[-3:]  # added near top, subtracted last


def test_weights_and_repetition_are_the_same_query(client, ids):
    repeated = client.query(f"[IMG_{ids['cat']}]+coffee+coffee+coffee", k=6)
    weighted = client.query(f"[IMG_{ids['cat']}]+3*coffee", k=6)
    assert [r["id"] for r in repeated["results"]] == [r["id"] for r in weighted["results"]]
    assert np.allclose([r["score"] for r in repeated["results"]],
                       [r["score"] for r in weighted["results"]], atol=1e-4)
    light = client.query(f"[IMG_{ids['cat']}]+0.1*coffee", k=6)
    assert [r["id"] for r in light["results"]] != [r["id"] for r in weighted["results"]]


def test_an_upload_is_a_term_of_later_queries(client, sample_gallery, ids):
    uploaded = client.send(sample_gallery.photos["coffee"].read_bytes())
    assert uploaded["type"] == "uploaded" and uploaded["term"] == "[UPLOAD_1]"
    reply = client.query("[UPLOAD_1]", k=3)
    assert reply["results"][0]["id"] == ids["coffee"]  # the same photo, embedded twice
    picture_only = client.query("[UPLOAD_1]", k=3, exclude_query_images=False)
    assert picture_only["results"][0]["score"] > reply["results"][1]["score"] + 0.1
    second = client.send(sample_gallery.photos["rocket"].read_bytes())
    assert second["term"] == "[UPLOAD_2]"
    mixed = client.query("[UPLOAD_2]-0.5*[UPLOAD_1]", k=3)
    assert mixed["results"][0]["id"] == ids["rocket"]
    other = Client(f"ws://{client.connection.request.headers['Host']}/ws")
    assert other.query("[UPLOAD_1]")["code"] == "bad_query"  # uploads belong to a connection
    other.close()


def test_a_misspelling_is_corrected_and_said(client):
    reply = client.query("coffe+rockett")
    assert reply["type"] == "results"
    assert reply["corrections"] == [{"from": "coffe", "to": "coffee"},
                                    {"from": "rockett", "to": "rocket"}]
    assert reply["terms"][0]["used"] == ["coffee"]
    assert reply["query"] == "coffee+rocket" and reply["q"] == "coffe+rockett"
    unknown = client.query("dog+qzxv", id=3)
    assert unknown["code"] == "bad_query" and "Did you mean" in unknown["error"]
    # the word and the suggestions as fields, for the page's links
    assert unknown["id"] == 3 and unknown["word"] == "qzxv"
    assert len(unknown["suggestions"]) == 3
    assert ", ".join(unknown["suggestions"]) in unknown["error"]
    assert "word" not in client.query("-cat")  # other errors name no word


def _bomb() -> bytes:
    out = io.BytesIO()
    Image.new("1", (10000, 10000)).save(out, "PNG")  # 100 Mpx in about 12 KB
    return out.getvalue()


BAD_INPUTS = [
    ("malformed JSON", '{"type": "query", "q": ', "bad_json"),
    ("a JSON list", '["query", "cat"]', "bad_json"),
    ("unknown type", {"type": "delete", "q": "cat"}, "bad_type"),
    ("no type", {"q": "cat"}, "bad_type"),
    ("no query text", {"type": "query"}, "bad_request"),
    ("query not text", {"type": "query", "q": ["cat"]}, "bad_request"),
    ("k out of range", {"type": "query", "q": "cat", "k": 100000}, "bad_request"),
    ("k not a number", {"type": "query", "q": "cat", "k": "5"}, "bad_request"),
    ("binary garbage", bytes(range(256)) * 4, "bad_upload"),
    ("invalid UTF-8 JSON", b'{"type": "query", "q": "\xff\xfe"}', "bad_json"),
    ("empty query", {"type": "query", "q": "  "}, "bad_query"),
    ("only negative", {"type": "query", "q": "-cat-dog"}, "bad_query"),
    ("unknown word", {"type": "query", "q": "xqzvwk"}, "bad_query"),
    ("unknown id", {"type": "query", "q": "[IMG_99999]+cat"}, "bad_query"),
    ("unknown upload", {"type": "query", "q": "[UPLOAD_9]"}, "bad_query"),
    ("too many terms", {"type": "query", "q": "+".join(["cat"] * 40)}, "bad_query"),
    ("too many characters", {"type": "query", "q": "cat " * 200}, "bad_query"),
    ("terms that cancel", {"type": "query", "q": "cat-cat"}, "bad_query"),
    ("too many misspellings", {"type": "query", "q": "+".join(["coffe"] * 9)}, "bad_query"),
    ("exclude not a bool", {"type": "query", "q": "cat", "exclude_query_images": "no"},
     "bad_request"),
    ("oversized message", json.dumps({"type": "query", "q": "x" * 100_000}), "too_large"),
    ("upload not an image", b"GIF89a this is not really a gif", "bad_upload"),
    ("upload too large", b"\xff\xd8" + bytes(11 * 2**20), "bad_upload"),
    ("decompression bomb", _bomb(), "bad_upload"),
]


@pytest.mark.parametrize(("what", "message", "code"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gets_a_clear_error_and_nothing_else_changes(client, what, message, code):
    client.query("cat")
    before = client.query("cat")
    reply = client.send(message)
    assert reply["type"] == "error" and reply["code"] == code, (what, reply)
    assert reply["error"] and "Traceback" not in reply["error"]
    after = client.query("cat")
    assert after["results"] == before["results"]


def test_parse_reads_a_query_without_running_it(client, ids):
    cat = f"[IMG_{ids['cat']}]"
    reply = client.send({"type": "parse", "q": f"2*Cat + {cat.lower()} - ", "id": 5})
    assert reply == {
        "type": "parsed", "id": 5, "q": f"2*Cat + {cat.lower()} - ", "query": None,
        "error": "a term is missing at the end",
        "terms": [{"sign": "+", "text": "Cat", "weight": 2.0, "kind": "words", "words": ["cat"]},
                  {"sign": "+", "text": cat.lower(), "weight": 1.0, "kind": "image",
                   "ref": ids["cat"]}]}
    whole = client.send({"type": "parse", "q": f"2*Cat+{cat}"})
    assert whole["error"] is None and whole["query"] == f"2*cat+{cat}"
    assert client.send({"type": "parse"})["code"] == "bad_request"


def test_invalid_utf8_text_frame_closes_only_that_connection(server, client):
    raw = socket.create_connection(("127.0.0.1", server.port))
    # a hand-made handshake and a masked text frame holding invalid UTF-8
    raw.sendall(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n")
    assert b"101" in raw.recv(4096).split(b"\r\n")[0]
    payload, mask = b"\xff\xfe\xfd", b"\x01\x02\x03\x04"
    raw.sendall(bytes([0x81, 0x80 | len(payload)]) + mask +
                bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    frames = b""
    while b"\x88" not in frames:
        chunk = raw.recv(4096)
        if not chunk:
            break
        frames += chunk
    raw.close()
    assert b"\x88" in frames and b"\x03\xef" in frames  # close frame, code 1007 (RFC 6455)
    assert_still_works(client)


def test_a_message_beyond_the_protocol_limit_closes_only_that_connection(server, client):
    big = Client(server.ws_url, max_size=None)
    with pytest.raises(ConnectionClosedError):
        big.send(bytes(17 * 2**20))
    assert_still_works(client)


def test_origins_are_checked(server):
    key = f"?key={page_key(server)}"
    for origin, target in ((None, ""), ("null", key), (f"http://localhost:{server.port}", "")):
        allowed = Client(server.ws_url + target, origin=origin)
        assert allowed.hello["type"] == "hello"
        allowed.close()
    for origin, target in (("http://evil.example", ""), ("http://localhost.evil.example", ""),
                           ("null", ""), ("null", "?key=guess"),
                           ("http://127.0.0.1:8000", key), ("http://localhost:8000", "")):
        with pytest.raises(InvalidStatus, match="403"):
            Client(server.ws_url + target, origin=origin)


def _http_get(port: int, path: str, host: str = "localhost") -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        response = b""
        while chunk := raw.recv(65536):
            response += chunk
            head, _, body = response.partition(b"\r\n\r\n")
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")]
            if length and len(body) >= length[0]:
                break
    return int(response.split(b" ")[1]), body


def test_images_are_served_and_nothing_else_on_disk(server, sample_gallery, ids):
    status, body = _http_get(server.port, f"/images/{ids['cat']}")
    assert status == 200 and body == sample_gallery.photos["cat"].read_bytes()
    assert _http_get(server.port, f"/images/{ids['cat']}", f"127.0.0.1:{server.port}")[0] == 200
    # DNS rebinding: a site whose name resolves to 127.0.0.1 must not read the gallery
    assert _http_get(server.port, f"/images/{ids['cat']}", "evil.example")[0] == 421
    for path in ["/../../../../etc/passwd", "/images/../../../etc/passwd",
                 "/%2e%2e/%2e%2e/etc/passwd", "/images/%2e%2e%2fcat.txt", "/images/-1",
                 "/images/99999", "/cat.txt",
                 "/../server/app.py", "/web/../server/app.py", "//etc/passwd",
                 "/images/1/../../index", "/models/image_head.pt", "/index.html/../README.md"]:
        status, body = _http_get(server.port, path)
        assert status == 404, path
        assert b"root:" not in body


def test_the_log_holds_no_traceback_for_client_mistakes(server, client):
    for _, message, _ in BAD_INPUTS[:12]:
        client.send(message)
    assert_still_works(client)
    assert "Traceback" not in server.log()
    assert "loaded" in server.log() and "serving" in server.log()


def test_without_index_it_serves_the_index_built_last(sample_gallery, tmp_path, monkeypatch):
    monkeypatch.setenv("WORDPIX_DATA", str(tmp_path / "runs"))  # the data directory
    indexes = tmp_path / "runs" / "index"
    for name in ("newer", "older"):
        shutil.copytree(sample_gallery.index, indexes / name)
    os.utime(indexes / "older" / "manifest.json", ns=(1, 1))  # built long ago
    running = start_server(None, tmp_path / "server.log", cwd=tmp_path)  # no --index
    try:
        client = Client(running.ws_url)
        assert client.hello["gallery"]["name"] == "newer"
        assert_still_works(client)
        client.close()
    finally:
        stop_server(running)
    assert "runs/index/newer, the index built last" in running.log()


def test_without_any_index_it_starts_and_says_how_to_build_one(tmp_path, monkeypatch):
    monkeypatch.setenv("WORDPIX_DATA", str(tmp_path / "runs"))
    running = start_server(None, tmp_path / "server.log", cwd=tmp_path)
    try:
        client = Client(running.ws_url)
        assert client.hello["gallery"] is None and "make demo" in client.hello["setup"]
        reply = client.query("cat", id=5)
        assert reply["code"] == "no_gallery" and reply["id"] == 5
        assert "make demo" in reply["error"]
        assert client.send(b"\x89PNG not really")["code"] == "no_gallery"
        client.close()
        status, page = _http_get(running.port, "/")
        assert status == 200 and b"page.js" in page
        assert _http_get(running.port, "/images/1")[0] == 404
        assert json.loads(_http_get(running.port, "/health")[1]) == {"ok": True, "images": 0}
    finally:
        stop_server(running)
    assert f"no gallery index in {tmp_path / 'runs' / 'index'}" in running.log()
    assert "Traceback" not in running.log()
