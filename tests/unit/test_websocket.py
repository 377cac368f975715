"""The WebSocket connection in process (server/serve/websocket.py): a real Front on loopback,
an echo handler, a websockets client; the memory budget as frames arrive, the bytes a large
message pins released by the ping that follows it, and the protocol's closes."""

from __future__ import annotations

import asyncio
import http
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.serve.access import access_for
from server.serve.front import Front, HttpAnswer
from server.serve.limits import Clients, Limits, MiB
from server.serve.websocket import MAX_MESSAGE, WebSocket
from tests.unit.conftest import run_async

Handler = Callable[[WebSocket], Awaitable[None]]


async def echo(connection: WebSocket) -> None:
    """Answer each message with its size, then let its bytes go."""
    while True:
        message = await connection.recv()
        await connection.send(str(len(message)))
        connection.done_with(message)


async def not_found(path: str, refusal: HttpAnswer | None) -> HttpAnswer:
    return HttpAnswer.text(http.HTTPStatus.NOT_FOUND, "not found")


@asynccontextmanager
async def serving(handler: Handler = echo, limits: Limits | None = None
                  ) -> AsyncIterator[tuple[Front, str]]:
    front = await Front(handler, not_found, Clients(limits or Limits()), host="127.0.0.1",
                        port=0, access=access_for("127.0.0.1", page_from_disk=False))
    async with front:
        yield front, f"ws://127.0.0.1:{front.sockets[0].getsockname()[1]}/ws"


async def settle(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


def test_messages_are_answered_and_their_bytes_given_back():
    async def run() -> None:
        async with serving() as (front, url), connect(url, max_size=None) as client:
            await client.send("hello")
            assert await client.recv() == "5"
            await client.send(b"\x00" * 100_000)
            assert await client.recv() == "100000"
            # a large message stays pinned in websockets' parser until the next frame: the
            # client's pong to the server's ping, which websockets' client sends by itself
            assert await settle(lambda: front.budget.used == 0)
            assert front.budget.peak >= 100_000

    run_async(run())


def test_a_fragmented_message_arrives_whole():
    async def run() -> None:
        async with serving() as (_, url), connect(url) as client:
            await client.send(["ab", "cd", "é"])  # one text message in three frames
            assert await client.recv() == "5"

    run_async(run())


def test_invalid_utf8_closes_with_1007_and_too_large_with_1009():
    async def run() -> None:
        async with serving() as (_, url):
            async with connect(url) as client:
                await client.send(b"\xff\xfe", text=True)
                with pytest.raises(ConnectionClosed) as closed:
                    await client.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
            async with connect(url, max_size=None) as client:
                with pytest.raises(ConnectionClosed) as closed:
                    await client.send(b"\x00" * (MAX_MESSAGE + 1))  # closed while it is sent
                    await client.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

    run_async(run())


def test_a_frame_that_waits_too_long_for_memory_is_closed_with_1013():
    async def hold(connection: WebSocket) -> None:
        await connection.recv()  # never given back: the budget stays full
        await asyncio.Future()

    async def run() -> None:
        limits = Limits(memory=2 * MiB, memory_wait=0.5)
        async with serving(hold, limits) as (front, url):
            async with connect(url, max_size=None) as first:
                await first.send(b"\x00" * (2 * MiB - 300 * 1024))  # most of the budget
                assert await settle(lambda: front.budget.used > MiB)
                async with connect(url, max_size=None) as second:
                    await second.send(b"\x00" * MiB)  # does not fit: waits, then is refused
                    with pytest.raises(ConnectionClosed) as closed:
                        await second.recv()
                    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            assert await settle(lambda: front.budget.used == 0)

    run_async(run())


def test_closing_the_server_says_going_away():
    async def run() -> None:
        async with serving() as (front, url):
            client = await connect(url)
            front.close()
            with pytest.raises(ConnectionClosed) as closed:
                await client.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001

    run_async(run())
