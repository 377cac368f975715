"""The query language: words, phrases and images added and subtracted, with weights.

    beach+sunrise        car-yellow          [IMG_1]+park+park+park
    3*park + [IMG_12]    red car - night     [UPLOAD_1] - 0.5*dog

A query is terms joined by `+` or `-` (a leading sign is allowed). A term is a phrase of one or
more words, a gallery image `[IMG_<id>]`, or an image uploaded on this connection
`[UPLOAD_<n>]`, optionally preceded by a weight `<number>*`. Repeating a term adds its weight.
Spaces are free. `parse` turns text into `Term`s and raises only `QueryError`, whose message is
meant for the user; `format_terms` prints them back in canonical form.

`read` is the lenient form: what a half-typed query's pieces are and why it cannot run yet,
for the page's terms strip (the `parse` message of docs/protocol.md: the page has no parser of
its own). tests/query_cases.json holds the language's cases.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from server.text import tokenize

MAX_QUERY_CHARS = 500
MAX_TERMS = 32
MAX_WEIGHT = 100.0

# [0-9], not \d: Python's \d takes any script's digits (`٣*park`), JavaScript's (the page)
# only ASCII ones
_IMAGE = re.compile(r"\[\s*(IMG|UPLOAD)_([0-9]{1,9})\s*\]", re.IGNORECASE)
_WEIGHT = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*\*")
_WORD_CHARS = re.compile(r"[^\W_]", re.UNICODE)


Sign = Literal[1, -1]
Kind = Literal["words", "image", "upload"]


class QueryError(ValueError):
    """A query that cannot be run; the message says why, in words for the user.

    For a word nobody knows, `word` is that word and `suggestions` the words it may stand for
    (the page offers them as links).
    """

    def __init__(self, message: str, word: str | None = None,
                 suggestions: Sequence[str] = ()):
        super().__init__(message)
        self.word, self.suggestions = word, list(suggestions)


@dataclass(frozen=True)
class Term:
    sign: Sign
    weight: float
    kind: Kind
    text: str                      # the term as typed, without sign and weight
    words: tuple[str, ...] = ()    # for kind "words": its tokens (stop words dropped)
    ref: int = 0                   # for "image": the gallery id; for "upload": its number


@dataclass(frozen=True)
class Unread:
    """A piece of text between signs that is no term, kept as typed with why not: a page shows
    a half-typed query's pieces and prints them back unchanged."""
    sign: Sign
    text: str
    error: str


@dataclass(frozen=True)
class Reading:
    """What a query's text reads as, even when it cannot run (the `parse` message): its pieces
    in the order typed, and `error`, the first reason it cannot run (None: it can)."""
    terms: list[Term | Unread]
    error: str | None


def parse(query: object) -> list[Term]:
    """The terms of a query, in the order typed (a repeated term stays two terms: they add)."""
    if not isinstance(query, str):
        raise QueryError("the query must be a string")
    reading = read(query)
    if reading.error is not None:
        raise QueryError(reading.error)
    return [term for term in reading.terms if isinstance(term, Term)]


def read(query: str) -> Reading:
    """The query's pieces and its first problem, checked in this order: length, emptiness, a
    missing term, the number of terms, each term, something to add."""
    if len(query) > MAX_QUERY_CHARS:
        return Reading([], f"the query is too long ({len(query)} characters, at most "
                           f"{MAX_QUERY_CHARS})")
    if not query.strip():
        return Reading([], "the query is empty: type words like beach+sunrise")
    pieces, missing = _split_signs(query)
    terms = [_term_or_unread(sign, text) for sign, text in pieces if text.strip()]
    return Reading(terms, missing or _terms_error(pieces, terms))


def _terms_error(pieces: list[tuple[Sign, str]], terms: list[Term | Unread]) -> str | None:
    if len(pieces) > MAX_TERMS:
        return f"too many terms ({len(pieces)}, at most {MAX_TERMS})"
    unread = next((term for term in terms if isinstance(term, Unread)), None)
    if unread is not None:
        return unread.error
    if not any(term.sign > 0 for term in terms):
        return "the query needs at least one term to add, not only ones to subtract"
    return None


def _split_signs(query: str) -> tuple[list[tuple[Sign, str]], str | None]:
    """[(sign, text)] for each piece (a + or - inside [...] does not split), and where the
    first missing term is, if one is."""
    pieces: list[tuple[Sign, str]] = []
    missing: str | None = None
    sign: Sign = 1
    start, depth = 0, 0
    text = query.strip()
    if text[0] in "+-":
        sign, start = (1 if text[0] == "+" else -1), 1
    for position in range(start, len(text) + 1):
        char = text[position] if position < len(text) else None
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(0, depth - 1)
        elif char is None or (char in "+-" and depth == 0):
            piece = text[start:position]
            if not piece.strip() and missing is None:
                where = "at the end" if char is None else f"before the {char!r} at {position + 1}"
                missing = f"a term is missing {where}"
            pieces.append((sign, piece))
            if char is not None:
                sign, start = (1 if char == "+" else -1), position + 1
    return pieces, missing


def _term_or_unread(sign: Sign, text: str) -> Term | Unread:
    try:
        return _term(sign, text)
    except QueryError as error:
        return Unread(sign, text.strip(), str(error))


def _term(sign: Sign, text: str) -> Term:
    weight = 1.0
    match = _WEIGHT.match(text)
    if match:
        weight = float(match.group(1))
        if not 0 < weight <= MAX_WEIGHT:
            raise QueryError(f"the weight {match.group(1)} must be above 0 and at most "
                             f"{MAX_WEIGHT:g}")
        text = text[match.end():]
    text = text.strip()
    if not text:
        raise QueryError(f"the weight {weight:g}* has no term after it")
    image = _IMAGE.fullmatch(text)
    if image:
        kind: Kind = "image" if image.group(1).upper() == "IMG" else "upload"
        return Term(sign, weight, kind, text, ref=int(image.group(2)))
    if "[" in text or "]" in text:
        raise QueryError(f"{text!r} is not an image reference: write [IMG_<id>] or "
                         "[UPLOAD_<n>]")
    if "*" in text:
        raise QueryError(f"{text!r}: a weight goes before its term, as in 3*park")
    words = tuple(tokenize(text))
    if not words:
        if _WORD_CHARS.search(text):
            raise QueryError(f"{text!r} has only common words (like 'the' or 'a') that carry "
                             "no meaning here")
        raise QueryError(f"{text!r} has no words in it")
    return Term(sign, weight, "words", text, words)


def format_terms(terms: list[Term]) -> str:
    """The query as understood, in canonical form: `3*park-[IMG_2]+red car`.

    No spaces around signs, a term's cleaned words (as `tokenize` left them), `[IMG_<id>]` and
    `[UPLOAD_<n>]` in capitals without leading zeros, weight 1 left out. The page's formatQuery
    prints terms the same way (it builds query text from the terms the server read).
    """
    parts = []
    for index, term in enumerate(terms):
        sign = "-" if term.sign < 0 else ("+" if index else "")
        weight = "" if term.weight == 1 else f"{_format_weight(term.weight)}*"
        if term.kind == "words":
            body = " ".join(term.words)
        else:
            body = f"[{'IMG' if term.kind == 'image' else 'UPLOAD'}_{term.ref}]"
        parts.append(f"{sign}{weight}{body}")
    return "".join(parts)


def _format_weight(weight: float) -> str:
    """The shortest decimal that reads back as this weight, never in exponent form: `1e-07*dog`
    would not parse. JavaScript's String(number) picks the same digits."""
    return format(Decimal(repr(weight)).normalize(), "f")


def reading_fields(reading: Reading) -> dict[str, object]:
    """A reading as the `parsed` reply carries it (docs/protocol.md, Parse)."""
    valid = [term for term in reading.terms if isinstance(term, Term)]
    return {"query": format_terms(valid) if reading.error is None else None,
            "terms": [_term_fields(term) for term in reading.terms], "error": reading.error}


def _term_fields(term: Term | Unread) -> dict[str, object]:
    said: dict[str, object] = {"sign": "+" if term.sign > 0 else "-", "text": term.text}
    if isinstance(term, Unread):
        return said | {"error": term.error}
    said |= {"weight": term.weight, "kind": term.kind}
    return said | ({"words": list(term.words)} if term.kind == "words" else {"ref": term.ref})
