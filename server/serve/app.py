"""The query server: one asyncio process, WebSocket queries and plain HTTP on the same port.

HTTP GET and HEAD serve the page (`/`, and the other files of web/ by name) and gallery images
(`/images/<id>`, only the very file that was indexed); nothing else on disk can be reached,
because paths are looked up, never joined. Where the server has an access token, everything but
the page's files and `/health`'s "ok" needs it (`access.py`). The connection handling (HTTP,
the hand-over to websockets, the token, connection caps, the memory budget for messages) is in
`front.py`; this module is what the server says. WebSocket messages are the JSON protocol of
docs/protocol.md; binary messages are image uploads. A client's mistake gets an error message on
its own connection and nothing else changes: no traceback, no closed connection, no state
touched. Every reply is strict JSON (no NaN or Infinity), which a browser's JSON.parse reads.
"""

from __future__ import annotations

import asyncio
import http
import itertools
import json
import logging
import math
import mimetypes
import multiprocessing
import os
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from server.artifacts import load_word_space
from server.english import EnglishWords
from server.serve.access import access_for
from server.serve.encoder import ImageEncoder
from server.serve.examples import offer
from server.serve.front import (
    Front,
    GuardedConnection,
    HttpAnswer,
    ServedFile,
    open_regular,
)
from server.serve.gallery import Gallery, Item
from server.serve.hubness import cached_hubness, load_bank
from server.serve.limits import DEFAULT_LIMITS, Clients, Limits, Ticket
from server.serve.look import Fit, picture_fit, title
from server.serve.query import MAX_QUERY_CHARS, MAX_TERMS, QueryError, read, reading_fields
from server.serve.retrieval import Answer, QueryRequest, Retriever
from server.serve.search import Backend, make_search
from server.serve.settings import DEFAULT_PORT, WEB_DIR
from server.serve.spelling import Speller
from server.serve.workers import embed_upload, start_upload_worker

log = logging.getLogger("wordpix.server")
T = TypeVar("T")

MAX_TEXT_MESSAGE = 64 * 2**10  # bytes of UTF-8: a JSON request is small; larger ones get an error
MAX_UPLOAD = 10 * 2**20
MAX_UPLOADS = 16               # per connection; the oldest is forgotten first
MAX_UPLOAD_PIXELS = 24_000_000  # a 6000 x 4000 photo (a JPEG decodes at 1/8 scale: ~1 MB)
MAX_BATCH = 64
BATCH_SHARE = 4                # queries of one address in one batch: the others wait for less
HEAVY_SHARE = 1                # ... of an address that has used most of its share
MAX_RESULTS = 200
DEFAULT_RESULTS = 24
MAX_ID = 2**53                 # ids are integers a browser's JSON.parse reads exactly
MESSAGE_COST = 2e-4            # seconds charged for any message (JSON, transport) on top of work
BUSY_PAUSE = 1.0               # at most this long, a connection told `busy` is not read
DESCRIBE_WORDS = 8
LIMITS = {"query_chars": MAX_QUERY_CHARS, "terms": MAX_TERMS, "results": MAX_RESULTS,
          "upload_bytes": MAX_UPLOAD, "uploads": MAX_UPLOADS,
          "message_bytes": MAX_TEXT_MESSAGE}
NO_INDEX = ("There is no gallery index yet. Build one, then start the server again: `make demo` "
            "(Tux Paint's stamps), or `python -m scripts.index ~/Pictures --index "
            "runs/index/pictures` for a folder of your own.")


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


class Batched(NamedTuple):
    request: QueryRequest
    ticket: Ticket  # the connection's: its address, and how much of its share is left
    future: asyncio.Future  # of (Answer, seconds of work this query's share of the batch took)


class Batcher:
    """Queries that arrive in the same turn of the event loop are answered together.

    With one client a query is answered at once (a batch of one); with many, the batch grows by
    itself, and one matrix product for the batch costs far less than one per query.

    Fairness: a batch takes the queries of light addresses (`Clients.light`) before any of
    heavy ones, and at most BATCH_SHARE queries of one address (HEAVY_SHARE of a heavy one). A
    client with many connections cannot fill every batch, and another's query waits at most for
    the small batch being answered, never in a batch with the heavy client's.
    """

    def __init__(self, retriever: Retriever, clients: Clients):
        self.retriever, self.clients = retriever, clients
        self.pending: list[Batched] = []

    def answer(self, request: QueryRequest, ticket: Ticket) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        if not self.pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self.pending.append(Batched(request, ticket, future))
        return future

    def _flush(self) -> None:
        # at most MAX_BATCH at a time: the score matrix grows with the batch, and other
        # connections get the event loop back in between
        batch, self.pending = self._take()
        if self.pending:
            asyncio.get_running_loop().call_soon(self._flush)
        started = time.perf_counter()
        results: Sequence[Answer | Exception]
        try:
            results = self.retriever.answer_many([entry.request for entry in batch])
        except Exception as error:  # a bug must fail these queries, not hang them
            results = [error] * len(batch)
        share = (time.perf_counter() - started) / len(batch)
        for entry, result in zip(batch, results, strict=True):
            if entry.future.cancelled():
                continue
            if isinstance(result, Exception):
                entry.future.set_exception(result)
            else:
                entry.future.set_result((result, share))

    def _take(self) -> tuple[list[Batched], list[Batched]]:
        """(this batch, what waits for the next), each in order of arrival."""
        light = [entry for entry in self.pending if self.clients.light(entry.ticket)]
        candidates, share = (light, BATCH_SHARE) if light else (self.pending, HEAVY_SHARE)
        batch: list[Batched] = []
        taken: Counter[str] = Counter()
        for entry in candidates:
            if len(batch) < MAX_BATCH and taken[entry.ticket.address] < share:
                batch.append(entry)
                taken[entry.ticket.address] += 1
        chosen = {id(entry) for entry in batch}
        return batch, [entry for entry in self.pending if id(entry) not in chosen]


class ClientError(Exception):
    def __init__(self, code: str, message: str, retry: float = 0.0):
        super().__init__(message)
        self.code = code
        self.retry = retry  # for `busy`: seconds until the client may send again


class App:
    """Everything a request needs, loaded once at startup."""

    def __init__(self, retriever: Retriever, encoder: ImageEncoder, web_dir: Path = WEB_DIR,
                 name: str = "gallery", fit: Fit = "cover", limits: Limits = DEFAULT_LIMITS):
        self.retriever, self.encoder, self.name = retriever, encoder, name
        self.gallery = retriever.gallery
        self.root = self.gallery.root.resolve()
        self.limits = limits
        self.clients = Clients(limits)
        self.batcher = Batcher(retriever, self.clients)
        # decoding and the CNN take tens of milliseconds to seconds: in `upload_slots` worker
        # processes at a lower priority (server/serve/workers.py), started now, before the
        # event loop has signal handlers and threads that a fork would copy
        self.workers = _start_workers(limits.upload_slots, encoder.directory)
        self.web_files = _web_files(web_dir)
        offered = offer(retriever)
        self.hello = json.dumps({
            "type": "hello", "gallery": {"name": name, "title": title(self.gallery),
                                         "count": len(self.gallery), "fit": fit},
            "examples": offered.examples, "gallery_examples": offered.words, "limits": LIMITS,
        })

    # ------------------------------------------------------------------ WebSocket

    async def handle(self, connection: GuardedConnection) -> None:
        """One connection: its messages are answered one at a time, in order."""
        if connection.ticket.refusal:
            await connection.close(CloseCode.TRY_AGAIN_LATER, connection.ticket.refusal)
            return
        closed = asyncio.ensure_future(connection.wait_closed())
        session = Session(connection.ticket, closed)
        try:
            await connection.send(self.hello)
            while True:
                message = await connection.recv()
                reply = await self.reply(message, session)
                connection.done_with(message)
                del message  # not kept while this connection waits for its next one
                await connection.send(_encode(reply))
                if reply.get("code") == "busy":  # a flood is read no faster than it is served
                    await asyncio.sleep(min(reply["retry_ms"] / 1e3, BUSY_PAUSE))
        except (ConnectionClosed, Gone):
            pass
        finally:
            closed.cancel()

    async def reply(self, message: str | bytes, session: Session) -> dict:
        """The answer to one message, or the error it gets; charges its work to its address."""
        started = time.perf_counter()
        session.cost = MESSAGE_COST
        request_id: str | int | None = None  # until the request's own is known to be valid
        try:
            if isinstance(message, bytes) and message.lstrip()[:1] != b"{":
                self._admit(session)
                return await self.upload(message, session, started)
            try:
                request = _decode(message)
                request_id = _request_id(request)
            finally:  # a flood of garbage is refused like anything else: `busy` wins
                self._admit(session)
            return await self._dispatch(request, request_id, session, started)
        except (ClientError, QueryError) as error:
            return self._error(error, request_id, session)
        except Gone:
            raise
        except Exception:
            log.exception("failed to answer a message")
            return {"type": "error", "id": request_id, "code": "internal",
                    "error": "the server failed to answer this message (it is logged)"}
        finally:
            self.clients.charge(session.ticket, session.cost)

    async def _dispatch(self, request: dict, request_id: str | int | None, session: Session,
                        started: float) -> dict:
        kind = request.get("type")
        if kind == "query":
            return await self.query(request, session, started)
        if kind == "browse":
            return self.browse(request, session, started)
        if kind == "describe":
            return self.describe(request, started)
        if kind == "ping":
            return {"type": "pong", "id": request_id}
        if kind == "parse":
            return parsed(request)
        raise ClientError("bad_type", f"unknown message type {_show(kind)}: send "
                                      '{"type": "query", "q": "beach+sunrise"}')

    @staticmethod
    def _error(error: ClientError | QueryError, request_id: object, session: Session) -> dict:
        code = error.code if isinstance(error, ClientError) else "bad_query"
        log.debug("client error %s: %s", code, error)
        reply = {"type": "error", "id": request_id, "code": code, "error": str(error)}
        if isinstance(error, QueryError):
            reply |= _unknown_word(error)
        if isinstance(error, ClientError) and code == "busy":
            reply["retry_ms"] = math.ceil(error.retry * 1e3)
            # not charged, or retry_ms would be too soon; the connection is not read for that
            # long instead (`handle`), which bounds what busy replies cost
            session.cost = 0.0
        return reply

    def _admit(self, session: Session) -> None:
        """Refuse the message if its client address has used up its share of the server."""
        wait = self.clients.wait(session.ticket)
        if wait > 0:
            raise ClientError("busy", f"too much work from {session.ticket.address}: retry in "
                                      f"{math.ceil(wait * 1e3)} ms", retry=wait)

    async def query(self, request: dict, session: Session, started: float) -> dict:
        text = request.get("q")
        if not isinstance(text, str):
            raise ClientError("bad_request", 'a query message needs "q": the query text')
        k = _whole_number(request, "k", DEFAULT_RESULTS, 1, MAX_RESULTS)
        exclude = request.get("exclude_query_images", True)
        if not isinstance(exclude, bool):
            raise ClientError("bad_request", '"exclude_query_images" must be true or false')
        answer, work = await self.batcher.answer(
            QueryRequest(text, dict(session.uploads), k, exclude_query_images=exclude),
            session.ticket)
        session.cost += work
        results = [{"id": hit.id, "score": hit.score, "caption": hit.caption,
                    "url": f"/images/{hit.id}"} for hit in answer.hits]
        return {"type": "results", "id": request.get("id"), "q": text, "query": answer.query,
                "terms": answer.terms,
                "corrections": [{"from": a, "to": b} for a, b in answer.corrections],
                "suggestions": [{"word": word, "alternatives": others}
                                for word, others in answer.suggestions],
                "results": results, "nearest_words": answer.nearest_words,
                "ms": round((time.perf_counter() - started) * 1e3, 3)}

    def browse(self, request: dict, session: Session, started: float) -> dict:
        """A page of the gallery in id order, for the grid before any query: the images after
        the id `after` (a key, so any page costs the same)."""
        if "offset" in request:
            raise ClientError("bad_request", 'browse pages by key: send "after", the last id '
                                             'you have (0 for the first page), not "offset"')
        k = _whole_number(request, "k", DEFAULT_RESULTS, 1, MAX_RESULTS)
        after = _whole_number(request, "after", 0, 0, MAX_ID)
        items = self.gallery.page(after, k + 1)  # one more: is there a next page?
        session.cost += time.perf_counter() - started
        results = [{"id": item.id, "score": None, "caption": item.caption,
                    "url": f"/images/{item.id}"} for item in items[:k]]
        return {"type": "gallery", "id": request.get("id"), "after": after,
                "next": items[k - 1].id if len(items) > k else None,
                "total": len(self.gallery), "results": results,
                "ms": round((time.perf_counter() - started) * 1e3, 3)}

    def describe(self, request: dict, started: float) -> dict:
        """A gallery image's caption and nearest words, for the page's preview."""
        image = _whole_number(request, "image", 0, 1, 10**9 - 1)
        k = _whole_number(request, "k", DESCRIBE_WORDS, 1, 50)
        item, nearest, picture = self.retriever.describe(image, k)
        reply = {"type": "described", "id": request.get("id"), "image": item.id,
                 "caption": item.caption, "url": f"/images/{item.id}", "nearest_words": nearest,
                 "ms": round((time.perf_counter() - started) * 1e3, 3)}
        if picture != nearest:  # the caption moves it: say what the picture alone is near
            reply["picture_words"] = picture
        return reply

    async def upload(self, data: bytes, session: Session, started: float) -> dict:
        if len(data) > MAX_UPLOAD:
            raise ClientError("bad_upload", f"the image is too large ({len(data):,} bytes, at "
                                            f"most {MAX_UPLOAD:,})")
        vector, seconds, reason = await self._unless_gone(session, self._embed(data))
        session.cost += seconds
        if vector is None:
            raise ClientError("bad_upload", f"the upload is not a usable image: {reason}")
        number = next(session.numbers)
        session.uploads[number] = vector
        while len(session.uploads) > MAX_UPLOADS:
            session.uploads.popitem(last=False)
        return {"type": "uploaded", "upload": number, "term": f"[UPLOAD_{number}]",
                "ms": round((time.perf_counter() - started) * 1e3, 3)}

    @staticmethod
    async def _unless_gone(session: Session, work: Awaitable[T]) -> T:
        """`work`'s result, unless the client leaves first: then the work is cancelled (an
        upload still queued is never decoded) and Gone is raised."""
        task = asyncio.ensure_future(work)
        await asyncio.wait([task, session.closed], return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            raise Gone
        return task.result()

    async def _embed(self, data: bytes) -> tuple[np.ndarray | None, float, str | None]:
        workers = self.workers
        try:
            return await asyncio.get_running_loop().run_in_executor(
                workers, embed_upload, data, MAX_UPLOAD_PIXELS, self.limits.upload_memory)
        except BrokenProcessPool:  # a worker died (a decoder crashed): start afresh
            log.warning("an upload worker died; starting new ones")
            if self.workers is workers:
                workers.shutdown(wait=False, cancel_futures=True)
                self.workers = _start_workers(self.limits.upload_slots, self.encoder.directory)
            return None, 0.0, "it made the image decoder fail"

    # ------------------------------------------------------------------ HTTP

    async def route(self, path: str, refusal: HttpAnswer | None = None) -> HttpAnswer:
        """What a GET of `path` answers (the front door has checked the method and Host);
        with a `refusal` (no access token, a page of another origin) only the page's files
        and /health's "ok", and the refusal for anything else."""
        if path in self.web_files:
            served = await asyncio.to_thread(open_regular, self.web_files[path])
            if served is not None:
                return HttpAnswer(http.HTTPStatus.OK, cache="no-cache", file=served,
                                  content_type=_content_type(self.web_files[path].name))
        if path == "/health":
            return _health(refusal, len(self.gallery))
        if refusal is not None:
            return refusal
        match = re.fullmatch(r"/images/([0-9]{1,9})", path)
        if match:
            item = self.gallery.by_id(int(match.group(1)))
            served = None if item is None else await asyncio.to_thread(self._open_indexed, item)
            if item is not None and served is not None:
                # private: the URL may carry the access token, so no shared cache keeps it
                return HttpAnswer(http.HTTPStatus.OK, content_type=_content_type(item.path),
                                  cache="private, max-age=3600", file=served)
        return HttpAnswer.text(http.HTTPStatus.NOT_FOUND, "not found")

    def _open_indexed(self, item: Item) -> ServedFile | None:
        """The file indexed as `item`, opened, if it is still that file: a regular file inside
        the gallery's root once every link is followed, of the size and mtime indexed. What
        is checked is the opened file itself, so a link re-pointed meanwhile changes nothing."""
        served = open_regular(self.root / item.path)
        if served is None:
            return None
        try:
            real = Path(os.readlink(f"/proc/self/fd/{served.fd}"))
        except OSError:  # no /proc: resolve the name instead
            real = (self.root / item.path).resolve()
        if (real.is_relative_to(self.root) and served.size == item.size and
                served.mtime_ns == item.mtime_ns):
            return served
        served.close()
        return None


def _start_workers(count: int, model_dir: Path) -> ProcessPoolExecutor:
    """Upload worker processes, forked now (a fork copies only this thread, and at start-up no
    other thread holds a lock the child could need)."""
    pool = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("fork"),
                               initializer=start_upload_worker, initargs=(model_dir,))
    for _ in range(count):
        pool.submit(int)  # forks the workers at once
    return pool


def _content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


class NoIndexApp(App):
    """`python -m server` before any index was built: the page, whose hello says how to build
    one, and that same message as the answer to every other request."""

    def __init__(self, web_dir: Path = WEB_DIR, limits: Limits = DEFAULT_LIMITS):
        # no gallery, so none of App's loading: only what the front door and handle use
        self.name, self.web_files = "", _web_files(web_dir)
        self.limits, self.clients = limits, Clients(limits)
        self.hello = json.dumps({"type": "hello", "gallery": None, "setup": NO_INDEX,
                                 "examples": [], "gallery_examples": [], "limits": LIMITS})

    async def reply(self, message: str | bytes, session: Session) -> dict:
        request_id = None
        try:
            if not isinstance(message, bytes) or message.lstrip()[:1] == b"{":
                request_id = _request_id(_decode(message))
        except ClientError:
            pass  # not JSON: the answer is the same
        return {"type": "error", "id": request_id, "code": "no_gallery", "error": NO_INDEX}

    async def route(self, path: str, refusal: HttpAnswer | None = None) -> HttpAnswer:
        if path == "/health":
            return _health(refusal, 0)
        if path.startswith("/images/") and refusal is None:
            return HttpAnswer.text(http.HTTPStatus.NOT_FOUND, "no gallery")
        return await super().route(path, refusal)  # the page's files


def parsed(request: dict) -> dict:
    """A `parse` request's reply: how the query reads, without running it (the page's terms)."""
    text = request.get("q")
    if not isinstance(text, str):
        raise ClientError("bad_request", 'a parse message needs "q": the query text')
    return {"type": "parsed", "id": request.get("id"), "q": text} | reading_fields(read(text))


def _health(refusal: HttpAnswer | None, images: int) -> HttpAnswer:
    """Alive, for anyone (a proxy's check); the gallery's size only to whom may see it. Any
    page learns why its WebSocket was refused: "token" (it needs the access token) or "page"
    (a page of another origin, or the page from disk without its key)."""
    if refusal is None:
        return HttpAnswer(http.HTTPStatus.OK, json.dumps({"ok": True, "images": images}).encode(),
                          "application/json")
    why = {"token": "required"} if refusal.status == http.HTTPStatus.UNAUTHORIZED else \
        {"page": "refused"}
    return HttpAnswer(http.HTTPStatus.OK, json.dumps({"ok": True, **why}).encode(),
                      "application/json", public=True)


def _web_files(web_dir: Path) -> dict[str, Path]:
    """The page's files by URL path: looked up, never joined, so nothing else can be read."""
    files = {f"/{p.name}": p for p in Path(web_dir).iterdir() if p.is_file()} \
        if Path(web_dir).is_dir() else {}
    if "/index.html" in files:
        files["/"] = files["/index.html"]
    return files


def _unknown_word(error: QueryError) -> dict:
    """For an unknown word: the word and the suggestions, for a page to offer as links."""
    return {"word": error.word, "suggestions": error.suggestions} if error.word else {}


def _whole_number(request: dict, name: str, default: int, low: int, high: int) -> int:
    value = request.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ClientError("bad_request", f'"{name}" must be a whole number from {low} to {high}')
    return value


def _request_id(request: dict) -> str | int | None:
    """The request's id, echoed in its reply: a string, a whole number a browser reads
    exactly (within +-2^53), or null."""
    value = request.get("id")
    if value is None or isinstance(value, str) or (
            isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_ID):
        return value
    raise ClientError("bad_request", '"id" must be a string, a whole number within +-2^53, '
                                     "or null")


def _show(value: object, limit: int = 60) -> str:
    """A client's value quoted in an error message, cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e309 reads as infinity: not a number JSON can hold
        raise ValueError(f"{text} is out of range")
    return value


def _decode(message: str | bytes) -> dict:
    """A text message (or a binary one starting with `{`) as a JSON object, strictly: NaN,
    Infinity, numbers out of range and integers of more digits than Python reads are all
    `bad_json`, like any other text that is not JSON."""
    if isinstance(message, bytes):
        size = len(message)
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError:
            raise ClientError("bad_json", "the message is neither an image nor UTF-8 JSON"
                              ) from None
    else:
        size = len(message) if message.isascii() else len(message.encode())
    if size > MAX_TEXT_MESSAGE:
        raise ClientError("too_large", f"the message is too long ({size:,} bytes of UTF-8, at "
                                       f"most {MAX_TEXT_MESSAGE:,})")
    try:
        request = json.loads(message, parse_constant=_reject_constant, parse_float=_finite)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise ClientError("bad_json", "the message is not valid JSON") from None
    if not isinstance(request, dict):
        raise ClientError("bad_json", "the message must be a JSON object")
    return request


def _encode(reply: dict) -> str:
    """A reply as strict JSON; one that cannot be (a bug) becomes an `internal` error."""
    try:
        return json.dumps(reply, allow_nan=False)
    except (ValueError, TypeError):
        log.exception("a reply is not JSON")
        return json.dumps({"type": "error", "id": reply.get("id"), "code": "internal",
                           "error": "the server failed to answer this message (it is logged)"})


def load_app(model_dir: Path, index_dir: Path, web_dir: Path = WEB_DIR,
             backend: Backend = "auto", caption_weight: float = 1.0,
             fit: Fit | None = None, limits: Limits = DEFAULT_LIMITS) -> App:
    """Load the words, the CNN and the gallery, logging how long each took. `fit`: how the
    page shows pictures; None looks at the gallery (picture_fit)."""
    timings = {}
    start = time.perf_counter()
    words = load_word_space(model_dir)
    english = EnglishWords.load(model_dir, words)
    speller = Speller(words.words, english.index if english else ())
    timings["words"] = time.perf_counter() - start
    start = time.perf_counter()
    # here for the model's fingerprint and input size: the upload workers run their own CNN
    encoder = ImageEncoder(model_dir, threads=1)
    timings["cnn"] = time.perf_counter() - start
    start = time.perf_counter()
    gallery = Gallery(index_dir, model_fingerprint=encoder.fingerprint)
    vectors = gallery.search_vectors(caption_weight)
    search = make_search(vectors, backend, index_file=gallery.search_cache(caption_weight))
    bank = load_bank(model_dir)
    hubs = None if bank is None else cached_hubness(
        vectors, bank, gallery.directory, gallery.search_cache(caption_weight).stem)
    timings["gallery"] = time.perf_counter() - start
    app = App(Retriever(words, gallery, search, english, speller, vectors, hubs), encoder, web_dir,
              name=Path(index_dir).name, fit=fit or picture_fit(gallery), limits=limits)
    log.info("loaded %d caption words and %d English words in %.2f s, the CNN in %.2f s, "
             "%d gallery images in %.2f s (%s)", len(words), len(english) if english else 0,
             timings["words"], timings["cnn"], len(gallery), timings["gallery"],
             type(search).__name__)
    return app


async def start(app: App, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                allow_origins: Sequence[str] = (), page_from_disk: bool = True,
                token: str | None = None, page_key: str | None = None) -> Front:
    """Listen; HTTP and the WebSocket handshake answer only Host names of this machine, the
    WebSocket only its pages' origins and the allowed ones (`access_for`: the page from disk
    with `page_key` where there is no `token`), and, with a `token`, only requests that carry
    it (but for the page's files)."""
    access = access_for(host, allow_origins, page_from_disk, token, page_key)
    return await Front(app.handle, app.route, app.clients, host=host, port=port, access=access)
