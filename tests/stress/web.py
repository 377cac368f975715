"""HTTP under load: large downloads at full speed, a slow steady reader, pipelining, and
requests that must be refused, over raw sockets from loopback."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from tests.stress.common import HOST, Target, address

CHUNK = 1 << 16
# (what is sent, the status it must get)
EDGE_CASES: list[tuple[bytes, int]] = [
    (b"HEAD /health HTTP/1.1\r\nHost: localhost\r\n\r\n", 200),
    (b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello", 405),
    (b"DELETE / HTTP/1.1\r\nHost: localhost\r\n\r\n", 405),
    (b"TRACE / HTTP/1.1\r\nHost: localhost\r\n\r\n", 405),
    (b"get / HTTP/1.1\r\nHost: localhost\r\n\r\n", 405),
    (b"GET / HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n", 421),
    (b"GET /ws HTTP/1.1\r\nHost: evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 421),
    (b"GET /../../etc/passwd HTTP/1.1\r\nHost: localhost\r\n\r\n", 404),
    (b"GET /images/%2e%2e%2fetc HTTP/1.1\r\nHost: localhost\r\n\r\n", 404),
    (b"GET / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: localhost\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\nHost: localhost\r\nX: " + b"a" * 10_000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: localhost\r\n folded\r\n\r\n", 400),
]


@dataclass
class Download:
    received: int
    seconds: float
    complete: bool
    cut: bool  # the server ended the response early


async def _connect(target: Target, number: int) -> tuple[asyncio.StreamReader,
                                                          asyncio.StreamWriter]:
    return await asyncio.open_connection(HOST, target.port, local_addr=(address(8, number), 0),
                                         limit=1 << 20)


async def download(target: Target, path: str, size: int, number: int = 0,
                   rate: float | None = None, seconds: float = 600) -> Download:
    """GET `path` (of `size` bytes) and read it all, at `rate` bytes a second if given; stops
    after `seconds` in any case."""
    reader, writer = await _connect(target, number)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    started = time.monotonic()
    received, cut = 0, False
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        cut = not head.startswith(b"HTTP/1.1 200 ")
        while not cut and received < size and time.monotonic() - started < seconds:
            chunk = await asyncio.wait_for(reader.read(CHUNK), 60)
            cut = not chunk
            if cut:
                break
            received += len(chunk)
            if rate:
                await asyncio.sleep(max(0.0, received / rate - (time.monotonic() - started)))
    finally:
        writer.transport.abort()
    return Download(received, time.monotonic() - started, received == size, cut)


async def pipelined(target: Target, count: int) -> int:
    """`count` requests in one write; how many answers come back, in order."""
    reader, writer = await _connect(target, 1)
    writer.write(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n" * count)
    answered = 0
    try:
        for _ in range(count):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            body = await asyncio.wait_for(reader.readexactly(length), 30)
            answered += head.startswith(b"HTTP/1.1 200 ") and body.startswith(b'{"ok": true')
    finally:
        writer.transport.abort()
    return answered


async def edge_cases(target: Target) -> list[tuple[bytes, int, int]]:
    """(request, expected status, status got) for each of EDGE_CASES."""
    results = []
    for number, (sent, expected) in enumerate(EDGE_CASES):
        reader, writer = await _connect(target, 2 + number)
        writer.write(sent)
        try:
            line = await asyncio.wait_for(reader.readline(), 30)
            status = int(line.split(b" ")[1]) if line.startswith(b"HTTP/1.1 ") else 0
        finally:
            writer.transport.abort()
        results.append((sent, expected, status))
    return results
