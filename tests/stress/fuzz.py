"""Fuzzing: malformed, odd and hostile messages, and a check of every reply.

A reply must come (within 30 s), be strict JSON (what a browser's JSON.parse reads: no NaN, no
Infinity), be an object of a known type, carry a known error code, never `internal`, and echo
the request's id when the request had a valid one. The connection must stay open.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import random
import string
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import get_args, get_type_hints

from PIL import Image
from websockets.exceptions import ConnectionClosed

from server.serve.protocol import MAX_TEXT_MESSAGE, ErrorCode, Reply
from tests.stress.common import Target, address, open_client

# what protocol.py declares (a server with a gallery never says no_gallery)
REPLY_TYPES = {get_args(get_type_hints(reply)["type"])[0] for reply in get_args(Reply)}
ERROR_CODES = set(get_args(ErrorCode)) - {"no_gallery"}
# Every field of every message type (docs/protocol.md), and one no type has
FIELDS = {"query": ("q", "k", "id", "exclude_query_images"), "browse": ("k", "after", "id"),
          "describe": ("image", "k", "id"), "ping": ("id",)}
ODD_FIELDS = ("offset", "extra", "")
# Letters of scripts beyond ASCII, and characters that are letters to no one
LETTERS = ["é", "ß", "中", "ж", "ا", "한", "ñ", "ø", "\u0301", "😀", "\u200b", "٣"]
NO_ID = object()  # the reply's id cannot be predicted (the request is not valid JSON)
WORDS = ["cat", "grass", "coffee", "moon", "camera", "rocket", "wall", "flag", "beach",
         "coffe", "rockett", "the", "a", "t-shirt", "red car", "qzxv"]
ODD_TEXT = ["", " ", "\x00", "\u00e9", "\u00df", "\u4e2d\u6587", "\U0001f600", "\u202e",
            "\u0301", "\u0663", "\u200b", "\ufeff", "\\", '"', "\n", "\t", "\ud7ff", "\uffff"]
ODD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e309", "-1e309", "1e-400", "-0", "0.0",
               "9" * 4301, "-" + "9" * 5000, "1" * 300, "2e308", "123456789012345678901234567890",
               "9007199254740993", "-9007199254740993", "1.7976931348623157e308"]

ODD_LITERALS = ['"\\ud800"', '"\\udfff\\ud800"', "[]", "{}", "true", "null",
                '"' + "\\u0000" * 10 + '"']


@dataclass
class FuzzReport:
    sent: int = 0
    codes: Counter = field(default_factory=Counter)  # reply types and error codes
    not_json: list[str] = field(default_factory=list)  # the first few offending replies
    wrong_id: int = 0
    unanswered: int = 0
    dropped: int = 0  # connections the server closed
    seconds: float = 0.0

    @property
    def internal(self) -> int:
        return self.codes["internal"]

    @property
    def bad_replies(self) -> int:
        return len(self.not_json) + self.wrong_id


class Fuzzer:
    """Random messages, each with the id its reply must carry (or NO_ID)."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.images = _image_samples()

    def message(self) -> tuple[str | bytes, object]:
        roll = self.rng.random()
        if roll < 0.35:
            return self._request()
        if roll < 0.55:
            return self._mutated()
        if roll < 0.65:
            return json.dumps(self._value(3)), None
        if roll < 0.88:
            return self._hostile_text(), NO_ID
        if roll < 0.99:
            return self._binary(), None
        return json.dumps({"type": "query", "q": "x" * self.rng.randrange(65_000, 200_000)}), None

    def _request(self) -> tuple[str, object]:
        kind = self.rng.choice(["query", "query", "query", "browse", "describe", "ping",
                                "upload", None])
        request: dict = {} if kind is None else {"type": kind}
        if self.rng.random() < 0.9:
            request["q"] = self._query_text()
        for name in (*FIELDS.get(kind or "", ()), *self.rng.sample(list(FIELDS["query"]), 2),
                     *ODD_FIELDS):
            roll = self.rng.random()
            if roll < 0.3:
                request[name] = self._value(2)
            elif roll < 0.4:
                request[name] = self._extreme_text()
        if self.rng.random() < 0.5:
            request["id"] = self.rng.choice([self.rng.randrange(-(2**53), 2**53),
                                             self._word(), None])
        valid_id = request.get("id")
        expected = valid_id if _valid_id(valid_id) else None
        text = json.dumps(request, ensure_ascii=self.rng.random() < 0.5)
        if len(text.encode()) > MAX_TEXT_MESSAGE:  # refused unread: its id is not known
            expected = None
        return text, expected

    def _mutated(self) -> tuple[str, object]:
        """A valid request with one field given an odd literal the encoder would not write."""
        name = self.rng.choice(["id", "k", "q", "after", "type", "exclude_query_images"])
        literal = self.rng.choice([*ODD_NUMBERS, *ODD_LITERALS])
        text = f'{{"type": "query", "q": "cat", "{name}": {literal}}}'
        return text, NO_ID

    def _hostile_text(self) -> str:
        depth = self.rng.choice([10, 1000, 30_000])
        choices = [
            "[" * depth + "]" * depth,
            '{"a":' * depth + "1" + "}" * depth,
            '{"type": "query", "q": "cat"',
            '{"type": "query", "q": "cat"}}',
            "".join(self.rng.choice(string.printable) for _ in range(self.rng.randrange(200))),
            '{"type": "query", "q": "cat", "q": ["dup"]}',
            '{"type": "ping", "id": ' + self.rng.choice(ODD_NUMBERS) + "}",
            "\ufeff{}",
            '{"type": "\\u0000query"}',
            "null", "[]", '"text"', "12", "{}",
        ]
        return self.rng.choice(choices)

    def _binary(self) -> bytes:
        image = self.rng.choice(self.images)
        roll = self.rng.random()
        if roll < 0.05:  # a good image: decoded and embedded, which takes tens of ms
            return image
        if roll < 0.5:
            return image[: self.rng.randrange(1, len(image))]
        if roll < 0.7:
            corrupt = bytearray(image)
            for _ in range(self.rng.randrange(1, 20)):
                corrupt[self.rng.randrange(len(corrupt))] = self.rng.randrange(256)
            return bytes(corrupt)
        if roll < 0.8:
            return b"{" + bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(50)))
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 3000)))

    def _extreme_text(self) -> str:
        """Strings at and past every length the server reads: one long word of ASCII or of
        other scripts' letters, a word repeated, many terms, a whole message's worth."""
        length = self.rng.choice([127, 128, 129, 255, 256, 300, 499, 500, 501, 5000, 60_000])
        roll = self.rng.random()
        if roll < 0.3:
            return self.rng.choice(string.ascii_letters) * length
        if roll < 0.5:
            return "".join(self.rng.choice(LETTERS) for _ in range(length))
        if roll < 0.6:
            return self.rng.choice(LETTERS) * length
        if roll < 0.8:
            word = self.rng.choice([*WORDS, self._word(), "x" * self.rng.randrange(1, 200)])
            joiner = self.rng.choice(["+", " ", "-", "+2*", ""])
            return joiner.join([word] * max(1, length // (len(word) + len(joiner))))[:length]
        return "".join(self.rng.choice(string.printable) for _ in range(length))

    def _query_text(self) -> str:
        if self.rng.random() < 0.2:
            return self._extreme_text()
        pieces = []
        for _ in range(self.rng.randrange(1, 40)):
            roll = self.rng.random()
            if roll < 0.4:
                pieces.append(self.rng.choice(WORDS))
            elif roll < 0.6:
                pieces.append(self.rng.choice(["+", "-", "*", " ", "2*", "0.5*", "100.1*",
                                               "1e3*", ".*", "[", "]", "_"]))
            elif roll < 0.75:
                pieces.append(f"[{self.rng.choice(['IMG', 'img', 'UPLOAD', 'Img'])}_"
                              f"{self.rng.choice(['1', '3', '0', '999999999', '1234567890'])}]")
            elif roll < 0.85:
                pieces.append(self.rng.choice(ODD_TEXT))
            elif roll < 0.9:  # a long word, of any script
                pieces.append(self.rng.choice([*LETTERS, "x", "q"]) * self.rng.randrange(
                    20, 600))
            else:
                pieces.append(self._word())
        return "".join(pieces)[: self.rng.choice([100, 500, 501, 2000])]

    def _word(self) -> str:
        return "".join(self.rng.choice(string.ascii_letters + string.digits + "é中😀")
                       for _ in range(self.rng.randrange(1, 30)))

    def _value(self, depth: int) -> object:
        roll = self.rng.random()
        if depth <= 0 or roll < 0.6:
            return self.rng.choice([
                None, True, False, 0, 1, -1, 2, 3, 24, 50, 51, 200, 201, 10**6, 10**9 - 1,
                10**9, 2**53, 2**53 + 1, -(2**63), 2**64, 1.5, -0.0, 1e308, 5e-324, "", "cat",
                "5", self._word(), self._query_text()])
        if roll < 0.8:
            return [self._value(depth - 1) for _ in range(self.rng.randrange(5))]
        return {self._word(): self._value(depth - 1) for _ in range(self.rng.randrange(5))}


def _valid_id(value: object) -> bool:
    return value is None or isinstance(value, str) or (
        isinstance(value, int) and not isinstance(value, bool) and abs(value) <= 2**53)


@functools.cache
def _image_samples() -> list[bytes]:
    """Small real images of every accepted format, and a decompression bomb."""
    picture = Image.radial_gradient("L").convert("RGB").resize((64, 48))
    samples = []
    for format, mode in (("JPEG", "RGB"), ("PNG", "RGBA"), ("GIF", "P"), ("WEBP", "RGB"),
                         ("BMP", "RGB"), ("PNG", "I;16"), ("PNG", "1")):
        out = io.BytesIO()
        picture.convert(mode).save(out, format)
        samples.append(out.getvalue())
    bomb = io.BytesIO()
    Image.new("1", (10000, 10000)).save(bomb, "PNG")
    return [*samples, bomb.getvalue()]


def strict_json(text: str | bytes) -> object:
    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def check_reply(text: str | bytes, expected_id: object, report: FuzzReport) -> None:
    try:
        reply = strict_json(text)
    except ValueError:
        reply = None
    if not isinstance(reply, dict) or reply.get("type") not in REPLY_TYPES or (
            reply["type"] == "error" and reply.get("code") not in ERROR_CODES):
        if len(report.not_json) < 5:
            report.not_json.append(str(text)[:200])
        else:
            report.not_json.append("...")
        return
    report.codes[reply["type"] if reply["type"] != "error" else reply["code"]] += 1
    if expected_id is not NO_ID and reply.get("id", None) != expected_id and \
            reply["type"] not in ("uploaded",) and reply.get("code") != "bad_upload":
        report.wrong_id += 1


async def fuzz(target: Target, messages: int, clients: int = 8, seed: int = 0,
               seconds: float = 600.0, group: int = 3) -> FuzzReport:
    """Send `messages` fuzzed messages over `clients` connections (each from its own address),
    one at a time each; stops after `seconds` in any case."""
    report = FuzzReport()
    started = time.monotonic()
    deadline = started + seconds

    async def client(number: int) -> None:
        fuzzer = Fuzzer(seed * 1000 + number)
        connection = await open_client(target, address(group, number))
        try:
            while report.sent < messages and time.monotonic() < deadline:
                message, expected = fuzzer.message()
                report.sent += 1
                try:
                    await connection.send(message)
                    text = await asyncio.wait_for(connection.recv(), 30)
                except TimeoutError:
                    report.unanswered += 1
                    continue
                except ConnectionClosed:
                    report.dropped += 1
                    connection = await open_client(target, address(group, number))
                    continue
                check_reply(text, expected, report)
        finally:
            await connection.close()

    await asyncio.gather(*(client(number) for number in range(clients)))
    report.seconds = time.monotonic() - started
    return report
