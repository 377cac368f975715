"""What one client may take: `python -m server` on loopback with small limits, real clients.

Clients that stand for different machines connect from different loopback addresses
(127.0.0.0/8 is all loopback on Linux), as the per-address limits see them.
"""

from __future__ import annotations

import io
import json
import math
import socket
import time
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.conftest import RunningServer, start_server, stop_server


def open_client(server: RunningServer, address: str = "127.0.0.1",
                token: str | None = None) -> ClientConnection:
    url = f"ws://127.0.0.1:{server.port}/ws" + (f"?token={token}" if token else "")
    connection = connect(url, source_address=(address, 0),
                         max_size=None).__enter__()  # closed by the test, or by the server
    assert json.loads(connection.recv(timeout=10))["type"] == "hello"
    return connection


def ask(connection: ClientConnection, message: str | bytes | dict) -> dict:
    if isinstance(message, dict):
        message = json.dumps(message, ensure_ascii=False)  # as UTF-8, not \u escapes
    connection.send(message)
    return strict_json(connection.recv(timeout=30))


def strict_json(text: str | bytes) -> dict:
    """What a browser's JSON.parse accepts: no NaN, no Infinity."""
    def refuse(name: str) -> None:
        raise ValueError(f"{name} in a reply")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def limited(sample_gallery, tmp_path, request) -> Iterator[RunningServer]:
    running = start_server(sample_gallery.index, tmp_path / "server.log", flags=request.param)
    yield running
    stop_server(running)
    assert "Traceback" not in running.log()


OUT_OF_RANGE = ["NaN", "Infinity", "-Infinity", "1e309", "-1e400", "9" * 5000]


@pytest.mark.parametrize("number", OUT_OF_RANGE)
@pytest.mark.parametrize("field", ["id", "k", "q", "extra"])
def test_numbers_json_cannot_hold_are_bad_json(server, number, field):
    client = open_client(server)
    reply = ask(client, f'{{"type": "query", "q": "cat", "{field}": {number}}}')
    assert reply["code"] == "bad_json" and reply["id"] is None, reply
    assert ask(client, {"type": "query", "q": "cat", "id": 1})["type"] == "results"
    client.close()


@pytest.mark.parametrize("request_id", [1.5, True, [1], {"a": 1}, 2**53 + 1, -(2**53) - 1])
def test_ids_are_strings_whole_numbers_or_null(server, request_id):
    client = open_client(server)
    reply = ask(client, {"type": "ping", "id": request_id})
    assert reply["code"] == "bad_request" and reply["id"] is None and '"id"' in reply["error"]
    for good in ("x" * 1000, 2**53, -(2**53), 0, None):
        assert ask(client, {"type": "ping", "id": good}) == {"type": "pong", "id": good}
    client.close()


def test_the_text_limit_counts_bytes(server):
    client = open_client(server)
    emoji = "\U0001f600" * 17_000  # 17,000 characters, 68,000 bytes of UTF-8
    reply = ask(client, {"type": "query", "q": emoji})
    assert reply["code"] == "too_large" and "bytes" in reply["error"]
    assert ask(client, {"type": "query", "q": "\u00e9" * 20_000})["code"] == "bad_query"
    client.close()


def _image(size: tuple[int, int], format: str) -> bytes:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (size[1] // 50, size[0] // 50, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(small).resize(size).save(out, format, quality=80)
    return out.getvalue()


def test_uploads_too_costly_to_decode_are_refused_and_big_jpegs_are_not(server):
    client = open_client(server)
    webp = ask(client, _image((3000, 1500), "WEBP"))  # 4.5 Mpx: ~69 MiB to decode
    assert webp["code"] == "bad_upload" and "too large to decode" in webp["error"]
    jpeg = ask(client, _image((6000, 4000), "JPEG"))  # 24 Mpx, decoded at 1/8 scale
    assert jpeg["type"] == "uploaded", jpeg
    client.close()


@pytest.mark.parametrize("limited", [["--max-connections-per-address", "3",
                                      "--max-connections", "5"]], indirect=True)
def test_connections_past_a_cap_are_told_why_and_closed(limited):
    first = [open_client(limited, "127.0.0.2") for _ in range(3)]
    with pytest.raises(ConnectionClosed) as closed:
        open_client(limited, "127.0.0.2")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    assert "too many connections from 127.0.0.2 (at most 3)" in closed.value.rcvd.reason
    with socket.create_connection(("127.0.0.1", limited.port),
                                  source_address=("127.0.0.2", 0)) as raw:
        raw.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert raw.recv(4096).startswith(b"HTTP/1.1 503 ")
    others = [open_client(limited, "127.0.0.3"), open_client(limited, "127.0.0.4")]
    with pytest.raises(ConnectionClosed) as closed:
        open_client(limited, "127.0.0.5")
    assert closed.value.rcvd is not None and "too many connections" in closed.value.rcvd.reason
    for connection in first + others:
        assert ask(connection, {"type": "ping"})["type"] == "pong"
        connection.close()
    time.sleep(0.2)
    again = open_client(limited, "127.0.0.2")  # closed connections no longer count
    assert ask(again, {"type": "ping"})["type"] == "pong"
    again.close()


@pytest.mark.parametrize("limited", [["--address-share", "0.01", "--address-burst", "0.05"]],
                         indirect=True)
def test_an_address_past_its_share_is_told_busy_and_others_are_not(limited):
    flooder = open_client(limited, "127.0.0.6")
    replies = []
    for number in range(500):  # 0.05 s of work is used up long before
        replies.append(ask(flooder, {"type": "query", "q": "cat+grass", "k": 200, "id": number}))
        if replies[-1]["type"] == "error":
            break
    busy = replies[-1]
    assert busy["code"] == "busy" and busy["id"] == len(replies) - 1 and busy["retry_ms"] > 0
    other = open_client(limited, "127.0.0.7")
    assert ask(other, {"type": "query", "q": "cat"})["type"] == "results"
    time.sleep(math.ceil(busy["retry_ms"]) / 1e3)
    assert ask(flooder, {"type": "query", "q": "cat"})["type"] == "results"  # served again
    flooder.close()
    other.close()


def _raw_websocket(port: int, address: str) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10,
                                   source_address=(address, 0))
    raw.sendall(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n")
    response = b""
    while b"\r\n\r\n" not in response:
        response += raw.recv(4096)
    assert b" 101 " in response.split(b"\r\n")[0]
    return raw


def _server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each frame a server sent (unmasked, RFC 6455 section 5.2)."""
    frames = []
    while data:
        length, start = data[1] & 0x7F, 2
        if length >= 126:
            size = 2 if length == 126 else 8
            length, start = int.from_bytes(data[2 : 2 + size], "big"), 2 + size
        frames.append((data[0] & 0x0F, data[start : start + length]))
        data = data[start + length :]
    return frames


def _binary_frame_header(length: int) -> bytes:
    # FIN + binary, masked, 64-bit length, then the masking key
    return bytes([0x82, 0x80 | 127]) + length.to_bytes(8, "big") + b"\x01\x02\x03\x04"


@pytest.mark.parametrize("limited", [["--message-memory", "16", "--memory-wait", "1"]],
                         indirect=True)
def test_frames_past_the_memory_budget_wait_then_are_closed(limited, sample_gallery):
    holder = _raw_websocket(limited.port, "127.0.0.8")
    holder.sendall(_binary_frame_header(12 << 20) + bytes(1 << 20))  # 12 MiB, then stalls
    time.sleep(0.3)
    waiter = _raw_websocket(limited.port, "127.0.0.9")
    waiter.sendall(_binary_frame_header(12 << 20))  # 12 + 12 > 16 MiB: must wait
    small = open_client(limited, "127.0.0.10")
    assert ask(small, {"type": "ping"})["type"] == "pong"  # queries still pass meanwhile
    frames = b""
    waiter.settimeout(10)
    while chunk := waiter.recv(4096):  # until the server closes it, after --memory-wait
        frames += chunk
    close, reason = _server_frames(frames)[-1]  # after the hello (if not read with the 101)
    assert close == 0x8 and reason[:2] == (1013).to_bytes(2, "big")
    assert b"no memory free" in reason
    holder.close()
    time.sleep(0.3)
    uploaded = ask(small, sample_gallery.photos["cat"].read_bytes())
    assert uploaded["type"] == "uploaded"  # the holder's 12 MiB were given back
    small.close()
    waiter.close()
