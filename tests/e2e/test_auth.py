"""Access tokens: `python -m server --token` on loopback, and `--host 0.0.0.0` without one.

Without the token a client gets the page's files and "ok" from /health, never a picture, the
gallery's size or the WebSocket (so no query and no upload); with it, all of it. Clients that
stand for different machines connect from different loopback addresses, as in test_limits.py.
The log must never hold a token the user chose.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import (
    ACCESS_TOKEN,
    GUARDED_CAP,
    REPO,
    RunningServer,
    start_server,
    stop_server,
)
from tests.e2e.test_http import Response, exchange, request, responses
from tests.e2e.test_limits import ask, open_client


def get(server: RunningServer, target: str, address: str = "127.0.0.1") -> Response:
    return responses(exchange(server.port, request("GET", target), address=address), ["GET"])[0]


def refused_handshake(url: str, address: str = "127.0.0.1") -> int:
    """The HTTP status a WebSocket handshake is refused with."""
    with pytest.raises(InvalidStatus) as refused:
        connect(url, source_address=(address, 0), open_timeout=10)
    return refused.value.response.status_code


def test_without_the_token_nothing_of_the_gallery_is_given(guarded_server, ids, sample_gallery):
    cat = sample_gallery.photos["cat"].read_bytes()
    for token in ("", "?token=wrong", f"?token={ACCESS_TOKEN}&token={ACCESS_TOKEN}"):
        assert refused_handshake(guarded_server.ws_url + token, "127.0.1.1") == 401
        status, headers, body = get(guarded_server, f"/images/{ids['cat']}{token}", "127.0.1.1")
        assert status == 401 and cat not in body and "www-authenticate" in headers
    assert json.loads(get(guarded_server, "/health")[2]) == {"ok": True, "token": "required"}
    assert get(guarded_server, "/images/99999")[0] == 401  # not even whether an image exists
    for page_file in ("/", "/page.js", "/terms.js", "/style.css"):  # they hold no pictures
        assert get(guarded_server, page_file)[0] == 200


def test_an_upload_sent_without_the_token_is_dropped(guarded_server, sample_gallery):
    """The handshake and an upload frame in one write: a 401, then the connection closes (after
    the rest is read and dropped: closing on unread bytes would reset the 401 away)."""
    photo = sample_gallery.photos["cat"].read_bytes() + bytes(4 << 20)
    frame = bytes([0x82, 0x80 | 127]) + len(photo).to_bytes(8, "big") + bytes(4) + photo
    handshake = (f"GET /ws HTTP/1.1\r\nHost: localhost:{guarded_server.port}\r\n"
                 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n").encode()
    ((status, _, body),) = responses(exchange(guarded_server.port, handshake + frame), ["GET"])
    assert status == 401 and b"access token" in body


def test_with_the_token_everything_works(guarded_server, ids, sample_gallery):
    client = open_client(guarded_server, "127.0.1.2", token=ACCESS_TOKEN)
    assert ask(client, {"type": "query", "q": "cat"})["results"][0]["id"] == ids["cat"]
    uploaded = ask(client, sample_gallery.photos["cat"].read_bytes())
    assert uploaded["type"] == "uploaded", uploaded
    assert ask(client, {"type": "query", "q": uploaded["term"]})["results"][0]["id"] == ids["cat"]
    client.close()
    status, headers, body = get(guarded_server, f"/images/{ids['cat']}?token={ACCESS_TOKEN}")
    assert status == 200 and body == sample_gallery.photos["cat"].read_bytes()
    assert headers["referrer-policy"] == "no-referrer" and "private" in headers["cache-control"]
    health = json.loads(get(guarded_server, f"/health?token={ACCESS_TOKEN}")[2])
    assert health == {"ok": True, "images": len(ids)}
    link = f"http://localhost:{guarded_server.port}/#token=<the token>"
    assert f"access token required: open {link}" in guarded_server.log()


def timed(server: RunningServer, target: str, address: str) -> tuple[int, float]:
    started = time.monotonic()
    status = get(server, target, address)[0]
    return status, time.monotonic() - started


def test_wrong_tokens_from_one_address_are_slowed_and_others_are_not(guarded_server):
    wrong, right = "/health?token=wrong", f"/health?token={ACCESS_TOKEN}"
    for _ in range(6):  # 5 are free (typos, an old link); the 6th pauses the address 1 s
        status, seconds = timed(guarded_server, wrong, "127.0.2.1")
        assert status == 401 and seconds < 0.5
    status, seconds = timed(guarded_server, right, "127.0.2.2")  # another address: at once
    assert status == 200 and seconds < 0.5
    status, seconds = timed(guarded_server, wrong, "127.0.2.1")  # waits out the pause; 2 s more
    assert status == 401 and 0.7 < seconds < 1.5
    status, seconds = timed(guarded_server, right, "127.0.2.1")  # the right one waits too
    assert status == 200 and 1.7 < seconds < 2.6
    status, seconds = timed(guarded_server, wrong, "127.0.2.1")  # and it forgave the address
    assert status == 401 and seconds < 0.5


def test_what_waits_out_a_pause_is_bounded_by_the_connection_cap(guarded_server):
    for _ in range(6):
        get(guarded_server, "/health?token=wrong", "127.0.3.1")
    waiting = []
    for _ in range(GUARDED_CAP):  # each holds a connection while it waits
        raw = socket.create_connection(("127.0.0.1", guarded_server.port), timeout=10,
                                       source_address=("127.0.3.1", 0))
        raw.sendall(request("GET", "/health?token=wrong"))
        waiting.append(raw)
    time.sleep(0.2)
    status, seconds = timed(guarded_server, "/health?token=wrong", "127.0.3.1")
    assert status == 503 and seconds < 0.5  # one more is refused at once, not kept
    for raw in waiting:
        raw.close()


def test_a_bad_token_file_stops_the_server_at_once(tmp_path):
    empty = tmp_path / "token"
    empty.write_text("\n")
    ended = subprocess.run([sys.executable, "-m", "server", "--token-file", str(empty),
                            "--port", "1"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert ended.returncode == 1 and f"the token file {empty} is empty" in ended.stderr


def test_on_every_interface_a_token_is_made_and_only_its_link_gets_in(sample_gallery, tmp_path):
    running = start_server(sample_gallery.index, tmp_path / "server.log",
                           flags=["--host", "0.0.0.0"])
    try:
        link = re.search(r"serving \d+ images on http://([^/\s]+)/#token=([\w-]+)",
                         running.log())
        assert link, running.log()
        host, token = link.groups()
        assert host != f"0.0.0.0:{running.port}" and len(token) >= 32
        assert refused_handshake(running.ws_url) == 401
        assert get(running, "/images/1")[0] == 401
        assert json.loads(get(running, "/health")[2]) == {"ok": True, "token": "required"}
        assert get(running, f"/images/1?token={token}")[0] == 200
        client = open_client(running, token=token)
        assert ask(client, {"type": "query", "q": "cat"})["type"] == "results"
        client.close()
        if re.fullmatch(r"[\d.]+:\d+", host):  # the machine's address, as a phone reaches it
            with connect(f"ws://{host}/ws?token={token}", origin=f"http://{host}") as phone:
                assert json.loads(phone.recv(timeout=10))["type"] == "hello"
    finally:
        stop_server(running)
    assert running.log().count(token) == 1  # in the link, and nowhere else


def test_no_auth_must_be_said_and_is_logged(sample_gallery, tmp_path):
    running = start_server(sample_gallery.index, tmp_path / "server.log",
                           flags=["--host", "0.0.0.0", "--no-auth"])
    try:
        assert get(running, "/images/1")[0] == 200
        assert "#token=" not in running.log()
        assert "--no-auth: anyone who can reach port" in running.log()
    finally:
        stop_server(running)
