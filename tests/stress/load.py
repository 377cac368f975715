"""Load from many clients: connections, one address flooding, upload storms, queued frames.

The attackers run in a process of their own (`_in_process`), so that what they cost this
process does not slow the client whose latency is measured here; every loop stops after its
`seconds`, and the attackers then drop their connections at once (as a killed browser would).
"""

from __future__ import annotations

import asyncio
import io
import json
import multiprocessing
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.stress.common import Target, address, open_client

VICTIM = address(1, 0)  # the client whose latency is measured
MiB = 2**20


def _in_process(job: Callable[..., Coroutine[Any, Any, dict]], *args: Any) -> dict:
    return asyncio.run(job(*args))


async def elsewhere(job: Callable[..., Coroutine[Any, Any, dict]], *args: Any,
                    timeout: float = 300) -> dict:
    """Run `job(*args)` in a fresh process while this event loop goes on."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        future = pool.submit(_in_process, job, *args)
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)


def _reply_kind(text: str | bytes) -> str:
    reply = json.loads(text)
    return reply.get("code", reply.get("type", "?"))


async def _all(kinds: Counter[str], *jobs: Coroutine[Any, Any, None]) -> None:
    """Run the jobs together; count how each that failed, failed."""
    for result in await asyncio.gather(*jobs, return_exceptions=True):
        if isinstance(result, BaseException):
            kinds[f"client {type(result).__name__}"] += 1


def _abort(connections: list[ClientConnection]) -> None:
    for connection in connections:
        connection.transport.abort()


# ---------------------------------------------------------------------- many connections


@dataclass
class ConnectionsReport:
    opened: int = 0
    answered: int = 0
    failed: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    rss: int = 0  # the server's, with all of them open


async def connections(target: Target, count: int, per_address: int = 32, group: int = 4,
                      seconds: float = 120) -> ConnectionsReport:
    """`count` clients at once, each sending a query; all stay open until all are answered."""
    report = ConnectionsReport()
    everyone = asyncio.Event()
    started = time.monotonic()
    finished = 0

    def done() -> None:
        nonlocal finished
        finished += 1
        if finished == count:
            report.rss, report.seconds = target.rss(), time.monotonic() - started
            everyone.set()

    async def client(number: int) -> None:
        try:
            connection = await open_client(target, address(group, number // per_address),
                                           timeout=seconds)
        except Exception as error:
            report.failed[type(error).__name__] += 1
            done()
            return
        report.opened += 1
        try:
            await connection.send(json.dumps({"type": "query", "q": "cat", "k": 5}))
            kind = _reply_kind(await asyncio.wait_for(connection.recv(), seconds))
            report.answered += kind == "results"
            report.failed[kind] += kind != "results"
        except (TimeoutError, ConnectionClosed) as error:
            report.failed[type(error).__name__] += 1
        done()
        try:
            await asyncio.wait_for(everyone.wait(), seconds)
        finally:
            connection.transport.abort()

    await asyncio.gather(*(client(n) for n in range(count)), return_exceptions=True)
    report.failed = +report.failed  # without the zero counts
    return report


@dataclass
class CapsReport:
    accepted: int = 0
    refused: int = 0  # closed with 1013 and a reason that names the cap
    other: Counter = field(default_factory=Counter)


async def caps(target: Target, tries: int, group: int = 7) -> CapsReport:
    """`tries` connections from one address, held open: past the cap, each is told why."""
    report = CapsReport()
    held = []
    for _ in range(tries):
        try:
            held.append(await open_client(target, address(group, 0)))
            report.accepted += 1
        except ConnectionClosed as closed:
            if closed.rcvd is not None and closed.rcvd.code == 1013 and \
                    "too many connections from" in closed.rcvd.reason:
                report.refused += 1
            else:
                report.other[str(closed)] += 1
    _abort(held)
    return report


# ---------------------------------------------------------------------- one address floods


def heavy_query(rng: random.Random, words: list[str]) -> str:
    """32 terms (8 misspelled, the most the server corrects) and the most results."""
    terms = rng.sample(words, 32)
    for position in rng.sample(range(32), 8):
        word = terms[position]
        cut = rng.randrange(len(word))
        terms[position] = word[:cut] + word[cut + 1 :] if len(word) > 3 else word + "e"
    return json.dumps({"type": "query", "q": "+".join(terms)[:500], "k": 200})


async def flood(port: int, source: str, count: int, seconds: float, seed: int) -> dict:
    """`count` connections from `source`, each sending heavy queries as fast as answered."""
    from server.artifacts import load_word_space  # in the attacking process only

    words = [w for w in load_word_space().words[:3000] if w.isalpha()]
    rng = random.Random(seed)
    kinds: Counter[str] = Counter()
    stop = time.monotonic() + seconds
    opened = [await open_client(Target(port, 0), source) for _ in range(count)]

    async def client(connection: ClientConnection) -> None:
        while time.monotonic() < stop:
            await connection.send(heavy_query(rng, words))
            kinds[_reply_kind(await asyncio.wait_for(connection.recv(), 60))] += 1

    await _all(kinds, *(client(c) for c in opened))
    _abort(opened)
    return dict(kinds)


# ---------------------------------------------------------------------- upload storms


def photo_like(width: int, height: int, format: str, seed: int = 0, noise: float = 6.0
               ) -> bytes:
    """A picture that compresses like a photo: smooth shapes plus sensor noise."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (height // 200 + 2, width // 200 + 2, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC),
                        np.float32)
    pixels = np.clip(smooth + rng.normal(0, noise, smooth.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format, **({"quality": 90} if format == "JPEG" else {}))
    return out.getvalue()


async def storm(port: int, group: int, uploaders: int, seconds: float, images: list[str]
                ) -> dict:
    """`uploaders` connections (over three addresses) upload the images in turn, one new
    connection every 0.2 s sends one and leaves at once; at the end each uploader sends three
    more without waiting, and all leave while those are still queued."""
    pictures = [Path(path).read_bytes() for path in images]
    kinds: Counter[str] = Counter()
    stop = time.monotonic() + seconds
    target = Target(port, 0)
    opened = [await open_client(target, address(group, n % 3)) for n in range(uploaders)]

    async def uploader(number: int, connection: ClientConnection) -> None:
        while time.monotonic() < stop:
            await connection.send(pictures[number % len(pictures)])
            kinds[_reply_kind(await asyncio.wait_for(connection.recv(), 120))] += 1
            number += 1
        for extra in range(3):
            await connection.send(pictures[(number + extra) % len(pictures)])
            kinds["left queued"] += 1

    async def leavers() -> None:
        number = 0
        while time.monotonic() < stop:
            connection = await open_client(target, address(group, 10 + number % 50))
            await connection.send(pictures[number % len(pictures)])
            connection.transport.abort()
            kinds["left at once"] += 1
            number += 1
            await asyncio.sleep(0.2)

    await _all(kinds, leavers(), *(uploader(n, c) for n, c in enumerate(opened)))
    await asyncio.sleep(1.0)  # the last uploads reach the server
    _abort(opened)
    return dict(kinds)


# ---------------------------------------------------------------------- queued frames


async def queue_frames(port: int, group: int, attackers: int, frames: int, frame: str,
                       hog: str, seconds: float) -> dict:
    """Keep the upload slots busy (two connections uploading `hog`), while `attackers`
    connections each send `frames` large uploads (`frame`) without reading a reply."""
    target = Target(port, 0)
    big, slow = Path(frame).read_bytes(), Path(hog).read_bytes()
    kinds: Counter[str] = Counter()
    stop = time.monotonic() + seconds
    hogs = [await open_client(target, address(group, 0)) for _ in range(2)]
    opened = [await open_client(target, address(group, 1 + n // 25)) for n in range(attackers)]

    async def hogger(connection: ClientConnection) -> None:
        while time.monotonic() < stop:
            await connection.send(slow)
            await asyncio.wait_for(connection.recv(), 120)

    async def attacker(connection: ClientConnection) -> None:
        try:
            for _ in range(frames):
                await asyncio.wait_for(connection.send(big), max(0.1, stop - time.monotonic()))
                kinds["sent"] += 1
        except TimeoutError:
            kinds["still sending at the end"] += 1
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else None
            kinds[f"closed {code}"] += 1
            return
        await asyncio.sleep(max(0.0, stop - time.monotonic()))

    await _all(kinds, *(hogger(h) for h in hogs), *(attacker(a) for a in opened))
    _abort(hogs + opened)
    return dict(kinds)
