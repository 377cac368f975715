"""The WebSocket protocol's messages (docs/protocol.md), in one place: the requests a client
sends as typed records (`read_request` validates them), the replies the server sends as typed
dicts, the error codes, the protocol's limits, and strict JSON both ways.

A request is a JSON object read strictly (`decode_request`): NaN, Infinity, numbers out of
range and integers of more digits than Python reads are `bad_json` like any other text that is
not JSON. A reply is written strictly (`encode_reply`: no NaN or Infinity), which a browser's
JSON.parse reads. The server and the tests use these types and helpers; nothing else writes a
reply's fields.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NotRequired, TypedDict, cast

from server.images import BROWSER_FORMATS
from server.serve.explain import ExplanationFields
from server.serve.filters import ORDERS, Order, Within, within
from server.serve.gallery import Item
from server.serve.query import MAX_QUERY_CHARS, MAX_TERMS
from server.serve.thumbnails import thumbnail_url

log = logging.getLogger("wordpix.server")

MAX_TEXT_MESSAGE = 64 * 2**10  # bytes of UTF-8: a JSON request is small; larger ones get an error
MAX_UPLOAD = 10 * 2**20
MAX_UPLOADS = 16               # per connection; the oldest is forgotten first
MAX_RESULTS = 200
DEFAULT_RESULTS = 24
DUPLICATE_GROUPS = 12  # near-duplicate groups a page, by default
GROUP_SHOWN = 12  # photos of a group a reply carries (its count says how many there are)
MAP_THUMBS_UP_TO = 20_000  # a map of more images carries no thumbnails: the page draws dots
MAX_ID = 2**53                 # ids are integers a browser's JSON.parse reads exactly
DESCRIBE_WORDS = 8
MAX_DESCRIBE_WORDS = 50
MAX_IMAGE_ID = 10**9 - 1       # image ids have 1 to 9 digits, as in `[IMG_<id>]`

ErrorCode = Literal["bad_json", "too_large", "bad_type", "bad_request", "bad_query", "bad_upload",
                    "busy", "internal", "no_gallery"]
RequestId = str | int | None

INTERNAL_ERROR = "the server failed to answer this message (it is logged)"


class ProtocolLimits(TypedDict):
    query_chars: int
    terms: int
    results: int
    upload_bytes: int
    uploads: int
    message_bytes: int


LIMITS = ProtocolLimits(query_chars=MAX_QUERY_CHARS, terms=MAX_TERMS, results=MAX_RESULTS,
                upload_bytes=MAX_UPLOAD, uploads=MAX_UPLOADS, message_bytes=MAX_TEXT_MESSAGE)


class GalleryInfo(TypedDict):
    name: str
    title: str
    count: int
    fit: str
    taken: list[str | None]  # [first, last]: the days its photos were taken (the date filter's)
    duplicates: bool  # whether it can list near duplicates (its index has appearance vectors)
    folders: list[list]  # [path, photos in it and below]: its fullest folders (the folder filter's)


class Hello(TypedDict):
    type: Literal["hello"]
    gallery: GalleryInfo | None
    setup: NotRequired[str]  # without a gallery: how to build one
    examples: list[str]
    gallery_examples: list[str]
    limits: ProtocolLimits


class Result(TypedDict):
    id: int
    score: float | None  # None when browsing: no query to score against
    caption: str | None
    url: str  # the original file
    thumb: str | None  # its thumbnail (None: the index has none; the page shows `url`)
    preview: str  # what a preview shows: `url`, or `thumb` where browsers cannot show the file
    taken: str | None  # when: 'YYYY-MM-DDTHH:MM:SS' (EXIF, else the file's time)


# {"from": the word typed, "to": the word used}: "from" is a keyword, hence this form
Correction = TypedDict("Correction", {"from": str, "to": str})


class Suggestion(TypedDict):
    word: str
    alternatives: list[str]


class Results(TypedDict):
    type: Literal["results"]
    id: RequestId
    q: str
    query: str
    terms: list[dict]
    corrections: list[Correction]
    suggestions: list[Suggestion]
    results: list[Result] | ResultsJSON  # on the wire a list; the server writes it ahead
    nearest_words: list[tuple[str, float]]
    line: float | None  # the score where close matches end (None: not calibrated for it)
    relevant: int | None  # how many of `results` are close matches, scoring above `line`
    explain: NotRequired[ExplanationFields]  # asked for, with several terms: what each did
    ms: float


class GalleryPage(TypedDict):
    type: Literal["gallery"]
    id: RequestId
    after: int
    next: int | None
    total: int
    results: list[Result] | ResultsJSON  # as in Results
    ms: float


class Described(TypedDict):
    type: Literal["described"]
    id: RequestId
    image: int
    caption: str | None
    url: str
    thumb: str | None
    preview: str
    taken: str | None
    nearest_words: list[tuple[str, float]]
    picture_words: NotRequired[list[tuple[str, float]]]
    ms: float


class DuplicateGroup(TypedDict):
    count: int  # photos in the group
    results: list[Result]  # the first GROUP_SHOWN of them, in id order


class Duplicates(TypedDict):
    type: Literal["duplicates"]
    id: RequestId
    after: int  # groups skipped (the page's start)
    next: int | None  # `after` of the next page, None at the last
    total: int  # groups in the gallery
    photos: int  # photos in some group
    groups: list[DuplicateGroup]  # largest first
    threshold: float | None  # appearance cosine at or above which photos are grouped
    setup: NotRequired[str]  # where the index has no appearance vectors: how to make them
    ms: float


class MapRegion(TypedDict):
    level: int  # 0: the coarsest (8 regions), then 32, then 128
    x: float  # its members' median position, in [0, 1]
    y: float
    radius: float  # holds 80% of its members
    count: int
    label: str  # the word whose images lie most in it (gallery_map.label_by_relevance)
    also: list[str]  # further words its images stand out for (gallery_map.words_per_region)


class GalleryMap(TypedDict):
    type: Literal["map"]
    id: RequestId
    count: int
    ids: str  # base64 of little-endian int32 image ids
    xy: str  # base64 of little-endian uint16 (x, y) pairs, 0..65535 over [0, 1]
    thumbs: list[str | None] | None  # thumbnail URLs in the same order (small galleries only)
    regions: list[MapRegion]
    ms: float


class Uploaded(TypedDict):
    type: Literal["uploaded"]
    upload: int
    term: str
    ms: float


class Pong(TypedDict):
    type: Literal["pong"]
    id: RequestId


class Parsed(TypedDict):
    """How a query reads, without running it (the `parse` message: the page's terms)."""
    type: Literal["parsed"]
    id: RequestId
    q: str
    query: str | None       # the query as understood; None when it has an error
    terms: list[dict]       # each piece so far: sign, text, then weight, kind, words or ref
    error: str | None       # its first problem


class ErrorReply(TypedDict):
    type: Literal["error"]
    id: RequestId
    code: ErrorCode
    error: str
    retry_ms: NotRequired[int]            # busy: when the client may send again
    word: NotRequired[str]                # bad_query of an unknown word: the word
    suggestions: NotRequired[list[str]]   # ... and the words it may have meant


Reply = (Results | GalleryPage | Described | Duplicates | GalleryMap | Uploaded | Pong | Parsed
         | ErrorReply)


@dataclass(frozen=True)
class QueryMessage:
    """`{"type": "query", "q": "beach+sunrise", "k": 24}`: rank the gallery."""

    id: RequestId
    q: str
    k: int = DEFAULT_RESULTS
    exclude_query_images: bool = True  # leave out the gallery images the query names
    within: Within | None = None  # `"filter": {"from": ..., "to": ..., "folder": ...}`
    order: Order = "score"  # or "date"
    explain: bool = False  # say what each term contributed (a query of several terms)


@dataclass(frozen=True)
class BrowseMessage:
    """`{"type": "browse", "after": 0}`: a page of the gallery in id order, after an id."""

    id: RequestId
    after: int = 0
    k: int = DEFAULT_RESULTS


@dataclass(frozen=True)
class DescribeMessage:
    """`{"type": "describe", "image": 12}`: an image's caption and nearest words."""

    id: RequestId
    image: int
    k: int = DESCRIBE_WORDS


@dataclass(frozen=True)
class DuplicatesMessage:
    """`{"type": "duplicates", "after": 0}`: a page of the gallery's near-duplicate groups."""

    id: RequestId
    after: int = 0
    k: int = DUPLICATE_GROUPS


@dataclass(frozen=True)
class MapMessage:
    """`{"type": "map"}`: the gallery's map, every image's place and the labelled regions."""

    id: RequestId


@dataclass(frozen=True)
class PingMessage:
    id: RequestId


@dataclass(frozen=True)
class ParseMessage:
    """`{"type": "parse", "q": "..."}`: how a query reads, without running it."""

    id: RequestId
    q: str


Request = (QueryMessage | BrowseMessage | DescribeMessage | DuplicatesMessage | MapMessage
           | PingMessage | ParseMessage)


class ClientError(Exception):
    """A client's mistake: answered with an error reply, and nothing else changes."""

    def __init__(self, code: ErrorCode, message: str, retry: float = 0.0):
        super().__init__(message)
        self.code: ErrorCode = code
        self.retry = retry  # for `busy`: seconds until the client may send again


def error_reply(code: ErrorCode, message: str, request_id: RequestId = None) -> ErrorReply:
    return ErrorReply(type="error", id=request_id, code=code, error=message)


def image_url(image_id: int) -> str:
    return f"/images/{image_id}"


def result(item: Item, score: float | None, thumb_key: str | None) -> Result:
    """One image of a reply: the original's URL, its thumbnail's (`thumb_key`: None when the
    index has none), and what a preview shows (the original where browsers show its format)."""
    url = image_url(item.id)
    thumb = thumbnail_url(thumb_key) if thumb_key else None
    shown = url if thumb is None or \
        os.path.splitext(item.path)[1].lower() in BROWSER_FORMATS else thumb
    return Result(id=item.id, score=score, caption=item.caption, url=url, thumb=thumb,
                  preview=shown, taken=item.taken)


def results(items: Sequence[Item], scores: Sequence[float | None],
            thumb_keys: Sequence[str | None]) -> list[Result]:
    return [result(item, score, key) for item, score, key in
            zip(items, scores, thumb_keys, strict=True)]


class ResultsJSON(str):
    """A reply's `results` written already, as a JSON array (`ResultWriter`): `encode_reply`
    puts the text in as it is."""


class ResultWriter:
    """Replies' results as JSON text, each image's fixed fields written once.

    A query's reply carries 24 results; making their dicts and encoding them was the largest
    of the server's costs after the search (docs/server.md, Speed). An image's caption, URLs
    and date never change within a gallery generation, so their JSON is kept (at most `keep`
    images'), with the record it was written from, and a reply's results are joined around
    the scores.
    """

    def __init__(self, thumb_key: Callable[[Item], str | None], keep: int = 100_000):
        self._thumb_key, self._keep = thumb_key, keep
        # by image id: (the record, '"caption": ..., "taken": ...}', all after the score)
        self._fixed: dict[int, tuple[Item, str]] = {}

    def write(self, items: Sequence[Item], scores: Sequence[float | None]) -> ResultsJSON:
        """The same text as `json.dumps(results(...))` (tests/unit/test_protocol.py)."""
        written = [f'{{"id": {item.id}, "score": {score}, {self._fixed_fields(item)}'
                   for item, score in zip(items, _json_numbers(scores), strict=True)]
        return ResultsJSON("[" + ", ".join(written) + "]")

    def _fixed_fields(self, item: Item) -> str:
        kept = self._fixed.get(item.id)
        if kept is not None and (kept[0] is item or kept[0] == item):  # the same record
            return kept[1]
        if len(self._fixed) >= self._keep:
            self._fixed.clear()
        fields = {name: value for name, value in result(item, None, self._thumb_key(item))
                  .items() if name not in ("id", "score")}
        fixed = json.dumps(fields)[1:]
        self._fixed[item.id] = (item, fixed)
        return fixed


def _json_numbers(values: Sequence[float | None]) -> list[str]:
    """`values` as json.dumps writes them, refusing what strict JSON has no number for."""
    if None in values:
        return ["null" if value is None else _json_numbers([value])[0] for value in values]
    numbers = cast(Sequence[float], values)  # no None in them
    if not all(map(math.isfinite, numbers)):
        raise ValueError(f"a score is not finite: {values}")
    return list(map(float.__repr__, numbers))


def elapsed_ms(started: float, now: float) -> float:
    return round((now - started) * 1e3, 3)


def decode_request(message: str | bytes) -> dict:
    """A text message (or a binary one starting with `{`) as a JSON object, strictly."""
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


def read_request(request: dict, known_id: RequestId) -> Request:
    """A decoded request as its typed message, its fields checked (`bad_request`, `bad_type`);
    `known_id` is its `request_id`."""
    kind = request.get("type")
    if kind == "query":
        exclude = request.get("exclude_query_images", True)
        if not isinstance(exclude, bool):
            raise ClientError("bad_request", '"exclude_query_images" must be true or false')
        order = request.get("order", "score")
        if order not in ORDERS:
            raise ClientError("bad_request", f'"order" must be one of {", ".join(ORDERS)}')
        explain = request.get("explain", False)
        if not isinstance(explain, bool):
            raise ClientError("bad_request", '"explain" must be true or false')
        return QueryMessage(known_id, _text(request, "query"),
                            whole_number(request, "k", DEFAULT_RESULTS, 1, MAX_RESULTS), exclude,
                            _filter(request), order, explain)
    if kind == "browse":
        if "offset" in request:
            raise ClientError("bad_request", 'browse pages by key: send "after", the last id '
                                             'you have (0 for the first page), not "offset"')
        return BrowseMessage(known_id, whole_number(request, "after", 0, 0, MAX_ID),
                             whole_number(request, "k", DEFAULT_RESULTS, 1, MAX_RESULTS))
    if kind == "describe":
        return DescribeMessage(known_id, whole_number(request, "image", 0, 1, MAX_IMAGE_ID),
                               whole_number(request, "k", DESCRIBE_WORDS, 1,
                                            MAX_DESCRIBE_WORDS))
    if kind == "duplicates":
        return DuplicatesMessage(known_id, whole_number(request, "after", 0, 0, MAX_ID),
                                 whole_number(request, "k", DUPLICATE_GROUPS, 1, MAX_RESULTS))
    if kind == "map":
        return MapMessage(known_id)
    if kind == "ping":
        return PingMessage(known_id)
    if kind == "parse":
        return ParseMessage(known_id, _text(request, "parse"))
    raise ClientError("bad_type", f"unknown message type {show(kind)}: send "
                                  '{"type": "query", "q": "beach+sunrise"}')


def _filter(request: dict) -> Within | None:
    """A query's `filter`, checked; None for none (or one that keeps everything)."""
    given = request.get("filter")
    if given is None:
        return None
    if not isinstance(given, dict) or set(given) - {"from", "to", "folder"} or not all(
            isinstance(value, str | None) for value in given.values()):
        raise ClientError("bad_request", '"filter" must be an object of strings: "from" and '
                                         '"to" (days, YYYY-MM-DD), "folder"')
    try:
        kept = within(given.get("from"), given.get("to"), given.get("folder"))
    except ValueError as error:
        raise ClientError("bad_request", str(error)) from None
    return None if kept.everything else kept


def _text(request: dict, kind: str) -> str:
    text = request.get("q")
    if not isinstance(text, str):
        raise ClientError("bad_request", f'a {kind} message needs "q": the query text')
    return text


def is_upload(message: str | bytes) -> bool:
    """Whether a message is an image: binary, and not a JSON object sent as binary."""
    return isinstance(message, bytes) and message.lstrip()[:1] != b"{"


def encode_reply(reply: Reply | Hello) -> str:
    """A reply as strict JSON; one that cannot be (a bug) becomes an `internal` error."""
    try:
        written = reply.get("results")
        if isinstance(written, ResultsJSON):  # put in as it is, last
            rest = {key: value for key, value in reply.items() if key != "results"}
            return f'{json.dumps(rest, allow_nan=False)[:-1]}, "results": {written}}}'
        return json.dumps(reply, allow_nan=False)
    except (ValueError, TypeError):
        log.exception("a reply is not JSON")
        request_id = reply.get("id")
        return json.dumps(error_reply("internal", INTERNAL_ERROR,
                                      request_id if isinstance(request_id, str | int) else None))


def request_id(request: dict) -> RequestId:
    """The request's id, echoed in its reply: a string, a whole number a browser reads
    exactly (within +-2^53), or null."""
    value = request.get("id")
    if value is None or isinstance(value, str) or (
            isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_ID):
        return value
    raise ClientError("bad_request", '"id" must be a string, a whole number within +-2^53, '
                                     "or null")


def whole_number(request: dict, name: str, default: int, low: int, high: int) -> int:
    value = request.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ClientError("bad_request", f'"{name}" must be a whole number from {low} to {high}')
    return value


def show(value: object, limit: int = 60) -> str:
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
