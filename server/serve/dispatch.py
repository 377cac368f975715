"""What each message means: a query, a page of the gallery, an image described, a ping, an
upload; and, for a server with no index yet, the one answer it has.

Every message is admitted against its address's share of the server first (`busy` otherwise),
and its work is charged to that address after.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import cast

from server.serve.batcher import Batcher
from server.serve.duplicates import duplicate_groups
from server.serve.gallery import Item
from server.serve.gallery_map import pack_layout, update_gallery_map
from server.serve.limits import Clients
from server.serve.protocol import (
    GROUP_SHOWN,
    INTERNAL_ERROR,
    MAP_THUMBS_UP_TO,
    BrowseMessage,
    ClientError,
    Correction,
    Described,
    DescribeMessage,
    DuplicateGroup,
    Duplicates,
    DuplicatesMessage,
    ErrorReply,
    GalleryMap,
    GalleryPage,
    MapMessage,
    MapRegion,
    Parsed,
    ParseMessage,
    Pong,
    QueryMessage,
    Reply,
    RequestId,
    Result,
    Results,
    ResultWriter,
    Suggestion,
    decode_request,
    elapsed_ms,
    error_reply,
    is_upload,
    read_request,
    request_id,
    result,
    results,
)
from server.serve.query import QueryError, read, reading_fields
from server.serve.retrieval import Answer, QueryRequest, Retriever
from server.serve.sessions import Gone, Session
from server.serve.uploads import Uploads

log = logging.getLogger("wordpix.server")
MESSAGE_COST = 2e-4  # seconds charged for any message (JSON, transport) on top of work


class Dispatcher:
    """The replies of a server of a gallery."""

    def __init__(self, retriever: Retriever, clients: Clients, uploads: Uploads):
        self.retriever, self.clients, self.uploads = retriever, clients, uploads
        self.gallery = retriever.gallery
        self.batcher = Batcher(retriever, clients)
        self.writer = ResultWriter(self.gallery.thumbnail_key)
        self._groups: list[list[int]] | None = None  # near duplicates, found once when asked
        self._finding = asyncio.Lock()
        # the map's reply, made once, when a page first asks: not at start, whose second of
        # scipy and scikit-learn imports most sessions never need (tests/e2e/test_no_torch.py)
        self._map: Future[GalleryMap] | None = None
        self._mapping = asyncio.Lock()
        self._background = ThreadPoolExecutor(1, thread_name_prefix="map")

    async def reply(self, message: str | bytes, session: Session) -> Reply:
        """The answer to one message, or the error it gets; charges its work to its address."""
        started = time.perf_counter()
        session.cost = MESSAGE_COST
        known_id: RequestId = None  # until the request's own is known to be valid
        try:
            if is_upload(message):
                assert isinstance(message, bytes)
                self._admit(session)
                return await self.uploads.receive(message, session, started)
            try:
                request = decode_request(message)
                known_id = request_id(request)
            finally:  # a flood of garbage is refused like anything else: `busy` wins
                self._admit(session)
            return await self._dispatch(request, known_id, session, started)
        except (ClientError, QueryError) as error:
            return _client_error(error, known_id, session)
        except Gone:
            raise
        except Exception:
            log.exception("failed to answer a message")
            return error_reply("internal", INTERNAL_ERROR, known_id)
        finally:
            self.clients.charge(session.ticket, session.cost)

    async def _dispatch(self, request: dict, known_id: RequestId, session: Session,
                        started: float) -> Reply:
        message = read_request(request, known_id)
        if isinstance(message, QueryMessage):
            return await self.query(message, session, started)
        if isinstance(message, BrowseMessage):
            return self.browse(message, session, started)
        if isinstance(message, DescribeMessage):
            return self.describe(message, started)
        if isinstance(message, DuplicatesMessage):
            return await self.duplicates(message, session, started)
        if isinstance(message, MapMessage):
            return await self.map(message, session, started)
        if isinstance(message, ParseMessage):
            return parsed(message)
        return Pong(type="pong", id=message.id)

    def _admit(self, session: Session) -> None:
        """Refuse the message if its client address has used up its share of the server."""
        wait = self.clients.wait(session.ticket)
        if wait > 0:
            raise ClientError("busy", f"too much work from {session.ticket.address}: retry in "
                                      f"{math.ceil(wait * 1e3)} ms", retry=wait)

    async def query(self, message: QueryMessage, session: Session, started: float) -> Results:
        request = QueryRequest(message.q, dict(session.uploads), message.k,
                               exclude_query_images=message.exclude_query_images,
                               within=message.within, order=message.order)
        answer, work = await self.batcher.answer(request, session.ticket)
        session.cost += work
        reply = self._results_reply(message, answer, started)
        if message.explain and len(answer.terms) > 1:
            explaining = time.perf_counter()
            reply["explain"] = self.retriever.explain(answer, request.uploads).as_json()
            session.cost += time.perf_counter() - explaining
            reply["ms"] = elapsed_ms(started, time.perf_counter())
        return reply

    def _results_reply(self, message: QueryMessage, answer: Answer, started: float) -> Results:
        return Results(
            type="results", id=message.id, q=message.q, query=answer.query, terms=answer.terms,
            corrections=[Correction({"from": typed, "to": used})
                         for typed, used in answer.corrections],
            suggestions=[Suggestion(word=word, alternatives=others)
                         for word, others in answer.suggestions],
            results=self.writer.write(answer.matches, answer.scores),
            nearest_words=answer.nearest_words, line=answer.line, relevant=answer.relevant,
            ms=elapsed_ms(started, time.perf_counter()))

    def browse(self, message: BrowseMessage, session: Session, started: float) -> GalleryPage:
        """A page of the gallery in id order, for the grid before any query: the images after
        the id `after` (a key, so any page costs the same)."""
        k = message.k
        items = self.gallery.page(message.after, k + 1)  # one more: is there a next page?
        session.cost += time.perf_counter() - started
        return GalleryPage(type="gallery", id=message.id, after=message.after,
                           next=items[k - 1].id if len(items) > k else None,
                           total=len(self.gallery),
                           results=self.writer.write(items[:k], [None] * len(items[:k])),
                           ms=elapsed_ms(started, time.perf_counter()))

    def describe(self, message: DescribeMessage, started: float) -> Described:
        """A gallery image's caption and nearest words, for the page's preview."""
        item, nearest, picture = self.retriever.describe(message.image, message.k)
        shown = result(item, None, self.gallery.thumbnail_key(item))
        reply = Described(type="described", id=message.id, image=item.id, caption=item.caption,
                          url=shown["url"], thumb=shown["thumb"], preview=shown["preview"],
                          taken=item.taken, nearest_words=nearest,
                          ms=elapsed_ms(started, time.perf_counter()))
        if picture != nearest:  # the caption moves it: say what the picture alone is near
            reply["picture_words"] = picture
        return reply


    async def duplicates(self, message: DuplicatesMessage, session: Session, started: float
                         ) -> Duplicates:
        """A page of the gallery's near-duplicate groups, largest first. They are found the
        first time they are asked for (a neighbour search over the appearance vectors, in a
        thread: the server goes on answering), then kept: a generation never changes."""
        settings = self.gallery.appearance
        reply = Duplicates(type="duplicates", id=message.id, after=message.after, next=None,
                           total=0, photos=0, groups=[],
                           threshold=settings["threshold"] if settings else None, ms=0.0)
        shared = 0.0  # the search is made once for every client: charged to none of them
        if settings is None:
            reply["setup"] = (f"this index was made without appearance vectors: update it with "
                              f"`python -m scripts.index {self.gallery.root} --index "
                              f"{self.gallery.directory}` (ids are kept)")
        else:
            searching = time.perf_counter()
            found = await self._duplicate_groups(settings["threshold"])
            shared = time.perf_counter() - searching
            page = found[message.after : message.after + message.k]
            end = message.after + len(page)
            reply["total"], reply["photos"] = len(found), sum(len(group) for group in found)
            reply["next"] = end if end < len(found) else None
            reply["groups"] = [self._group(group) for group in page]
        session.cost += time.perf_counter() - started - shared
        reply["ms"] = elapsed_ms(started, time.perf_counter())
        return reply

    async def _duplicate_groups(self, threshold: float) -> list[list[int]]:
        async with self._finding:  # one search, however many ask at once
            if self._groups is None:
                vectors = self.gallery.appearance_vectors()
                assert vectors is not None
                self._groups = await asyncio.to_thread(duplicate_groups, vectors, threshold)
                log.info("found %d groups of near duplicates", len(self._groups))
        return self._groups

    async def map(self, message: MapMessage, session: Session, started: float) -> GalleryMap:
        """The gallery's map: made once per server (a generation never changes), in a thread.
        The indexer keeps `map.npz` up to date; an index made before it gets one here."""
        made, building = await self._gallery_map()
        reply = GalleryMap(**made)  # a copy: the layout's strings are shared
        # the map is made once for every client: its making is charged to none of them
        session.cost += time.perf_counter() - started - building
        reply["id"], reply["ms"] = message.id, elapsed_ms(started, time.perf_counter())
        return reply

    async def _gallery_map(self) -> tuple[GalleryMap, float]:
        """The map's reply, and how long this call waited for it to be made."""
        waited = time.perf_counter()
        async with self._mapping:  # made once, however many ask at once
            if self._map is None or (self._map.done() and self._map.exception()):
                self._map = self._background.submit(self._make_map)  # again, after a failure
            made = await asyncio.wrap_future(self._map)
        return made, time.perf_counter() - waited

    def _make_map(self) -> GalleryMap:
        words = self.retriever.word_space
        made = update_gallery_map(self.gallery, log.info, words)
        packed = pack_layout(made.ids, made.xy)
        thumbs = None
        if len(made.ids) <= MAP_THUMBS_UP_TO:
            thumbs = [result["thumb"] for result in
                      self._results(self.gallery.all_items(), [None] * len(made.ids))]
        return GalleryMap(type="map", id=None, count=len(made.ids), ids=str(packed["ids"]),
                          xy=str(packed["xy"]), thumbs=thumbs,
                          regions=cast(list[MapRegion], made.regions), ms=0.0)

    def _group(self, rows: list[int]) -> DuplicateGroup:
        items = sorted(self.gallery.items(rows), key=lambda item: item.id)
        return DuplicateGroup(count=len(items),
                              results=self._results(items[:GROUP_SHOWN],
                                                    [None] * len(items[:GROUP_SHOWN])))

    def _results(self, items: list[Item], scores: list[float] | list[None]) -> list[Result]:
        return results(items, scores, [self.gallery.thumbnail_key(item) for item in items])


class NoGallery:
    """The replies of a server with no index yet: every message gets how to build one."""

    def __init__(self, setup: str):
        self.setup = setup

    async def reply(self, message: str | bytes, session: Session) -> Reply:
        known_id: RequestId = None
        try:
            if not is_upload(message):
                known_id = request_id(decode_request(message))
        except ClientError:
            pass  # not JSON: the answer is the same
        return error_reply("no_gallery", self.setup, known_id)


def _client_error(error: ClientError | QueryError, known_id: RequestId,
                  session: Session) -> ErrorReply:
    code = error.code if isinstance(error, ClientError) else "bad_query"
    log.debug("client error %s: %s", code, error)
    reply = error_reply(code, str(error), known_id)
    if isinstance(error, QueryError) and error.word:
        # an unknown word: the word and the suggestions, for a page to offer as links
        reply["word"], reply["suggestions"] = error.word, error.suggestions
    if isinstance(error, ClientError) and code == "busy":
        reply["retry_ms"] = math.ceil(error.retry * 1e3)
        # not charged, or retry_ms would be too soon; the connection is not read for that long
        # instead (sessions.converse), which bounds what busy replies cost
        session.cost = 0.0
    return reply


def parsed(message: ParseMessage) -> Parsed:
    """A `parse` request's reply: how the query reads, without running it (the page's terms)."""
    return cast(Parsed, {"type": "parsed", "id": message.id, "q": message.q}
                | reading_fields(read(message.q)))
