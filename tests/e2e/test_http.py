"""HTTP on the server's port, byte by byte: `python -m server` on loopback and a raw socket.

Only GET and HEAD, exactly one Host naming this machine (the WebSocket handshake too),
pipelined requests answered in order, files streamed whole, and `/images/<id>` serving only the
very file that was indexed. The server's log must hold no traceback afterwards.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
from PIL import Image
from skimage import data as samples

from server.serve.encoder import ImageEncoder
from server.serve.gallery import Gallery
from server.serve.indexer import IndexOptions, build_index, scan_folder
from tests.conftest import start_server, stop_server

Response = tuple[int, dict[str, str], bytes]


def exchange(port: int, data: bytes, timeout: float = 20, address: str = "127.0.0.1") -> bytes:
    """Send `data` on a new connection from `address` (127.0.0.0/8 is all loopback), say that
    is all, and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                  source_address=(address, 0)) as raw:
        raw.sendall(data)
        raw.shutdown(socket.SHUT_WR)
        received = bytearray()
        while chunk := raw.recv(1 << 16):
            received += chunk
    return bytes(received)


def responses(data: bytes, methods: list[str]) -> list[Response]:
    """The responses in `data`, one per request method sent (a HEAD's has no body)."""
    found = []
    for method in methods:
        head, separator, data = data.partition(b"\r\n\r\n")
        assert separator, f"no response to the {method}"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip()
                   for name, _, value in (line.partition(":") for line in lines)}
        length = 0 if method == "HEAD" else int(headers["content-length"])
        found.append((int(status_line.split(" ")[1]), headers, data[:length]))
        data = data[length:]
    assert not data, f"bytes after the last response: {data[:80]!r}"
    return found


def request(method: str, path: str, host: str = "localhost", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


@pytest.fixture(scope="module")
def cat(sample_gallery) -> tuple[str, bytes]:
    item = next(i for i in Gallery(sample_gallery.index).all_items() if i.path == "cat.jpg")
    return f"/images/{item.id}", sample_gallery.photos["cat"].read_bytes()


def test_head_has_the_headers_of_get_and_no_body(server, cat):
    path, photo = cat
    (head, get) = responses(exchange(server.port, request("HEAD", path) + request("GET", path)),
                            ["HEAD", "GET"])
    assert head[0] == get[0] == 200 and head[2] == b"" and get[2] == photo
    assert head[1]["content-length"] == get[1]["content-length"] == str(len(photo))
    assert head[1]["content-type"] == "image/jpeg"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "TRACE", "OPTIONS", "PATCH",
                                    "get", "Head", "CONNECT"])
def test_only_get_and_head_are_served(server, method):
    ((status, headers, _),) = responses(exchange(server.port, request(method, "/")), ["GET"])
    assert status == 405 and headers["allow"] == "GET, HEAD"


def test_a_request_with_a_body_is_answered_and_the_body_dropped(server):
    body = b"x" * 200_000
    for method, status in (("POST", 405), ("GET", 400)):
        sent = request(method, "/", extra=f"Content-Length: {len(body)}\r\n") + body
        ((answer, headers, _),) = responses(exchange(server.port, sent), ["GET"])
        assert answer == status and headers["connection"] == "close"


def test_exactly_one_host_naming_this_machine(server):
    two = b"GET / HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n"
    none = b"GET / HTTP/1.1\r\n\r\n"
    for sent, status in ((two, 400), (none, 400), (request("GET", "/", "evil.example"), 421)):
        assert responses(exchange(server.port, sent), ["GET"])[0][0] == status
    assert "Traceback" not in server.log()


def test_pipelined_requests_are_answered_in_order(server, cat):
    path, photo = cat
    sent = (request("GET", "/health") + request("HEAD", "/") + request("GET", path) +
            request("GET", "/nowhere") + request("GET", "/health", extra="Connection: close\r\n")
            + request("GET", "/health"))  # after "close": never answered
    found = responses(exchange(server.port, sent), ["GET", "HEAD", "GET", "GET", "GET"])
    assert [status for status, _, _ in found] == [200, 200, 200, 404, 200]
    assert found[0][2].startswith(b'{"ok": true') and found[2][2] == photo


@pytest.mark.parametrize(("sent", "status"), [
    (b"GET /\r\n\r\n", 400),                                      # HTTP/0.9
    (b"GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", 505),
    (b"GET  / HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),         # two spaces
    (b"GET / HTTP/1.1\r\nHost localhost\r\n\r\n", 400),           # no colon
    (b"GET / HTTP/1.1\r\nHost: localhost\r\n folded\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost : localhost\r\n\r\n", 400),         # space before the colon
    (b"GET / HTTP/1.1\r\nHost: localhost\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431),
])
def test_malformed_requests_are_refused(server, sent, status):
    assert responses(exchange(server.port, sent), ["GET"])[0][0] == status


def test_the_websocket_handshake_checks_host_too(server):
    handshake = ("GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    for host, status in (("evil.example", b" 421 "), (f"localhost:{server.port}", b" 101 ")):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            raw.sendall(handshake.format(host).encode())
            assert status in raw.recv(4096).split(b"\r\n")[0]
    doubled = handshake.format("localhost").replace("Host: localhost\r\n",
                                                    "Host: localhost\r\nHost: localhost\r\n")
    assert responses(exchange(server.port, doubled.encode()), ["GET"])[0][0] == 400


def test_an_ip_address_names_this_machine_and_its_page_may_connect(server):
    """A phone opens http://192.168.1.5:9998/: an address cannot come from DNS rebinding (that
    needs a name), and the page served under it is the server's own origin."""
    handshake = ("GET /ws HTTP/1.1\r\nHost: {}\r\nOrigin: {}\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n")
    host = f"192.0.2.77:{server.port}"
    ((status, headers, _),) = responses(exchange(server.port, request("GET", "/", host)), ["GET"])
    assert status == 200 and headers["referrer-policy"] == "no-referrer"
    for origin, answer in ((f"http://{host}", b" 101 "), (f"http://192.0.2.78:{server.port}",
                                                          b" 403 ")):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            raw.sendall(handshake.format(host, origin).encode())
            assert answer in raw.recv(4096).split(b"\r\n")[0], origin


def test_a_large_file_is_streamed_whole_to_a_slow_reader(tmp_path, sample_gallery):
    web = tmp_path / "web"
    web.mkdir()
    big = os.urandom(1 << 20) * 6  # 6 MiB: many chunks of 256 KiB
    (web / "big.bin").write_bytes(big)
    running = start_server(sample_gallery.index, tmp_path / "server.log",
                           flags=["--web", str(web)])
    try:
        with socket.create_connection(("127.0.0.1", running.port), timeout=20) as raw:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
            raw.sendall(request("GET", "/big.bin"))
            received = bytearray()
            while len(received) < len(big) + 100 and (chunk := raw.recv(1 << 16)):
                received += chunk
                time.sleep(0.005)  # a reader slower than the server writes
        ((status, _, body),) = responses(bytes(received), ["GET"])
        assert status == 200 and body == big
    finally:
        stop_server(running)


def test_images_are_only_the_files_that_were_indexed(tmp_path, encoder_free_photos):
    """A file changed, a link re-pointed, a link out of the gallery: 404, never another file."""
    folder, index, outside = tmp_path / "gallery", tmp_path / "index", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    for name, pixels in encoder_free_photos.items():
        Image.fromarray(pixels).save(folder / f"{name}.jpg")
    Image.fromarray(encoder_free_photos["cat"]).save(outside / "elsewhere.jpg")
    (folder / "notes.txt").write_text("a secret that is not an image\n")
    (folder / "link.jpg").symlink_to(folder / "coffee.jpg")
    (folder / "escape.jpg").symlink_to(outside / "elsewhere.jpg")
    build_index(scan_folder(folder), folder, index, ImageEncoder(),
                options=IndexOptions(progress=False))
    ids = {item.path: item.id for item in Gallery(index).all_items()}
    running = start_server(index, tmp_path / "server.log")
    try:
        def get(name: str) -> Response:
            return responses(exchange(running.port, request("GET", f"/images/{ids[name]}")),
                             ["GET"])[0]

        assert get("cat.jpg")[0] == get("link.jpg")[0] == 200  # a link inside the gallery
        assert get("escape.jpg")[0] == 404  # indexed, but it resolves outside the gallery
        (folder / "link.jpg").unlink()
        (folder / "link.jpg").symlink_to(folder / "notes.txt")
        assert get("link.jpg")[0] == 404  # re-pointed: not the file that was indexed
        photo = folder / "cat.jpg"
        stat = photo.stat()
        photo.write_bytes(photo.read_bytes()[:-10] + b"0123456789")  # same size, new content
        assert get("cat.jpg")[0] == 404
        os.utime(photo, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ... and the old mtime back
        assert get("cat.jpg")[0] == 200  # what the index can know of a file: size and mtime
        assert "Traceback" not in running.log()
    finally:
        stop_server(running)


@pytest.fixture(scope="module")
def encoder_free_photos() -> dict:
    return {"cat": samples.chelsea(), "coffee": samples.coffee()}


def test_nothing_broke(server):
    assert "Traceback" not in server.log() and "serving" in server.log()
