"""The query server: one asyncio process, WebSocket queries and plain HTTP on the same port.

HTTP GET serves the page (`/`, and the other files of web/ by name) and gallery images
(`/images/<id>`); nothing else on disk can be reached, because paths are looked up, never
joined. WebSocket messages are the JSON protocol of docs/protocol.md; binary messages are image
uploads. A client's mistake gets an error message on its own connection and nothing else
changes: no traceback, no closed connection, no state touched.
"""

from __future__ import annotations

import asyncio
import http
import itertools
import json
import logging
import mimetypes
import re
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Origin

from server.artifacts import load_word_space
from server.images import BadImage, load_input
from server.serve.encoder import ImageEncoder
from server.serve.gallery import Gallery
from server.serve.query import MAX_QUERY_CHARS, MAX_TERMS, QueryError
from server.serve.retrieval import Answer, QueryRequest, Retriever
from server.serve.search import Backend, make_search
from server.serve.spelling import SpellingIndex

log = logging.getLogger("wordpix.server")

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
MAX_MESSAGE = 16 * 2**20       # the protocol closes a connection (1009) beyond this
MAX_TEXT_MESSAGE = 64 * 2**10  # a JSON request is small; larger ones get an error
MAX_UPLOAD = 10 * 2**20
MAX_UPLOADS = 16               # per connection; the oldest is forgotten first
MAX_UPLOAD_PIXELS = 24_000_000  # a 6000 x 4000 photo; decoding one costs ~100 MB for a moment
UPLOAD_SLOTS = 2               # uploads decoded at once, whatever the number of connections
MAX_BATCH = 64
MAX_RESULTS = 200
DEFAULT_RESULTS = 24
# Browsers send these Origins: the page from disk says "null"; non-browser clients send none.
LOCAL_ORIGINS: list[Origin | re.Pattern[str] | None] = [
    None, Origin("null"), re.compile(r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?")]
LOCAL_HOSTS = re.compile(r"(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?")


@dataclass
class Session:
    """What one connection remembers: its uploaded images, by number."""

    uploads: OrderedDict[int, np.ndarray] = field(default_factory=OrderedDict)
    numbers: itertools.count = field(default_factory=lambda: itertools.count(1))


class Batcher:
    """Queries that arrive in the same turn of the event loop are answered together.

    With one client a query is answered at once (a batch of one); with many, the batch grows by
    itself, and one matrix product for the batch costs far less than one per query.
    """

    def __init__(self, retriever: Retriever):
        self.retriever = retriever
        self.pending: list[tuple[QueryRequest, asyncio.Future]] = []

    def answer(self, request: QueryRequest) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        if not self.pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self.pending.append((request, future))
        return future

    def _flush(self) -> None:
        # at most MAX_BATCH at a time: the score matrix grows with the batch, and other
        # connections get the event loop back in between
        batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
        if self.pending:
            asyncio.get_running_loop().call_soon(self._flush)
        results: Sequence[Answer | Exception]
        try:
            results = self.retriever.answer_many([request for request, _ in batch])
        except Exception as error:  # a bug must fail these queries, not hang them
            results = [error] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.cancelled():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


class ClientError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class App:
    """Everything a request needs, loaded once at startup."""

    def __init__(self, retriever: Retriever, encoder: ImageEncoder, web_dir: Path = WEB_DIR,
                 name: str = "gallery"):
        self.retriever, self.encoder, self.name = retriever, encoder, name
        self.gallery = retriever.gallery
        self.batcher = Batcher(retriever)
        self.upload_slots = asyncio.Semaphore(UPLOAD_SLOTS)
        self.hosts = LOCAL_HOSTS
        self.web_files = {f"/{p.name}": p for p in Path(web_dir).iterdir() if p.is_file()} \
            if Path(web_dir).is_dir() else {}
        if "/index.html" in self.web_files:
            self.web_files["/"] = self.web_files["/index.html"]
        self.hello = {
            "type": "hello", "gallery": {"name": name, "count": len(self.gallery)},
            "examples": retriever.answerable(), "gallery_examples": retriever.gallery_examples(),
            "limits": {"query_chars": MAX_QUERY_CHARS, "terms": MAX_TERMS,
                       "results": MAX_RESULTS, "upload_bytes": MAX_UPLOAD},
        }

    # ------------------------------------------------------------------ WebSocket

    async def handle(self, connection: ServerConnection) -> None:
        session = Session()
        try:
            await connection.send(json.dumps(self.hello))
            async for message in connection:
                await connection.send(json.dumps(await self.reply(message, session)))
        except ConnectionClosed:
            pass

    async def reply(self, message: str | bytes, session: Session) -> dict:
        started = time.perf_counter()
        request_id = None
        try:
            if isinstance(message, bytes) and message.lstrip()[:1] != b"{":
                return await self.upload(message, session, started)
            request = _decode(message)
            request_id = request.get("id")
            kind = request.get("type")
            if kind == "query":
                return await self.query(request, session, started)
            if kind == "browse":
                return self.browse(request, started)
            if kind == "ping":
                return {"type": "pong", "id": request_id}
            raise ClientError("bad_type", f"unknown message type {kind!r}: send "
                                          '{"type": "query", "q": "beach+sunrise"}')
        except ClientError as error:
            log.debug("client error %s: %s", error.code, error)
            return {"type": "error", "id": request_id, "code": error.code, "error": str(error)}
        except QueryError as error:
            return {"type": "error", "id": request_id, "code": "bad_query", "error": str(error)}
        except Exception:
            log.exception("failed to answer a message")
            return {"type": "error", "id": request_id, "code": "internal",
                    "error": "the server failed to answer this message (it is logged)"}

    async def query(self, request: dict, session: Session, started: float) -> dict:
        text = request.get("q")
        if not isinstance(text, str):
            raise ClientError("bad_request", 'a query message needs "q": the query text')
        k = _whole_number(request, "k", DEFAULT_RESULTS, 1, MAX_RESULTS)
        exclude = request.get("exclude_query_images", True)
        if not isinstance(exclude, bool):
            raise ClientError("bad_request", '"exclude_query_images" must be true or false')
        answer = await self.batcher.answer(
            QueryRequest(text, dict(session.uploads), k, exclude_query_images=exclude))
        results = [{"id": hit.id, "score": hit.score, "caption": hit.caption,
                    "url": f"/images/{hit.id}"} for hit in answer.hits]
        return {"type": "results", "id": request.get("id"), "q": text, "query": answer.query,
                "terms": answer.terms,
                "corrections": [{"from": a, "to": b} for a, b in answer.corrections],
                "results": results, "nearest_words": answer.nearest_words,
                "ms": round((time.perf_counter() - started) * 1e3, 3)}

    def browse(self, request: dict, started: float) -> dict:
        """A page of the gallery in id order, for the grid before any query."""
        k = _whole_number(request, "k", DEFAULT_RESULTS, 1, MAX_RESULTS)
        offset = _whole_number(request, "offset", 0, 0, 2**31)
        results = [{"id": item.id, "score": None, "caption": item.caption,
                    "url": f"/images/{item.id}"} for item in self.gallery.page(offset, k)]
        return {"type": "gallery", "id": request.get("id"), "offset": offset,
                "total": len(self.gallery), "results": results,
                "ms": round((time.perf_counter() - started) * 1e3, 3)}

    async def upload(self, data: bytes, session: Session, started: float) -> dict:
        if len(data) > MAX_UPLOAD:
            raise ClientError("bad_upload", f"the image is too large ({len(data):,} bytes, at "
                                            f"most {MAX_UPLOAD:,})")
        try:
            # decoding and the CNN take tens of milliseconds: off the event loop, and only
            # UPLOAD_SLOTS at a time so that many uploads cannot exhaust memory
            async with self.upload_slots:
                vector = await asyncio.to_thread(self._embed_upload, data)
        except BadImage as error:
            raise ClientError("bad_upload", f"the upload is not a usable image: {error}") from None
        number = next(session.numbers)
        session.uploads[number] = vector
        while len(session.uploads) > MAX_UPLOADS:
            session.uploads.popitem(last=False)
        return {"type": "uploaded", "upload": number, "term": f"[UPLOAD_{number}]",
                "ms": round((time.perf_counter() - started) * 1e3, 3)}

    def _embed_upload(self, data: bytes) -> np.ndarray:
        pixels = load_input(data, self.encoder.image_size, max_pixels=MAX_UPLOAD_PIXELS)
        return self.encoder.embed_inputs(pixels[None])[0]

    # ------------------------------------------------------------------ HTTP

    async def http(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None  # the WebSocket handshake goes on (and checks the Origin)
        if not self.hosts.fullmatch(request.headers.get("Host", "")):
            # a page whose name was made to resolve to 127.0.0.1 (DNS rebinding) gets nothing
            return _response(http.HTTPStatus.MISDIRECTED_REQUEST, b"unknown host\n",
                             "text/plain")
        path = request.path.split("?", 1)[0]
        if path in self.web_files:
            return await _file_response(self.web_files[path], cache="no-cache")
        match = re.fullmatch(r"/images/(\d{1,9})", path)
        if match:
            item = self.gallery.by_id(int(match.group(1)))
            if item is not None:
                return await _file_response(self.gallery.root / item.path, cache="max-age=3600")
        if path == "/health":
            return _response(http.HTTPStatus.OK, json.dumps(
                {"ok": True, "images": len(self.gallery)}).encode(), "application/json")
        return _response(http.HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")


def _whole_number(request: dict, name: str, default: int, low: int, high: int) -> int:
    value = request.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ClientError("bad_request", f'"{name}" must be a whole number from {low} to {high}')
    return value


def _decode(message: str | bytes) -> dict:
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError:
            raise ClientError("bad_json", "the message is neither an image nor UTF-8 JSON"
                              ) from None
    if len(message) > MAX_TEXT_MESSAGE:
        raise ClientError("too_large", f"the message is too long ({len(message):,} characters,"
                                       f" at most {MAX_TEXT_MESSAGE:,})")
    try:
        request = json.loads(message)
    except (json.JSONDecodeError, RecursionError):
        raise ClientError("bad_json", "the message is not valid JSON") from None
    if not isinstance(request, dict):
        raise ClientError("bad_json", "the message must be a JSON object")
    return request


def _response(status: http.HTTPStatus, body: bytes, content_type: str,
              cache: str = "no-store") -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Cache-Control", cache), ("X-Content-Type-Options", "nosniff")])
    return Response(status.value, status.phrase, headers, body)


async def _file_response(path: Path, cache: str) -> Response:
    try:
        body = await asyncio.to_thread(path.read_bytes)
    except OSError:
        return _response(http.HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return _response(http.HTTPStatus.OK, body, content_type, cache)


def load_app(model_dir: Path, index_dir: Path, web_dir: Path = WEB_DIR,
             backend: Backend = "auto", caption_weight: float = 1.0) -> App:
    """Load the words, the CNN and the gallery, logging how long each took."""
    timings = {}
    start = time.perf_counter()
    words = load_word_space(model_dir)
    spelling = SpellingIndex(words.words)
    timings["words"] = time.perf_counter() - start
    start = time.perf_counter()
    encoder = ImageEncoder(model_dir)
    timings["cnn"] = time.perf_counter() - start
    start = time.perf_counter()
    gallery = Gallery(index_dir, model_fingerprint=encoder.fingerprint)
    vectors = gallery.search_vectors(caption_weight)
    search = make_search(vectors, backend, index_file=gallery.search_cache(caption_weight))
    timings["gallery"] = time.perf_counter() - start
    app = App(Retriever(words, gallery, search, spelling, vectors), encoder, web_dir,
              name=Path(index_dir).name)
    log.info("loaded %d words in %.2f s, the CNN in %.2f s, %d gallery images in %.2f s (%s)",
             len(words), timings["words"], timings["cnn"], len(gallery),
             timings["gallery"], type(search).__name__)
    return app


async def start(app: App, host: str = "127.0.0.1", port: int = 9998,
                allow_origins: Sequence[str] = (), page_from_disk: bool = True) -> Server:
    """Listen; HTTP answers only Host names of this machine, the host listened on and the
    allowed origins, and the WebSocket only those origins (and the page from disk, whose
    Origin is "null": so is a sandboxed frame's on any site, hence `page_from_disk`)."""
    names = [r"localhost|127\.0\.0\.1|\[::1\]", re.escape(host),
             *(re.escape(urlsplit(origin).hostname or "") for origin in allow_origins)]
    app.hosts = re.compile(rf"({'|'.join(names)})(:\d{{1,5}})?", re.IGNORECASE)
    origins = [*(o for o in LOCAL_ORIGINS if page_from_disk or o != "null"),
               re.compile(rf"https?://{re.escape(host)}(:\d{{1,5}})?"),
               *(Origin(origin) for origin in allow_origins)]
    return await serve(app.handle, host, port, process_request=app.http, origins=origins,
                       max_size=MAX_MESSAGE, max_queue=4, compression=None,
                       server_header="wordpix")
