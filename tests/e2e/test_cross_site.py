"""No other web site may read the gallery: `python -m server` on loopback with its defaults, as
`make demo` runs it (no access token).

Any web page can make its requests carry `Origin: null` (a sandboxed frame, a `data:`
document), so `null` alone gets nothing: the WebSocket and `/images/<id>` want the page key the
server wrote beside index.html, which the page opened from disk loads and no site can read.
Pages on other ports of this machine are other sites. The page in Chromium (from disk with
nothing pasted, served by another site, in a sandboxed frame): tests/e2e/test_web_access.py.
"""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import REPO, RunningServer, page_key, start_server, stop_server
from tests.e2e.test_http import exchange, request, responses

KEYS = REPO / "web" / "keys"


def get(server: RunningServer, target: str, origin: str | None) -> tuple[int, dict, bytes]:
    extra = f"Origin: {origin}\r\n" if origin is not None else ""
    sent = request("GET", target, host=f"localhost:{server.port}", extra=extra)
    return responses(exchange(server.port, sent), ["GET"])[0]


def handshake_status(url: str, origin: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        connect(url, origin=origin, open_timeout=10)  # type: ignore[arg-type]
    return refused.value.response.status_code


def test_origin_null_without_the_key_gets_nothing(server, ids, sample_gallery):
    cat = sample_gallery.photos["cat"].read_bytes()
    for target in ("", "?key=", "?key=guess"):
        assert handshake_status(server.ws_url + target, "null") == 403
        status, headers, body = get(server, f"/images/{ids['cat']}{target}", "null")
        assert status == 403 and cat not in body
        assert "access-control-allow-origin" not in headers
    # what the refusal says is public: why (for the page to explain), nothing of the gallery
    status, headers, body = get(server, "/health", "null")
    assert status == 200 and b'"page": "refused"' in body and b"images" not in body
    assert headers["access-control-allow-origin"] == "null"


def test_origin_null_with_the_key_is_the_page_from_disk(server, ids, sample_gallery):
    key = page_key(server)
    with connect(f"{server.ws_url}?key={key}", origin="null") as client:  # type: ignore[arg-type]
        assert '"hello"' in client.recv(timeout=10)
    status, headers, body = get(server, f"/images/{ids['cat']}?key={key}", "null")
    assert status == 200 and body == sample_gallery.photos["cat"].read_bytes()
    assert headers["access-control-allow-origin"] == "null"


def test_a_page_on_another_port_of_this_machine_is_another_site(server, ids):
    for origin in ("http://localhost:8000", "http://127.0.0.1:3000", "http://[::1]:5173"):
        assert handshake_status(server.ws_url, origin) == 403
        status, headers, _ = get(server, f"/images/{ids['cat']}", origin)
        assert status == 403 and "access-control-allow-origin" not in headers
    own = f"http://localhost:{server.port}"
    status, headers, _ = get(server, f"/images/{ids['cat']}", own)
    assert status == 200 and headers["access-control-allow-origin"] == own


def test_the_key_is_never_served_and_is_new_at_every_start(sample_gallery, tmp_path):
    first = start_server(sample_gallery.index, tmp_path / "first.log")
    key_file = KEYS / f"{first.port}.js"
    key = page_key(first)
    for target in (f"/keys/{first.port}.js", f"/keys%2F{first.port}.js", f"/{first.port}.js"):
        status, _, body = get(first, target, None)
        assert status == 404 and key.encode() not in body
    stop_server(first)
    assert not key_file.exists()  # gone with the server
    again = start_server(sample_gallery.index, tmp_path / "again.log", port=first.port)
    try:
        assert page_key(again) != key
        assert handshake_status(f"{again.ws_url}?key={key}", "null") == 403  # the old one
    finally:
        stop_server(again)
