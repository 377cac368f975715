"""The front door: every TCP connection to the server's port starts here.

Plain HTTP/1.1 is answered here: GET and HEAD only (405 for any other method, lowercase ones
included), exactly one Host header naming this machine, the access token where the server has
one (`access.py`: 401 without it), pipelined requests answered in order, files streamed in
chunks (a reader that keeps reading is never cut; one that reads nothing for STALL seconds is).
A request to upgrade to a WebSocket passes the same checks; websockets' Sans-I/O protocol then
judges the handshake (the Origin, the WebSocket headers) and does the framing, in a
`WebSocket` (websocket.py) that is handed the bytes read so far. The frames a client sends are
admitted against the server's `MemoryBudget` as their headers arrive, before their payload is
read.

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
import socket
import stat
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h11
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Response
from websockets.server import ServerProtocol

from server.serve.access import Access, Verdict
from server.serve.limits import Clients, MemoryBudget, Ticket
from server.serve.websocket import (
    CLOSE_TIMEOUT,
    MAX_MESSAGE,
    SERVER_NAME,
    WebSocket,
    WritesFlow,
    handshake_response,
)

log = logging.getLogger("wordpix.server")

MAX_HEAD = 8 * 2**10       # request line and headers
MAX_HEADERS = 64
HTTP_IDLE = 15.0           # seconds a connection may take to send its (next) request head
STALL = 30.0               # seconds a reader may read nothing of a response before it is cut
LINGER = 2.0               # seconds spent reading and dropping a body we will not use
CHUNK = 256 * 2**10        # a file is sent this much at a time
BACKLOG = 1024             # connections the kernel queues before they are accepted
# What h11 accepts, as RFC 9112 lets a server, but a proxy in front might read differently
# (request smuggling): a bare CR or LF, a folded header line, control characters
_AMBIGUOUS = re.compile(rb"\r(?!\n)|(?<!\r)\n|\r\n[ \t]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


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
    """A request line and its header fields (`head` ends with the blank line), parsed by h11,
    strictly: anything a proxy might read differently is refused rather than guessed at."""
    if _AMBIGUOUS.search(head[:-4]):
        raise BadRequest(http.HTTPStatus.BAD_REQUEST, "malformed request head")
    parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    parser.receive_data(head)
    try:
        event = parser.next_event()
    except h11.RemoteProtocolError as error:
        raise BadRequest(http.HTTPStatus(error.error_status_hint), str(error)) from None
    if not isinstance(event, h11.Request):  # a head ends with the blank line: h11 has it all
        raise BadRequest(http.HTTPStatus.BAD_REQUEST, "malformed request head")
    if event.http_version not in (b"1.1", b"1.0"):
        raise BadRequest(http.HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "HTTP/1.1 only")
    if len(event.headers) > MAX_HEADERS:
        raise BadRequest(http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "too many headers")
    headers = tuple((name.decode("ascii"), value.decode("latin-1"))
                    for name, value in event.headers)  # names in lower case
    return HttpRequest(event.method.decode("ascii"), event.target.decode("ascii"),
                       "HTTP/" + event.http_version.decode("ascii"), headers)


Handler = Callable[[WebSocket], Awaitable[None]]
# (path, the answer to a request for gallery data, or None when it may have it)
Route = Callable[[str, HttpAnswer | None], Awaitable[HttpAnswer]]


class Front:
    """The listening socket: `Door`s answer HTTP and hand WebSocket upgrades to `WebSocket`s.

    `await Front(...)` listens; `close`, `wait_closed`, `sockets` and `async with` work as with
    an asyncio server. Closing it closes every WebSocket with 1001 (going away).
    """

    def __init__(self, handler: Handler, route: Route, clients: Clients, *, host: str,
                 port: int, access: Access):
        self.handle, self.route, self.clients = handler, route, clients
        self.host, self.port, self.access = host, port, access
        self.limits = clients.limits
        self.budget = MemoryBudget(self.limits.memory)
        self.doors: set[Door] = set()
        self.websockets: set[WebSocket] = set()
        self.tasks: set[asyncio.Task] = set()
        self.server: asyncio.Server | None = None

    def __await__(self) -> Generator[Any, None, Front]:
        return self.listen().__await__()

    async def listen(self) -> Front:
        self.server = await asyncio.get_running_loop().create_server(
            lambda: Door(self), self.host, self.port, backlog=BACKLOG)
        return self

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self.server.sockets) if self.server is not None else ()

    def websocket(self, ticket: Ticket, transport: asyncio.Transport, request: HttpRequest,
                  head: bytes) -> tuple[WebSocket, Response]:
        """The connection for a handshake request, and websockets' answer to it (101, or the
        refusal of a bad Origin or bad WebSocket headers)."""
        protocol = ServerProtocol(
            origins=self.access.origins_for(request.values("host")[0], request.target),
            max_size=MAX_MESSAGE, logger=logging.getLogger("websockets.server"))
        response = handshake_response(protocol, head)
        return WebSocket(protocol, self, ticket, transport), response

    def run(self, websocket: WebSocket) -> None:
        """Serve an open WebSocket with the handler, in a task of its own."""
        self.websockets.add(websocket)
        task = asyncio.get_running_loop().create_task(self._run(websocket))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, websocket: WebSocket) -> None:
        try:
            await self.handle(websocket)
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("a connection's handler failed")
        finally:
            await websocket.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for door in list(self.doors):
            door.transport.close()
        for websocket in list(self.websockets):
            task = asyncio.get_running_loop().create_task(
                websocket.close(CloseCode.GOING_AWAY))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def wait_closed(self) -> None:
        if self.server is not None:
            await self.server.wait_closed()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=CLOSE_TIMEOUT * 2)

    async def __aenter__(self) -> Front:
        return self

    async def __aexit__(self, *_: object) -> None:
        self.close()
        await self.wait_closed()


class Door(WritesFlow):
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
            if request.method != "GET":
                return HttpAnswer.text(http.HTTPStatus.BAD_REQUEST,
                                       "a WebSocket handshake is a GET", close=True)
            await self._drain()  # the handshake's answer starts with a transport not paused
            assert self.ticket is not None
            websocket, response = self.front.websocket(self.ticket, self.transport, request,
                                                        head)
            if response.status_code != http.HTTPStatus.SWITCHING_PROTOCOLS:
                return HttpAnswer(http.HTTPStatus(response.status_code), bytes(response.body),
                                  close=True)
            self._hand_over(websocket, response)
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

    def _hand_over(self, websocket: WebSocket, response: Response) -> None:
        """From here on the connection is the WebSocket's: the 101 answer, then frames."""
        rest, self.buffer = bytes(self.buffer), bytearray()
        self.front.doors.discard(self)
        self.ticket = None  # the WebSocket gives it back when it ends
        if self.timer is not None:
            self.timer.cancel()
        websocket.start(response, rest)
        self.transport.resume_reading()
        self.front.run(websocket)

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
