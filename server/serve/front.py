"""The front door: every TCP connection to the server's port starts here.

Plain HTTP/1.1 is answered here: GET and HEAD only (405 for any other method, lowercase ones
included), exactly one Host header naming this machine, the access token where the server has
one (`access.py`: 401 without it), pipelined requests answered in order, files streamed in
chunks (a reader that keeps reading is never cut; one that reads nothing for STALL seconds is).
A request to upgrade to a WebSocket passes the same checks and is then handed, with the bytes
read so far, to websockets (`GuardedConnection`), which does the handshake (checking the
Origin) and the framing. The frames a client sends are admitted against
the server's `MemoryBudget` as their headers arrive, before their payload is read.

Connections are counted per client address from the moment they are accepted (`Clients`): one
over a cap is answered 503 (HTTP) or closed with code 1013 and the reason (WebSocket).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import os
import re
import stat
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.protocol import OPEN
from websockets.server import ServerProtocol

from server.serve.access import Access, Verdict
from server.serve.limits import Clients, MemoryBudget, Ticket

log = logging.getLogger("wordpix.server")

SERVER_NAME = "wordpix"
MAX_MESSAGE = 16 * 2**20   # the WebSocket protocol closes a connection (1009) beyond this
MAX_HEAD = 8 * 2**10       # request line and headers
MAX_HEADERS = 64
HTTP_IDLE = 15.0           # seconds a connection may take to send its (next) request head
STALL = 30.0               # seconds a reader may read nothing of a response before it is cut
LINGER = 2.0               # seconds spent reading and dropping a body we will not use
CHUNK = 256 * 2**10        # a file is sent this much at a time
OPEN_TIMEOUT = 10.0        # the WebSocket handshake
BACKLOG = 1024             # connections the kernel queues before they are accepted
DATA_OPCODES = (0, 1, 2)   # continuation, text, binary: frames whose payload is a message's
# a message this small is not counted while websockets' parser still holds it (see done_with):
# at most this much a connection, and restarting the parser would cost more than the bytes
PINNED_SMALL = 4 * 2**10
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]  # names in lower case, in the order sent

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for v in self.values("connection") for t in v.split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    @property
    def has_body(self) -> bool:
        return bool(self.values("transfer-encoding")) or any(
            value.strip() != "0" for value in self.values("content-length"))

    @property
    def upgrade(self) -> bool:
        return any("websocket" in value.lower() for value in self.values("upgrade"))


@dataclass
class ServedFile:
    """An open file to stream: opened and checked first, so what is sent is what was checked."""

    fd: int
    size: int
    mtime_ns: int

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def open_regular(path: Path) -> ServedFile | None:
    """A regular file opened for reading, or None. O_NONBLOCK: opening a FIFO must not hang."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError:
        return None
    try:
        status = os.fstat(fd)
    except OSError:
        status = None
    if status is None or not stat.S_ISREG(status.st_mode):
        os.close(fd)
        return None
    return ServedFile(fd, status.st_size, status.st_mtime_ns)


@dataclass
class HttpAnswer:
    status: http.HTTPStatus
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    cache: str = "no-store"
    file: ServedFile | None = None  # streamed in place of `body`
    close: bool = False  # the connection closes after this answer
    extra: tuple[tuple[str, str], ...] = ()
    public: bool = False  # says nothing of the gallery: any page may read it

    @classmethod
    def text(cls, status: http.HTTPStatus, message: str, **fields: Any) -> HttpAnswer:
        return cls(status, (message + "\n").encode(), **fields)

    def head(self) -> bytes:
        length = self.file.size if self.file is not None else len(self.body)
        lines = [f"HTTP/1.1 {self.status.value} {self.status.phrase}",
                 f"Server: {SERVER_NAME}", f"Content-Type: {self.content_type}",
                 f"Content-Length: {length}", f"Cache-Control: {self.cache}",
                 "X-Content-Type-Options: nosniff",
                 # links carry the access token (images): never pass one on as a Referer
                 "Referrer-Policy: no-referrer",
                 *(f"{name}: {value}" for name, value in self.extra)]
        if self.close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def unauthorized(verdict: Verdict) -> HttpAnswer:
    """The answer to a request without the access token (or with a wrong one)."""
    message = ("wrong access token" if verdict is Verdict.WRONG else
               "this server needs its access token: open the link it printed when it started "
               "(http://...#token=...)")
    return HttpAnswer.text(http.HTTPStatus.UNAUTHORIZED, message, close=True,
                           extra=(("WWW-Authenticate", 'Token realm="wordpix"'),))


def foreign_page() -> HttpAnswer:
    """The answer to a page of another origin asking for gallery data."""
    return HttpAnswer.text(http.HTTPStatus.FORBIDDEN, "a page of another origin may not read "
                           "this gallery: open the page this server serves, or the page from "
                           "disk beside the key the server wrote (docs/server.md)")


class BadRequest(Exception):
    def __init__(self, status: http.HTTPStatus, message: str):
        super().__init__(message)
        self.answer = HttpAnswer.text(status, message, close=True)


def parse_head(head: bytes) -> HttpRequest:
    """A request line and its header fields (`head` ends with the blank line), strictly:
    anything a proxy might read differently is refused rather than guessed at."""
    request_line, *fields = head[:-4].split(b"\r\n")
    parts = request_line.split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not _TARGET.fullmatch(parts[1]):
        raise BadRequest(http.HTTPStatus.BAD_REQUEST, "malformed request line")
    method, target, version = parts
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise BadRequest(http.HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "HTTP/1.1 only")
    if len(fields) > MAX_HEADERS:
        raise BadRequest(http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "too many headers")
    headers = []
    for line in fields:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            raise BadRequest(http.HTTPStatus.BAD_REQUEST, "malformed header field")
        headers.append((name.decode("ascii").lower(), value.strip(b" \t").decode("latin-1")))
    return HttpRequest(method.decode("ascii"), target.decode("ascii"), version.decode("ascii"),
                       tuple(headers))


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


class GuardedConnection(ServerConnection):
    """A websockets server connection whose incoming data frames must fit the memory budget.

    The bytes from the client pass through `data_received`, which reads each frame header: a
    data frame's payload is reserved before it is passed on; when it does not fit, this
    connection stops reading (`pause_reading`) until it does, and is closed with 1013 after
    `Limits.memory_wait` seconds. The handler gives a message's bytes back with `done_with`,
    and they are released once websockets no longer holds them either: its parser keeps the
    last frame it parsed until it has parsed the next one (`_let_go_of_last_frame`).
    """

    def __init__(self, protocol: ServerProtocol, server: Front, ticket: Ticket,
                 **options: Any):
        super().__init__(protocol, server, **options)
        self.front, self.ticket = server, ticket
        self.framing = False  # the handshake request has been passed on; frames follow
        self.held = bytearray()  # bytes not passed on yet: a partial header, or a frame waiting
        self.payload_left = 0  # of the frame being passed on
        self.granted = 0  # bytes reserved for the frame whose header is first in `held`
        self.frame_ends_message = False  # the frame being passed on is a message's last
        self.frames = 0  # frames passed on whole
        self.message_ends: deque[int] = deque()  # `frames` at the end of each unanswered message
        self.lingering: deque[tuple[int, int]] = deque()  # (bytes, last frame): answered
        self.waiting = False
        self.wait_timer: asyncio.TimerHandle | None = None

    def start(self, head: bytes, rest: bytes) -> None:
        """Pass on the handshake request the front door read, then whatever followed it."""
        super().data_received(head)
        self.framing = True
        if rest:
            self.data_received(rest)

    def done_with(self, message: str | bytes) -> None:
        """A message has been answered: its bytes stop counting once the parser has let go of
        its last frame too."""
        size = len(message) if isinstance(message, bytes) or message.isascii() \
            else len(message.encode())
        last = self.message_ends.popleft() if self.message_ends else self.frames
        if last < self.frames or size <= PINNED_SMALL or self._let_go_of_last_frame():
            self.front.budget.release(self, size)
        else:  # the next frame is on its way: it replaces this one in the parser
            self.lingering.append((size, last))

    def _let_go_of_last_frame(self) -> bool:
        """Restart websockets' frame parser, if it waits between frames: the generator keeps
        the last frame it parsed in a local variable, and an idle connection would pin its
        last message (up to 16 MiB) for as long as it stays open. Between frames the parser's
        state is all in the protocol's attributes, so a fresh one goes on where it was."""
        protocol = self.protocol
        if (self.payload_left or protocol.reader.buffer or protocol.state is not OPEN or
                protocol.parser_exc is not None):
            return False
        protocol.parser = protocol.parse()
        next(protocol.parser)
        return True

    def _frame_passed(self) -> None:
        self.frames += 1
        if self.frame_ends_message:
            self.message_ends.append(self.frames)
        while self.lingering and self.lingering[0][1] < self.frames:
            self.front.budget.release(self, self.lingering.popleft()[0])

    def data_received(self, data: bytes) -> None:
        if not self.framing:
            super().data_received(data)
            return
        if self.waiting or self.held:
            self.held += data
            if self.waiting:
                self.transport.pause_reading()
                return
            data, self.held = bytes(self.held), bytearray()
        self._pass_on(data)

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
        if position:
            super().data_received(data if position == len(data) else data[:position])

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
        if not self.waiting and not self.recv_messages.paused:
            self.transport.resume_reading()

    def _give_up(self) -> None:
        self.waiting = False
        self.held.clear()
        self.front.budget.release_all(self)
        self.framing = False  # what follows is dropped by the failed protocol
        if self.protocol.state is OPEN:
            self.protocol.fail(CloseCode.TRY_AGAIN_LATER,
                               "the server has no memory free for your message: retry later")
            self.send_data()
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.wait_timer is not None:
            self.wait_timer.cancel()
        self.waiting = False
        self.front.budget.release_all(self)
        self.front.clients.leave(self.ticket)


Handler = Callable[[GuardedConnection], Awaitable[None]]
# (path, the answer to a request for gallery data, or None when it may have it)
Route = Callable[[str, HttpAnswer | None], Awaitable[HttpAnswer]]


class Front(Server):
    """The listening socket: `Door`s answer HTTP and hand WebSocket upgrades to websockets.

    A websockets `Server` (so `close`, `wait_closed`, `sockets` and `async with` work as with
    `websockets.serve`) whose TCP connections start at our `Door` instead of at websockets.
    """

    def __init__(self, handler: Handler, route: Route, clients: Clients, *, host: str,
                 port: int, access: Access):
        super().__init__(self._listen, self._run, logging.getLogger("websockets.server"))
        self.handle, self.route, self.clients = handler, route, clients
        self.host, self.port, self.access = host, port, access
        self.limits = clients.limits
        self.budget = MemoryBudget(self.limits.memory)
        self.doors: set[Door] = set()

    async def _listen(self) -> asyncio.Server:
        return await asyncio.get_running_loop().create_server(
            lambda: Door(self), self.host, self.port, backlog=BACKLOG)

    def websocket(self, ticket: Ticket, host: str, target: str) -> GuardedConnection:
        """The connection for a handshake of `target` whose Host header was `host`."""
        protocol = ServerProtocol(origins=self.access.origins_for(host, target),
                                  max_size=MAX_MESSAGE, logger=self.logger)
        return GuardedConnection(protocol, self, ticket, max_queue=4)

    async def _run(self, connection: ServerConnection) -> None:
        """One WebSocket connection from handshake to close, as `websockets.serve` runs it."""
        try:
            async with asyncio.timeout(OPEN_TIMEOUT):
                await connection.handshake(server_header=SERVER_NAME)
            if connection.protocol.state is not OPEN:  # refused (bad Origin, bad handshake)
                connection.transport.abort()
                return
            self.all_connections.add(connection)
            connection.start_keepalive()
            try:
                async with connection:
                    assert isinstance(connection, GuardedConnection)
                    await self.handle(connection)
            except ConnectionClosed:
                pass
            except Exception:
                log.exception("a connection's handler failed")
            finally:
                self.all_connections.discard(connection)
        except Exception:  # a handshake that timed out or failed: never leak the socket
            connection.transport.abort()
        finally:
            task = asyncio.current_task()
            if task is not None:
                self.handler_tasks.discard(task)

    def close(self, close_connections: bool = True,
              code: CloseCode | int = CloseCode.GOING_AWAY, reason: str = "") -> None:
        for door in list(self.doors):
            door.transport.close()
        super().close(close_connections, code, reason)


class Door(asyncio.Protocol):
    """One TCP connection while it speaks HTTP (and all of it, unless it becomes a WebSocket)."""

    def __init__(self, front: Front):
        self.front = front
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport
        self.ticket: Ticket | None = None
        self.buffer = bytearray()
        self.task: asyncio.Task | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.writable: asyncio.Future | None = None  # set while the transport's buffer is full
        self.eof = False
        self.dropping = False  # reading and dropping a body, then closing

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.ticket = self.front.clients.join(str(peer[0]) if peer else "unknown")
        if self.front.clients.far_over(self.ticket):
            transport.abort()
            return
        self.front.doors.add(self)
        transport.set_write_buffer_limits(high=CHUNK)
        self._wait_for_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.doors.discard(self)
        if self.ticket is not None:
            self.front.clients.leave(self.ticket)
        if self.timer is not None:
            self.timer.cancel()
        if self.task is not None:
            self.task.cancel()
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.dropping:
            return
        self.buffer += data
        if len(self.buffer) > MAX_HEAD:
            self.transport.pause_reading()  # resumed once the buffered requests are answered
        if self.task is None:
            self._next()

    def eof_received(self) -> bool:
        if self.dropping:
            return False  # the transport closes
        self.eof = True
        if self.task is None:
            self._next()
        return True  # keep the transport open to answer what was sent before the end

    def pause_writing(self) -> None:
        self.writable = self.loop.create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.writable = None

    # ------------------------------------------------------------------ requests

    def _next(self) -> None:
        """Answer the next complete request in the buffer, if there is one."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or end + 4 > MAX_HEAD:
            if len(self.buffer) > MAX_HEAD:
                self._answer_and_close(HttpAnswer.text(
                    http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large",
                    close=True))
            elif self.eof:
                self.transport.close()
            else:
                self.transport.resume_reading()
            return
        head = bytes(self.buffer[: end + 4])
        del self.buffer[: end + 4]
        if self.timer is not None:
            self.timer.cancel()
        try:
            request = parse_head(head)
        except BadRequest as error:
            self._answer_and_close(error.answer)
            return
        self.task = self.loop.create_task(self._serve(request, head))

    async def _serve(self, request: HttpRequest, head: bytes) -> None:
        answer = self._screen(request)
        if answer is None:
            answer = await self._answer(request, head)
            if answer is None:  # the connection is websockets' now
                return
            self._let_read(request, answer)
        complete = await self._send(answer, body=request.method != "HEAD")
        self.task = None
        if answer.close or not complete:
            # a refused upgrade may be followed by frames (an upload) sent with it
            self._close(linger=request.has_body or request.upgrade)
        else:
            self._wait_for_request()
            self._next()

    def _screen(self, request: HttpRequest) -> HttpAnswer | None:
        """The answer to a request that must not reach the pages or the WebSocket, if it is."""
        hosts = request.values("host")
        if len(hosts) != 1:
            return HttpAnswer.text(http.HTTPStatus.BAD_REQUEST,
                                   "a request needs exactly one Host header", close=True)
        if not self.front.access.hosts.fullmatch(hosts[0]):
            # a page whose name was made to resolve to 127.0.0.1 (DNS rebinding) gets nothing
            return HttpAnswer.text(http.HTTPStatus.MISDIRECTED_REQUEST, "unknown host")
        if request.method not in ("GET", "HEAD"):
            return HttpAnswer.text(http.HTTPStatus.METHOD_NOT_ALLOWED, "only GET and HEAD",
                                   extra=(("Allow", "GET, HEAD"),), close=request.has_body)
        if request.has_body:
            return HttpAnswer.text(http.HTTPStatus.BAD_REQUEST,
                                   "a GET or HEAD request has no body", close=True)
        assert self.ticket is not None
        if self.ticket.refusal and not request.upgrade:  # a WebSocket is told after its handshake
            return HttpAnswer.text(http.HTTPStatus.SERVICE_UNAVAILABLE, self.ticket.refusal,
                                   extra=(("Retry-After", "5"),), close=True)
        return None

    async def _answer(self, request: HttpRequest, head: bytes) -> HttpAnswer | None:
        """The answer to a request that passed `_screen`; None once a WebSocket upgrade is
        handed over."""
        verdict = await self._check_token(request)
        if verdict is Verdict.WRONG or (verdict is Verdict.MISSING and request.upgrade):
            return unauthorized(verdict)
        if request.upgrade:
            await self._drain()  # websockets expects a transport that is not paused
            self._hand_over(head, request.values("host")[0], request.target)
            return None
        # without the token, or for a page of another site, the route serves only what is
        # public (the page's files, /health's "ok")
        refusal = (unauthorized(verdict) if verdict not in (Verdict.OPEN, Verdict.GRANTED)
                   else None if self._page_allowed(request) else foreign_page())
        try:
            answer = await self.front.route(request.path, refusal)
        except Exception:
            log.exception("failed to answer %s %s", request.method, request.path)
            answer = HttpAnswer.text(http.HTTPStatus.INTERNAL_SERVER_ERROR,
                                     "the server failed (it is logged)", close=True)
        answer.close = answer.close or not request.keep_alive
        return answer

    async def _check_token(self, request: HttpRequest) -> Verdict:
        """Whether the request carries the access token. One that carries a token, from an
        address that sent wrong ones lately, waits first (`Clients.access_pause`): a guesser
        gets one answer per pause however many connections it opens, and a pause ends
        before each comparison, so the first request after it is compared alone."""
        access, clients, ticket = self.front.access, self.front.clients, self.ticket
        assert ticket is not None
        if access.carries_token(request.target):
            while (pause := clients.access_pause(ticket)) > 0:
                await asyncio.sleep(pause)
        verdict = access.verdict(request.target)
        if verdict is Verdict.WRONG:
            clients.access_refused(ticket)
        elif verdict is Verdict.GRANTED:
            clients.access_granted(ticket)
        return verdict

    def _page_allowed(self, request: HttpRequest) -> bool:
        """Whether the request comes from a page the WebSocket would accept, or from no page
        at all (no Origin: a plain <img>, which lets no other site read the picture, or a
        client that is not a browser)."""
        origins = request.values("origin")
        return len(origins) <= 1 and self.front.access.origin_allowed(
            origins[0] if origins else None, request.values("host")[0], request.target)

    def _let_read(self, request: HttpRequest, answer: HttpAnswer) -> None:
        """Let the page read the answer (CORS) if it is one the WebSocket would accept; and
        any page /health's public answer, which says only why a WebSocket was refused (the
        page from disk reads it to tell a missing token or key from a server that is down)."""
        origins = request.values("origin")
        if len(origins) == 1 and origins[0] and (
                self._page_allowed(request) or answer.public):
            answer.extra += (("Access-Control-Allow-Origin", origins[0]), ("Vary", "Origin"))

    def _hand_over(self, head: bytes, host: str, target: str) -> None:
        """From here on the connection is websockets': the handshake request, then frames."""
        assert self.ticket is not None
        rest, self.buffer = bytes(self.buffer), bytearray()
        self.front.doors.discard(self)
        connection = self.front.websocket(self.ticket, host, target)
        self.ticket = None  # the WebSocket connection gives it back when it ends
        self.transport.set_protocol(connection)
        connection.connection_made(self.transport)
        connection.start(head, rest)
        self.transport.resume_reading()

    # ------------------------------------------------------------------ answers

    async def _send(self, answer: HttpAnswer, body: bool) -> bool:
        """Write an answer; False when it could not be sent whole (the connection must end)."""
        self.transport.write(answer.head())
        if answer.file is None:
            if body:
                self.transport.write(answer.body)
            return await self._drain()
        try:
            return await self._stream(answer.file) if body else await self._drain()
        finally:
            answer.file.close()

    async def _stream(self, file: ServedFile) -> bool:
        sent = 0
        while sent < file.size:
            chunk = await asyncio.to_thread(os.pread, file.fd, min(CHUNK, file.size - sent),
                                            sent)
            if not chunk or self.transport.is_closing():  # the file shrank, or the reader left
                return False
            self.transport.write(chunk)
            sent += len(chunk)
            if not await self._drain():
                return False
        return True

    async def _drain(self) -> bool:
        """Wait until the reader has taken what was written; False if it stalled and was cut."""
        if self.writable is None:
            return True
        try:
            async with asyncio.timeout(STALL):
                await asyncio.shield(self.writable)
        except TimeoutError:
            self.transport.abort()
            return False
        return not self.transport.is_closing()

    def _answer_and_close(self, answer: HttpAnswer) -> None:
        self.transport.write(answer.head() + answer.body)
        self._close(linger=True)

    def _close(self, linger: bool) -> None:
        """Close once the answer is out. With `linger`, first read and drop what the client
        still sends for a moment: closing a socket with unread bytes sends a reset, which can
        destroy the answer before the client reads it."""
        if not linger:
            self.transport.close()
            return
        self.dropping = True
        self.buffer.clear()
        with contextlib.suppress(OSError, RuntimeError):
            self.transport.write_eof()
        self.transport.resume_reading()
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_later(LINGER, self.transport.close)

    def _wait_for_request(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_later(HTTP_IDLE, self.transport.close)
