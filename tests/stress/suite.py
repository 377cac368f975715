"""The stress suite: every part against a fresh `python -m server` on loopback, one table.

`python -m scripts.stress` runs it with the full sizes (`Sizes()`), the tests in
tests/e2e/test_stress.py with small ones. Everything is bounded in count and time and stops by
itself; the work folder holds the photos, the index, the images sent and the servers' logs.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.stress import decode, killing, load, web
from tests.stress.common import (
    Row,
    ServerProcess,
    Target,
    latencies,
    mb,
    ms,
    percentile,
    time_to_idle,
)
from tests.stress.fuzz import fuzz

PARTS = ("fuzz", "http", "connections", "flood", "uploads", "queued", "kill", "decode")
GB = 1e9


@dataclass(frozen=True)
class Sizes:
    """How big each part is: the defaults are the full run of docs/reliability.md."""

    messages: int = 100_000
    fuzz_clients: int = 16
    connections: int = 1000
    flood_connections: int = 20
    idle_seconds: float = 5.0
    seconds: float = 15.0  # each attack
    uploaders: int = 6
    attackers: int = 100
    frames: int = 5  # large uploads each attacker sends without reading
    frame_mib: float = 9.5
    photos: int = 300
    kill_rounds: int = 10
    download_mib: int = 400
    downloads: int = 4
    steady_seconds: float = 15.0
    upload_megapixels: float = 24.0


QUICK = Sizes(messages=2000, fuzz_clients=4, connections=100, idle_seconds=1.0, seconds=3.0,
              uploaders=2, attackers=8, frames=2, photos=40, kill_rounds=2, download_mib=16,
              steady_seconds=1.0, upload_megapixels=4.0)


@dataclass
class Workspace:
    """What the parts share: a folder of photos, its index, the images uploads send."""

    folder: Path
    sizes: Sizes
    seed: int = 0
    gallery: Path | None = None  # an index to serve instead of one of photos made here

    @property
    def photos(self) -> Path:
        return self.folder / "photos"

    @property
    def index(self) -> Path:
        return self.gallery or self.folder / "index"

    def prepare(self) -> None:
        if not self.index.exists():
            killing.make_photos(self.photos, self.sizes.photos, self.seed)
            killing.build(self.photos, self.index)

    def image(self, name: str, width: int, height: int, format: str, noise: float) -> str:
        """A photo-like image for uploads, made once."""
        path = self.folder / "images" / f"{name}.{format.lower()}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(load.photo_like(width, height, format, self.seed, noise))
        return str(path)

    def upload_images(self) -> list[str]:
        """A photo as a camera saves it (JPEG), a large PNG, and a WebP too large to decode."""
        width = int((self.sizes.upload_megapixels * 1e6 * 1.5) ** 0.5)
        height = int(self.sizes.upload_megapixels * 1e6 / width)
        return [self.image("photo", width, height, "JPEG", 6),
                self.image("screenshot", 3776, 2520, "PNG", 0),  # 9.5 Mpx: ~36 MiB to decode
                self.image("huge", width, height, "WEBP", 6)]

    def server(self, name: str, flags: list[str] | None = None) -> ServerProcess:
        return ServerProcess(self.index, self.folder, flags or [], name)


def run(parts: list[str], workspace: Workspace, report: Callable[[Row], None]) -> list[Row]:
    """Run the parts in order; `report` is told each row as soon as it is known."""
    workspace.prepare()
    rows: list[Row] = []
    for part in parts:
        for row in PART_RUNNERS[part](workspace):
            rows.append(row)
            report(row)
    return rows


def table(rows: list[Row]) -> str:
    lines = ["| part | measure | result | target | met |", "|---|---|---|---|---|"]
    marks = {True: "yes", False: "**no**", None: ""}
    lines += [f"| {r.part} | {r.measure} | {r.value} | {r.target} | {marks[r.met]} |"
              for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------- the parts


def fuzz_part(space: Workspace) -> list[Row]:
    server = space.server("fuzz")
    with server as target:
        found = asyncio.run(fuzz(target, space.sizes.messages, space.sizes.fuzz_clients,
                                 space.seed))
        alive = target.alive()
    tracebacks = server.log().count("Traceback")
    replies = sum(found.codes.values())
    kinds = ", ".join(f"{kind} {count / max(1, replies):.0%}"
                      for kind, count in found.codes.most_common())
    return [
        Row("fuzz", "messages sent / answered", f"{found.sent:,} / {replies:,} in "
            f"{found.seconds:.0f} s", f"{space.sizes.messages:,}",
            found.sent >= space.sizes.messages),
        Row("fuzz", "server crashed / tracebacks logged", f"{'yes' if not alive else 'no'} / "
            f"{tracebacks}", "no / 0", alive and not tracebacks),
        Row("fuzz", "`internal` errors", str(found.internal), "0", found.internal == 0),
        Row("fuzz", "replies not strict JSON or with a wrong id", str(found.bad_replies), "0",
            found.bad_replies == 0),
        Row("fuzz", "unanswered (30 s) / connections closed by the server",
            f"{found.unanswered} / {found.dropped}", "0 / 0",
            found.unanswered == 0 and found.dropped == 0),
        Row("fuzz", "replies by kind", kinds),
    ]


def http_part(space: Workspace) -> list[Row]:
    folder = space.folder / "web"
    folder.mkdir(exist_ok=True)
    size = space.sizes.download_mib << 20
    with open(folder / "big.bin", "wb") as big:  # sparse: no disk used
        big.truncate(size)
    server = space.server("http", ["--web", str(folder)])
    with server as target:
        return asyncio.run(_http_rows(target, space.sizes, size))


async def _http_rows(target: Target, sizes: Sizes, size: int) -> list[Row]:
    before = target.rss()
    downloads = await asyncio.gather(*(web.download(target, "/big.bin", size, number)
                                       for number in range(sizes.downloads)))
    rise = target.peak() - before
    slowest = max(d.seconds for d in downloads)
    rate = 2 << 20
    steady = await web.download(target, "/big.bin", size, 99, rate=rate,
                                seconds=sizes.steady_seconds)
    answered = await web.pipelined(target, 100)
    edges = await web.edge_cases(target)
    wrong = [f"{sent.split(b' ')[0].decode()}: {got}" for sent, want, got in edges
             if got != want]
    return [
        Row("http", f"{sizes.downloads} downloads of {sizes.download_mib} MiB at once",
            f"{sum(d.complete for d in downloads)} whole in {slowest:.1f} s; server memory "
            f"+{mb(rise)}", "all whole, memory flat (< +64 MB)",
            all(d.complete for d in downloads) and rise < 64e6),
        Row("http", f"a reader at 2 MiB/s for {sizes.steady_seconds:g} s",
            f"{steady.received / 2**20:.0f} MiB, {'cut' if steady.cut else 'not cut'}",
            "not cut", not steady.cut),
        Row("http", "100 pipelined requests", f"{answered} answered in order", "100",
            answered == 100),
        Row("http", "malformed or forbidden requests", f"{len(edges) - len(wrong)} of "
            f"{len(edges)} refused as they should" + (f" ({', '.join(wrong)})" if wrong else ""),
            "all", not wrong),
    ]


def connections_part(space: Workspace) -> list[Row]:
    with space.server("connections") as target:
        count = space.sizes.connections
        found = asyncio.run(load.connections(target, count))
        caps = asyncio.run(load.caps(target, 70))
    failed = ", ".join(f"{n} {kind}" for kind, n in found.failed.items()) or "none failed"
    return [
        Row("connections", f"{count:,} clients at once (32 an address), a query each",
            f"{found.answered:,} answered in {found.seconds:.1f} s ({failed})",
            f"all {count:,}", found.answered == count),
        Row("connections", f"server memory with {count:,} open", mb(found.rss)),
        Row("connections", "70 connections from one address (cap 64)",
            f"{caps.accepted} accepted, {caps.refused} closed with 1013 and why",
            "64, and 6 told why", caps.accepted == 64 and caps.refused == 6),
    ]


async def _under_attack(target: Target, sizes: Sizes,
                        attack: Callable[[], Coroutine[Any, Any, dict]]
                        ) -> tuple[list[float], list[float], dict]:
    """The victim's round trips alone, then while `attack` runs (from its second second)."""
    idle = await latencies(target, load.VICTIM, sizes.idle_seconds)
    attacking = asyncio.ensure_future(attack())
    await asyncio.sleep(1.0)
    during = await latencies(target, load.VICTIM, sizes.seconds - 1.0)
    return idle, during, await attacking


def flood_part(space: Workspace) -> list[Row]:
    sizes = space.sizes
    with space.server("flood") as target:
        idle, during, replies = asyncio.run(_under_attack(target, sizes, lambda: load.elsewhere(
            load.flood, target.port, load.address(2, 0), sizes.flood_connections,
            sizes.seconds + 1.0, space.seed)))
    ratio = percentile(during, 50) / percentile(idle, 50)
    return [
        Row("flood", "another client's p50 / p99, idle", f"{ms(percentile(idle, 50))} / "
            f"{ms(percentile(idle, 99))} ({len(idle)} queries)"),
        Row("flood", f"... while one address floods with {sizes.flood_connections} "
            "connections of heavy queries", f"{ms(percentile(during, 50))} / "
            f"{ms(percentile(during, 99))}: p50 {ratio:.1f}x idle", "p50 <= 3x idle",
            ratio <= 3),
        Row("flood", "the flooder's replies", _kinds(replies)),
    ]


def uploads_part(space: Workspace) -> list[Row]:
    sizes = space.sizes
    images = space.upload_images()
    with space.server("uploads") as target:
        async def storm() -> tuple[list[float], list[float], dict, float]:
            idle, during, replies = await _under_attack(target, sizes, lambda: load.elsewhere(
                load.storm, target.port, 5, sizes.uploaders, sizes.seconds, images))
            return idle, during, replies, await time_to_idle(target, time.monotonic())

        idle, during, replies, back = asyncio.run(storm())
        peak, main = target.tree_peak(), target.peak()
    ratio = percentile(during, 99) / percentile(idle, 99)
    return [
        Row("uploads", "another client's p50 / p99, idle", f"{ms(percentile(idle, 50))} / "
            f"{ms(percentile(idle, 99))}"),
        Row("uploads", f"... during a storm of {sizes.upload_megapixels:g}-megapixel uploads "
            f"({sizes.uploaders} uploaders, one leaver every 0.2 s)",
            f"{ms(percentile(during, 50))} / {ms(percentile(during, 99))}: p99 {ratio:.1f}x "
            "idle", "p99 <= 3x idle", ratio <= 3),
        Row("uploads", "CPU back to idle after the uploaders left (with uploads queued)",
            f"{back:.2f} s", "<= 2 s", back <= 2),
        Row("uploads", "server memory at its peak (main process; with its decoders)",
            f"{mb(main)}; {mb(peak)}", "< 1.5 GB", peak < 1.5 * GB),
        Row("uploads", "the uploaders' replies", _kinds(replies)),
    ]


def queued_part(space: Workspace) -> list[Row]:
    sizes = space.sizes
    photo, screenshot, _ = space.upload_images()
    frame = Path(space.folder / "images" / "frame.jpg")
    data = Path(photo).read_bytes()
    frame.write_bytes(data + bytes(max(0, int(sizes.frame_mib * 2**20) - len(data))))
    with space.server("queued") as target:
        replies = asyncio.run(load.elsewhere(
            load.queue_frames, target.port, 6, sizes.attackers, sizes.frames, str(frame),
            screenshot, sizes.seconds))
        peak, main = target.tree_peak(), target.peak()
    attempted = sizes.attackers * sizes.frames * frame.stat().st_size
    return [
        Row("queued", f"{sizes.attackers} connections each sending {sizes.frames} uploads of "
            f"{sizes.frame_mib:g} MiB without reading, upload slots busy",
            f"{mb(attempted)} pushed at the server", ""),
        Row("queued", "server memory at its peak (main process; with its decoders)",
            f"{mb(main)}; {mb(peak)}", "< 1.5 GB", peak < 1.5 * GB),
        Row("queued", "what the attackers saw", _kinds(replies)),
    ]


def kill_part(space: Workspace) -> list[Row]:
    work = space.folder / "kill"
    photos = work / "photos"
    if not photos.exists():
        killing.make_photos(photos, space.sizes.photos, space.seed)
    rounds = space.sizes.kill_rounds
    found = killing.kill_during_index(photos, work, rounds, space.seed)
    return [
        Row("kill", f"indexers killed with SIGKILL mid-run ({space.sizes.photos} photos)",
            f"{found.killed} (of {found.runs} started; the others finished first)",
            str(rounds), found.killed == rounds),
        Row("kill", "index intact after each run", f"{found.intact} of {found.runs}"
            + (f": {'; '.join(found.problems)}" if found.problems else ""), "all",
            found.intact == found.runs),
        Row("kill", "decoding workers alive 1 s after their indexer was killed",
            str(found.workers_outlived), "0", found.workers_outlived == 0),
        Row("kill", "vectors in partial/ after a kill, at most", str(found.most_saved),
            f"<= {space.sizes.photos + 32} (one per photo, plus the chunk in flight)",
            found.most_saved <= space.sizes.photos + 32),
        Row("kill", "final index vs a clean build", "identical records, vectors within "
            f"{found.largest_difference:.1e}" if found.identical else "different",
            "identical", found.identical and found.largest_difference < 1e-5),
        Row("kill", "a run with nothing to do wrote a generation",
            "yes" if found.idle_run_wrote else "no", "no", not found.idle_run_wrote),
    ]


def decode_part(space: Workspace) -> list[Row]:
    rows = []
    for case in decode.measure(space.folder / "decode"):
        if case.accepted:
            total = case.peak_rise + decode.MAX_UPLOAD
            rows.append(Row("decode", f"{case.name} ({case.file_bytes / 1e6:.1f} MB)",
                            f"accepted in {case.seconds:.2f} s: +{mb(case.peak_rise)} at peak "
                            f"(estimated {mb(case.estimate)})",
                            "<= 60 MB with a message of 10 MiB", total <= 60e6))
        else:
            rows.append(Row("decode", f"{case.name} ({case.file_bytes / 1e6:.1f} MB)",
                            f"refused in {case.seconds * 1e3:.1f} ms, +{mb(case.peak_rise)}: "
                            f"needs {mb(case.estimate)}", "refused before decoding",
                            case.peak_rise < 8e6))
    return rows


def _kinds(replies: dict) -> str:
    return ", ".join(f"{count:,} {kind}" for kind, count in Counter(replies).most_common())


PART_RUNNERS: dict[str, Callable[[Workspace], list[Row]]] = {
    "fuzz": fuzz_part, "http": http_part, "connections": connections_part,
    "flood": flood_part, "uploads": uploads_part, "queued": queued_part, "kill": kill_part,
    "decode": decode_part,
}


def default_folder() -> Path:
    return Path(os.environ.get("TMPDIR", "/tmp")) / "wordpix-stress"
