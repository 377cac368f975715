"""Kill -9 the indexer again and again; the index must stay intact and end as a clean build.

Each round runs `python -m scripts.index` (as a user does) and kills it at a random moment:
while it decodes, while it saves a chunk, while it writes a generation. After each kill the
index must open and hold consistent records and unit vectors, its decoding workers must be gone
within a second, and the results of killed runs must not pile up (each photo embedded once). A
run that finishes before its kill does not count as a round (it is checked all the same), and
half the photos are changed so that the next has work; at most three runs a round are started.
At the end a last run completes, and its index must equal a clean build of the same folder; one
more run, with nothing to do, must not write a new generation.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from server.serve.gallery import MANIFEST, Gallery, GalleryError
from tests.stress.common import REPO, Target
from tests.stress.load import photo_like


@dataclass
class KillReport:
    runs: int = 0  # indexers started
    killed: int = 0  # ... and killed before they finished
    intact: int = 0  # runs after which the index was sound
    problems: list[str] = field(default_factory=list)
    most_saved: int = 0  # vectors seen in the partial folder after a kill (no pile-up: <= photos)
    workers_outlived: int = 0  # decoding workers still running 1 s after their indexer died
    identical: bool = False  # same paths, ids and captions as a clean build
    largest_difference: float = float("nan")  # between the vectors of the two
    idle_run_wrote: bool = True  # a run with nothing to do wrote a new generation


def make_photos(folder: Path, count: int, seed: int = 0) -> None:
    """`count` distinct photo-like JPEGs of 320 x 240."""
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        (folder / f"{number:04d}.jpg").write_bytes(
            photo_like(320, 240, "JPEG", seed=seed * 100_000 + number, noise=4))


def index_command(folder: Path, index: Path) -> list[str]:
    return [sys.executable, "-m", "scripts.index", str(folder), "--index", str(index),
            "--chunk-size", "32", "--quiet"]


def build(folder: Path, index: Path, timeout: float = 600) -> float:
    """A whole indexing run; returns its duration."""
    started = time.monotonic()
    subprocess.run(index_command(folder, index), cwd=REPO, check=True, capture_output=True,
                   timeout=timeout)
    return time.monotonic() - started


def kill_during_index(folder: Path, work: Path, rounds: int, seed: int = 0) -> KillReport:
    """Kill -9 an indexer `rounds` times in `work`/index; compare with a clean build."""
    rng = random.Random(seed)
    report = KillReport()
    index, clean = work / "index", work / "clean"
    duration = build(folder, work / "timing")
    photos = len(list(folder.glob("*.jpg")))
    todo = photos  # what the next run has to embed: its kill moment is drawn over its length
    while report.killed < rounds and report.runs < 3 * rounds:
        number = report.runs
        report.runs += 1
        saved_before = saved_results(index)
        process = subprocess.Popen(index_command(folder, index), cwd=REPO,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if _wait(process, rng.uniform(0.3, max(0.6, duration * 0.95 * todo / photos))):
            _change_photos(folder, rng, number)  # it finished: give the next run work
            todo = max(1, photos // 2)
        else:
            report.killed += 1
            workers = [child.pid for child in Target(0, process.pid).children()]
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            report.workers_outlived += len(_still_running(workers, within=1.0))
            todo = max(1, todo - (saved_results(index) - saved_before))
        problem = check_index(index)
        report.intact += problem is None
        if problem is not None:
            report.problems.append(f"run {number + 1}: {problem}")
        report.most_saved = max(report.most_saved, saved_vectors(index))
    build(folder, index)
    build(folder, clean)
    report.identical, report.largest_difference = compare(index, clean)
    generation = json.loads((index / MANIFEST).read_text())["generation"]
    build(folder, index)
    report.idle_run_wrote = json.loads((index / MANIFEST).read_text())["generation"] != generation
    return report


def saved_results(index: Path) -> int:
    """Results a running (or killed) indexer has committed to its partial folder."""
    work = index / "partial" / "work.sqlite"
    if not work.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{work}?mode=ro", uri=True, timeout=0.1) as db:
            return db.execute("SELECT COUNT(*) FROM done").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet, or being written
        return 0


def saved_vectors(index: Path) -> int:
    """Vectors in the partial folder's file, by its size and the model stamp beside it."""
    folder = index / "partial"
    if not (folder / "model").is_file() or not (folder / "vectors.bin").is_file():
        return 0
    _, dim, dtype, _ = (folder / "model").read_text().split()  # fingerprint dim dtype format
    return (folder / "vectors.bin").stat().st_size // (int(dim) * np.dtype(dtype).itemsize)


def check_index(index: Path) -> str | None:
    """None if the index is sound (or not written yet), else what is wrong."""
    if not (index / MANIFEST).exists():
        return None
    try:
        gallery = Gallery(index)
    except (GalleryError, OSError, ValueError) as error:
        return f"does not open: {error}"
    try:
        items = gallery.all_items()
        vectors = np.asarray(gallery.vectors, np.float32)
        count = gallery.manifest["count"]
        if len(items) != len(vectors) or len(items) != count:
            return f"{len(items)} records, {len(vectors)} vectors, count {count}"
        if [item.row for item in items] != list(range(len(items))):
            return "rows are not 0..n-1"
        if len(vectors) and not np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3):
            return "vectors that are not unit vectors"
    finally:
        gallery.close()
    return None


def compare(index: Path, clean: Path) -> tuple[bool, float]:
    """Whether two indexes hold the same records, and the largest difference of a vector."""
    first, second = Gallery(index), Gallery(clean)
    try:
        records = [(i.id, i.path, i.size, i.mtime_ns, i.caption) for i in first.all_items()]
        same = records == [(i.id, i.path, i.size, i.mtime_ns, i.caption)
                           for i in second.all_items()]
        if not same:
            return False, float("nan")
        difference = np.abs(np.asarray(first.vectors, np.float32) -
                            np.asarray(second.vectors, np.float32))
        return True, float(difference.max(initial=0.0))
    finally:
        first.close()
        second.close()


def _wait(process: subprocess.Popen, seconds: float) -> bool:
    """Whether the process ended within `seconds`."""
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return False
    return True


def _change_photos(folder: Path, rng: random.Random, number: int) -> None:
    photos = sorted(folder.glob("*.jpg"))
    for path in rng.sample(photos, max(1, len(photos) // 2)):
        path.write_bytes(photo_like(320, 240, "JPEG", seed=10**6 + number * 1000 +
                                    rng.randrange(1000), noise=4))


def _still_running(pids: list[int], within: float) -> list[int]:
    deadline = time.monotonic() + within
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if Target(0, pid).alive()]
    return alive
