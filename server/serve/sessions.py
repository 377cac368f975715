"""One WebSocket connection's conversation: the hello, then each message answered in order.

What a connection remembers (`Session`: its uploads and who it is) lives here; what a message
means is the `Replier`'s (dispatch.py). A client's mistake gets an error reply on its own
connection and nothing else changes: no traceback, no closed connection, no state touched.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from server.serve.limits import Ticket
from server.serve.protocol import Reply, encode_reply
from server.serve.websocket import WebSocket

T = TypeVar("T")
BUSY_PAUSE = 1.0  # at most this long, a connection told `busy` is not read


@dataclass
class Session:
    """What one connection remembers: its uploaded images, by number, and who it is."""

    ticket: Ticket
    closed: asyncio.Future  # done when the connection is
    uploads: OrderedDict[int, np.ndarray] = field(default_factory=OrderedDict)
    numbers: itertools.count = field(default_factory=lambda: itertools.count(1))
    cost: float = 0.0  # seconds of work done for the message being answered


class Gone(Exception):
    """The client left while its message was being answered: there is nobody to answer."""


class Replier(Protocol):
    async def reply(self, message: str | bytes, session: Session) -> Reply: ...


async def converse(connection: WebSocket, hello: str, replier: Replier) -> None:
    """One connection: the hello, then its messages answered one at a time, in order."""
    if connection.ticket.refusal:
        await connection.close(CloseCode.TRY_AGAIN_LATER, connection.ticket.refusal)
        return
    closed = asyncio.ensure_future(connection.wait_closed())
    session = Session(connection.ticket, closed)
    try:
        await connection.send(hello)
        while True:
            message = await connection.recv()
            reply = await replier.reply(message, session)
            connection.done_with(message)
            del message  # not kept while this connection waits for its next one
            await connection.send(encode_reply(reply))
            if reply["type"] == "error" and reply["code"] == "busy":
                # a flood is read no faster than it is served
                await asyncio.sleep(min(reply.get("retry_ms", 0) / 1e3, BUSY_PAUSE))
    except (ConnectionClosed, Gone):
        pass
    finally:
        closed.cancel()


async def unless_gone(session: Session, work: Awaitable[T]) -> T:
    """`work`'s result, unless the client leaves first: then the work is cancelled (an upload
    still queued is never decoded) and Gone is raised."""
    task = asyncio.ensure_future(work)
    await asyncio.wait([task, session.closed], return_when=asyncio.FIRST_COMPLETED)
    if not task.done():
        task.cancel()
        raise Gone
    return task.result()
