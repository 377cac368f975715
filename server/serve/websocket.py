"""One WebSocket connection, driven over websockets' documented Sans-I/O layer (`ServerProtocol`:
receive_data, events_received, data_to_send, send_*), with the memory budget in front of it.

The front door (front.py) has read and checked the handshake request; `accept` lets websockets
judge it (the Origin, the WebSocket headers) and answer it. From then on the bytes from the
client pass through `data_received`, which reads each frame header: a data frame's payload is
reserved in the server's `MemoryBudget` before it is passed on; when it does not fit, this
connection stops reading until it does, and is closed with 1013 after `Limits.memory_wait`
seconds. The handler gives a message's bytes back with `done_with`.

websockets' frame parser keeps the last frame it parsed until it has parsed the next one, so a
connection that goes quiet after a large message would pin it. Through the public API only,
this connection then sends a ping: the client's pong is the next frame, and the message's bytes
stop counting once it has passed. A client that answers no ping is closed by the keepalive.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import os
from collections import deque
from typing import TYPE_CHECKING

from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidState
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import CLOSED, OPEN, SEND_EOF
from websockets.server import ServerProtocol

from server.serve.limits import Ticket

if TYPE_CHECKING:
    from server.serve.front import Front

log = logging.getLogger("wordpix.server")

MAX_MESSAGE = 16 * 2**20   # the WebSocket protocol closes a connection (1009) beyond this
MAX_QUEUE = 4              # messages received and not yet read before reading pauses
PING_INTERVAL = 20.0       # seconds between keepalive pings
PING_TIMEOUT = 20.0        # seconds a pong may take before the connection is closed
CLOSE_TIMEOUT = 2.0        # seconds the closing handshake may take
DATA_OPCODES = (0, 1, 2)   # continuation, text, binary: frames whose payload is a message's
# a message this small is not counted while websockets' parser still holds it (see done_with):
# at most this much a connection, and a ping for each would cost more than the bytes
PINNED_SMALL = 4 * 2**10
SERVER_NAME = "wordpix"


def frame_header(buffer: bytes | bytearray, start: int) -> tuple[int, int, int] | None:
    """(header length, payload length, opcode) of the WebSocket frame at `start`, or None
    while the header is incomplete (RFC 6455 section 5.2)."""
    available = len(buffer) - start
    if available < 2:
        return None
    opcode, second = buffer[start] & 0x0F, buffer[start + 1]
    length, size = second & 0x7F, 2
    if length >= 126:
        extra = 2 if length == 126 else 8
        if available < 2 + extra:
            return None
        length = int.from_bytes(buffer[start + 2 : start + 2 + extra], "big")
        size += extra
    if second & 0x80:
        size += 4  # the masking key
    return (size, length, opcode) if available >= size else None


def handshake_response(protocol: ServerProtocol, head: bytes) -> Response:
    """websockets' answer to a handshake request whose head (request line and headers) the
    front door has read and checked: 101, or the refusal (a bad Origin, missing WebSocket
    headers, a request websockets does not read as one)."""
    protocol.receive_data(head)
    requests = [event for event in protocol.events_received() if isinstance(event, Request)]
    if not requests:
        response = protocol.reject(http.HTTPStatus.BAD_REQUEST,
                                   "not a WebSocket handshake request\n")
    else:
        response = protocol.accept(requests[0])
    response.headers["Server"] = SERVER_NAME
    return response


class WritesFlow(asyncio.Protocol):
    """The transport's write flow control as a future: `writable` is set while its buffer is
    full, and done once it has drained (a subclass sets `loop` and `writable = None`)."""

    loop: asyncio.AbstractEventLoop
    writable: asyncio.Future | None

    def pause_writing(self) -> None:
        self.writable = self.loop.create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.writable = None


class WebSocket(WritesFlow):
    """A WebSocket connection: `recv`, `send`, `close`, `wait_closed`, `done_with`."""

    def __init__(self, protocol: ServerProtocol, front: Front, ticket: Ticket,
                 transport: asyncio.Transport):
        self.protocol, self.front, self.ticket = protocol, front, ticket
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        self.messages: deque[str | bytes] = deque()
        self.fragments: list[bytes] = []
        self.fragment_opcode: Opcode | None = None
        self.message_arrived: asyncio.Future | None = None
        self.closed: asyncio.Future = self.loop.create_future()
        self.writable: asyncio.Future | None = None  # set while the transport's buffer is full
        self.held = bytearray()  # bytes not passed on yet: a partial header, or a frame waiting
        self.payload_left = 0  # of the frame being passed on
        self.granted = 0  # bytes reserved for the frame whose header is first in `held`
        self.frame_ends_message = False  # the frame being passed on is a message's last
        self.frames = 0  # frames passed on whole
        self.message_ends: deque[int] = deque()  # `frames` at the end of each unanswered message
        self.lingering: deque[tuple[int, int]] = deque()  # (bytes, last frame): answered
        self.waiting = False
        self.wait_timer: asyncio.TimerHandle | None = None
        self.close_timer: asyncio.TimerHandle | None = None
        self.pong: asyncio.Future | None = None
        self.keepalive: asyncio.Task | None = None
        self.reading_paused = False

    def start(self, response: Response, rest: bytes) -> None:
        """Send the 101 answer, then read whatever followed the handshake request."""
        self.transport.set_protocol(self)
        self.protocol.send_response(response)
        self._flush()
        self.keepalive = self.loop.create_task(self._keep_alive())
        if rest:
            self.data_received(rest)

    # ------------------------------------------------------------------ the handler's side

    async def recv(self) -> str | bytes:
        while not self.messages:
            if self.closed.done():
                raise self._closed_error()
            # connection_lost resolves it too: one future to await, not asyncio.wait's two
            # (pings 1.33x to 1.41x as fast: docs/server.md, Speed)
            self.message_arrived = self.loop.create_future()
            await self.message_arrived
        message = self.messages.popleft()
        if self.reading_paused and len(self.messages) < MAX_QUEUE and not self.waiting:
            self.reading_paused = False
            self.transport.resume_reading()
        return message

    async def send(self, message: str) -> None:
        try:
            self.protocol.send_text(message.encode())
        except InvalidState:
            raise self._closed_error() from None
        self._flush()
        if self.writable is not None:
            await asyncio.wait([self.writable, self.closed],
                               return_when=asyncio.FIRST_COMPLETED)
        if self.closed.done():
            raise self._closed_error()

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        if self.protocol.state is OPEN:
            self.protocol.send_close(code, reason)
            self._flush()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await asyncio.shield(self.closed)
        self.transport.abort()

    async def wait_closed(self) -> None:
        await asyncio.shield(self.closed)

    def done_with(self, message: str | bytes) -> None:
        """A message has been answered: its bytes stop counting once the parser has let go of
        its last frame too (the next frame replaces it there: a ping asks for one)."""
        size = len(message) if isinstance(message, bytes) or message.isascii() \
            else len(message.encode())
        last = self.message_ends.popleft() if self.message_ends else self.frames
        if last < self.frames or size <= PINNED_SMALL:
            self.front.budget.release(self, size)
            return
        self.lingering.append((size, last))
        if self.protocol.state is OPEN:
            self.protocol.send_ping(os.urandom(4))
            self._flush()

    def _closed_error(self) -> ConnectionClosed:
        if self.protocol.state is CLOSED:
            return self.protocol.close_exc
        return ConnectionClosedError(None, None)

    # ------------------------------------------------------------------ the transport's side

    def data_received(self, data: bytes) -> None:
        if self.waiting or self.held:
            self.held += data
            if self.waiting:
                self.transport.pause_reading()
                return
            data, self.held = bytes(self.held), bytearray()
        self._pass_on(data)

    def eof_received(self) -> bool:
        self.protocol.receive_eof()
        self._events()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.receive_eof()  # idempotent: the protocol ends as it must
        for timer in (self.wait_timer, self.close_timer):
            if timer is not None:
                timer.cancel()
        if self.keepalive is not None:
            self.keepalive.cancel()
        self.waiting = False
        self.messages.clear()
        self.front.budget.release_all(self)
        self.front.clients.leave(self.ticket)
        self.front.websockets.discard(self)
        for future in (self.closed, self.message_arrived, self.writable, self.pong):
            if future is not None and not future.done():
                future.set_result(None)

    def _pass_on(self, data: bytes) -> None:
        """Pass on the frames in `data` whose payload fits, and keep the rest in `held`."""
        position = 0
        while position < len(data):
            if self.payload_left:
                step = min(self.payload_left, len(data) - position)
                position += step
                self.payload_left -= step
                if not self.payload_left:
                    self._frame_passed()
                continue
            header = frame_header(data, position)
            if header is None:
                break
            size, payload, opcode = header
            if opcode in DATA_OPCODES and 0 < payload <= MAX_MESSAGE:
                if self.granted:
                    self.granted = 0
                elif not self.front.budget.reserve(self, payload):
                    self._wait(payload)
                    break
            position += size
            self.payload_left = payload
            self.frame_ends_message = opcode in DATA_OPCODES and bool(data[position - size] & 0x80)
            if not payload:
                self._frame_passed()
        if position < len(data):
            self.held = bytearray(data[position:])
        if position and self.protocol.state is not CLOSED:
            self.protocol.receive_data(data if position == len(data) else data[:position])
            self._events()

    def _frame_passed(self) -> None:
        self.frames += 1
        if self.frame_ends_message:
            self.message_ends.append(self.frames)
        while self.lingering and self.lingering[0][1] < self.frames:
            self.front.budget.release(self, self.lingering.popleft()[0])

    def _events(self) -> None:
        for event in self.protocol.events_received():
            if isinstance(event, Frame):
                self._frame(event)
        self._flush()

    def _frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.PONG:
            if self.pong is not None and not self.pong.done():
                self.pong.set_result(None)
            return
        if frame.opcode not in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            return  # pings are answered and closes handled by websockets
        if frame.opcode is not Opcode.CONT:
            self.fragment_opcode = frame.opcode
        self.fragments.append(bytes(frame.data))
        if not frame.fin:
            return
        data = self.fragments[0] if len(self.fragments) == 1 else b"".join(self.fragments)
        self.fragments = []
        if self.fragment_opcode is Opcode.TEXT:
            try:
                message: str | bytes = data.decode()
            except UnicodeDecodeError:
                self.protocol.fail(CloseCode.INVALID_DATA, "invalid UTF-8")
                return
        else:
            message = data
        self.messages.append(message)
        if self.message_arrived is not None and not self.message_arrived.done():
            self.message_arrived.set_result(None)
        if len(self.messages) >= MAX_QUEUE and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def _flush(self) -> None:
        """Write what websockets has to send; close the TCP connection when it says so."""
        for data in self.protocol.data_to_send():
            if data is SEND_EOF or data == SEND_EOF:
                with contextlib.suppress(OSError, RuntimeError):
                    if self.transport.can_write_eof():
                        self.transport.write_eof()
                self.transport.close()
            elif not self.transport.is_closing():
                self.transport.write(data)
        if self.protocol.close_expected() and self.close_timer is None:
            self.close_timer = self.loop.call_later(CLOSE_TIMEOUT, self.transport.abort)

    # ------------------------------------------------------------------ waits

    def _wait(self, size: int) -> None:
        self.waiting = True
        self.transport.pause_reading()
        self.front.budget.wait(self, size, lambda: self.loop.call_soon(self._granted, size))
        self.wait_timer = self.loop.call_later(self.front.limits.memory_wait, self._give_up)

    def _granted(self, size: int) -> None:
        if not self.waiting:  # gave up in between
            self.front.budget.release(self, size)
            return
        self.waiting, self.granted = False, size
        if self.wait_timer is not None:
            self.wait_timer.cancel()
        data, self.held = bytes(self.held), bytearray()
        self._pass_on(data)
        if not self.waiting and not self.reading_paused:
            self.transport.resume_reading()

    def _give_up(self) -> None:
        self.waiting = False
        self.held.clear()
        self.front.budget.release_all(self)
        if self.protocol.state is OPEN:
            self.protocol.fail(CloseCode.TRY_AGAIN_LATER,
                               "the server has no memory free for your message: retry later")
            self._flush()
        self.transport.close()

    async def _keep_alive(self) -> None:
        """A ping every PING_INTERVAL; a client whose pong takes over PING_TIMEOUT is gone."""
        while self.protocol.state is OPEN:
            await asyncio.sleep(PING_INTERVAL)
            if self.protocol.state is not OPEN:
                return
            self.pong = self.loop.create_future()
            self.protocol.send_ping(os.urandom(4))
            self._flush()
            try:
                async with asyncio.timeout(PING_TIMEOUT):
                    await self.pong
            except TimeoutError:
                if self.protocol.state is OPEN:
                    self.protocol.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
                    self._flush()
                self.transport.abort()
                return
