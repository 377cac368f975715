"""An indexing run's working state on disk, so that no step holds the gallery in memory.

The indexer keeps it in `<index>/partial/`:

    model          the model fingerprint, dimension and dtype the results below were made with
    work.sqlite    `present`: the files of this run (path, size, mtime, caption), in scan order;
                   `done`: what this run and killed runs before it found for the files they
                   embedded (a vector's row in `vectors.bin` and the photo's date, or why the
                   file was skipped); their thumbnails are in the index's thumbs/ already
    vectors.bin    the vectors of `done`, raw rows in the index's dtype, appended

A chunk of results is appended to `vectors.bin`, synced, and only then committed to `done`: a
kill loses at most the chunk in flight, and the rows after the last committed one are cut off
when the next run opens the folder. A row's fate (reuse the previous index's vector, a killed
run's, or embed it) is one SQL join of `present`, `done` and the previous generation's records,
attached read-only: at 10 million images the indexer's memory stays that of one block.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from server.serve.gallery import Item, MatrixRows, Skipped

log = logging.getLogger("wordpix.index")
BLOCK = 65_536  # rows a query step reads or writes at once: the indexer's memory is a few of these
WORK_FORMAT = "v2"  # of the tables below: a partial folder of another is started afresh

# What is known of each file present, best source first: a killed run's result where it saw the
# file as it is now, else the previous index's, when its record matches the file (and `:reuse`,
# which a rebuild turns off). A file with neither is to be embedded.
_OUTCOMES = """
    SELECT p.seq, p.path, p.size, p.mtime_ns, p.caption, i.id,
           CASE WHEN d.size = p.size AND d.mtime_ns = p.mtime_ns THEN 1 ELSE 0 END AS resumed,
           d.vrow, d.reason, d.taken,
           CASE WHEN :reuse AND i.size = p.size AND i.mtime_ns = p.mtime_ns THEN i.row END,
           CASE WHEN :reuse AND s.size = p.size AND s.mtime_ns = p.mtime_ns
                     AND s.reason NOT LIKE 'cannot read%' THEN s.reason END,
           i.taken
    FROM present p
    LEFT JOIN done d ON d.path = p.path
    LEFT JOIN previous_items i ON i.path = p.path
    LEFT JOIN previous.skipped s ON s.path = p.path
"""


@dataclass(frozen=True)
class Outcome:
    """One file present, and what the run knows of it (an `_OUTCOMES` row)."""

    seq: int
    path: str
    size: int
    mtime_ns: int
    caption: str | None
    id: int | None  # the id it had in the previous index
    vector_row: int | None  # in the work's vectors.bin, or else ...
    previous_row: int | None  # ... in the previous generation's embeddings
    reason: str | None  # why it is skipped
    taken: str | None = None  # when the photo was taken (server.images.Photo.taken)

    @property
    def has_vector(self) -> bool:
        return self.vector_row is not None or self.previous_row is not None

    @property
    def known(self) -> bool:
        return self.has_vector or bool(self.reason)


@dataclass(frozen=True)
class Summary:
    """What the new generation would hold, from one pass over the work (`Work.summary`)."""

    vectors: int  # images with a vector
    captioned: bool  # some image with a vector has a caption
    skipped: list[Skipped]
    same_records: bool  # the previous generation's records, row for row
    todo: int = 0  # files to embed still
    removed: int = 0  # images of the previous generation no longer present

    def after_embedding(self, embedded: int, failed: list[Skipped], captioned: bool
                        ) -> Summary:
        """The summary once the `todo` files are embedded (`embedded` of them, with some
        caption among them if `captioned`) or `failed`: derived, not a second pass."""
        return Summary(self.vectors + embedded, self.captioned or captioned,
                       [*self.skipped, *failed], self.same_records and embedded == 0, 0,
                       self.removed)


class Result(NamedTuple):
    """What embedding found for one file: its vector and date, or why it is skipped."""

    outcome: Outcome
    vector: np.ndarray | None
    reason: str | None
    taken: str | None = None


def _outcome(row: tuple) -> Outcome:
    (seq, path, size, mtime, caption, item_id, resumed, vrow, done_reason, done_taken, prev_row,
     prev_reason, prev_taken) = row
    if resumed:
        return Outcome(seq, path, size, mtime, caption, item_id, vrow, None, done_reason,
                       done_taken)
    return Outcome(seq, path, size, mtime, caption, item_id, None, prev_row, prev_reason,
                   prev_taken)


class Work:
    """The partial folder of one index, opened for a run (see the module's doc)."""

    def __init__(self, folder: Path, *, fingerprint: str, dim: int, dtype: str,
                 previous_items: Path | None):
        self.folder, self.dim, self.dtype = folder, dim, np.dtype(dtype)
        stamp = f"{fingerprint} {dim} {self.dtype} {WORK_FORMAT}"
        marker = folder / "model"
        if folder.exists() and (not marker.is_file() or marker.read_text() != stamp):
            shutil.rmtree(folder)  # made by another model or for another dtype: useless
        folder.mkdir(parents=True, exist_ok=True)
        marker.write_text(stamp)
        self.vectors_path = folder / "vectors.bin"
        self.vectors_path.touch()
        try:
            self.db = self._open(previous_items)
        except sqlite3.DatabaseError as error:
            log.warning("ignoring the damaged results of an interrupted run (%s)", error)
            for path in folder.iterdir():
                if path != marker:
                    path.unlink()
            self.vectors_path.touch()
            self.db = self._open(previous_items)
        self._cut_vectors()
        self._vectors: MatrixRows | None = None

    def _open(self, previous_items: Path | None) -> sqlite3.Connection:
        db = sqlite3.connect(self.folder / "work.sqlite", uri=True)
        db.execute("CREATE TABLE IF NOT EXISTS done (path TEXT PRIMARY KEY, size INTEGER, "
                   "mtime_ns INTEGER, reason TEXT, vrow INTEGER, taken TEXT)")
        db.execute("DROP TABLE IF EXISTS present")
        db.execute("CREATE TABLE present (seq INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, "
                   "size INTEGER, mtime_ns INTEGER, caption TEXT)")
        if previous_items is not None:
            db.execute("ATTACH DATABASE ? AS previous", (f"file:{previous_items}?mode=ro",))
        else:  # no index yet: an empty one, so that one query serves both cases
            db.execute("ATTACH DATABASE ':memory:' AS previous")
            db.execute("CREATE TABLE previous.items (id INTEGER PRIMARY KEY, row INTEGER, "
                       "path TEXT UNIQUE, size INTEGER, mtime_ns INTEGER, caption TEXT)")
            db.execute("CREATE TABLE previous.skipped (path TEXT PRIMARY KEY, size INTEGER, "
                       "mtime_ns INTEGER, reason TEXT)")
        dated = any(column[1] == "taken" for column in
                    db.execute("PRAGMA previous.table_info(items)"))
        # an index of format 1 has no dates: the view gives it empty ones (it is re-embedded)
        db.execute("CREATE TEMP VIEW previous_items AS SELECT id, row, path, size, mtime_ns, "
                   f"caption, {'taken' if dated else 'NULL AS taken'} FROM previous.items")
        db.commit()
        return db

    def _cut_vectors(self) -> None:
        """Drop rows written after the last commit; forget results whose rows were lost."""
        row_bytes = self.dtype.itemsize * self.dim
        rows = self.vectors_path.stat().st_size // row_bytes
        (committed,) = self.db.execute("SELECT COALESCE(MAX(vrow) + 1, 0) FROM done").fetchone()
        if committed > rows:  # the OS lost synced data: keep what is whole
            log.warning("ignoring the damaged results of an interrupted run (%d vectors lost)",
                        committed - rows)
            self.db.execute("DELETE FROM done WHERE vrow >= ?", (rows,))
            self.db.commit()
            committed = rows
        os.truncate(self.vectors_path, committed * row_bytes)
        self.next_vrow = committed

    def add_present(self, records: Iterable[tuple[str, int, int, str | None]]) -> None:
        """This run's files as (path, size, mtime_ns, caption), in scan order; a path given twice
        keeps its first place and its last record."""
        self.db.executemany(
            "INSERT INTO present (path, size, mtime_ns, caption) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(path) DO UPDATE SET size = excluded.size, "
            "mtime_ns = excluded.mtime_ns, caption = excluded.caption", records)
        self.db.commit()

    def outcomes(self, reuse: bool, after: int = -1, limit: int = BLOCK) -> list[Outcome]:
        """Up to `limit` files present after scan position `after`, with what is known."""
        rows = self.db.execute(f"{_OUTCOMES} WHERE p.seq > :after ORDER BY p.seq LIMIT :limit",
                               {"reuse": reuse, "after": after, "limit": limit})
        return [_outcome(row) for row in rows]

    def all_outcomes(self, reuse: bool, todo_only: bool = False) -> Iterator[list[Outcome]]:
        """Every file present (or only those to embed), a block at a time, by keyset: no
        cursor stays open while the caller saves results."""
        after = -1
        while block := self.outcomes(reuse, after):
            after = block[-1].seq
            chosen = [o for o in block if not o.known] if todo_only else block
            if chosen:
                yield chosen

    def save(self, results: list[Result]) -> None:
        """Results of embedding: vectors first, synced, then their records, in one commit."""
        vectors = [r.vector for r in results if r.vector is not None]
        rows = []
        with open(self.vectors_path, "ab") as file:
            if vectors:
                file.write(np.asarray(vectors, self.dtype).tobytes())
            file.flush()
            os.fsync(file.fileno())
        for outcome, vector, reason, taken in results:
            vrow = None
            if vector is not None:
                vrow, self.next_vrow = self.next_vrow, self.next_vrow + 1
            rows.append((outcome.path, outcome.size, outcome.mtime_ns, reason, vrow, taken))
        self.db.executemany("INSERT OR REPLACE INTO done VALUES (?, ?, ?, ?, ?, ?)", rows)
        self.db.commit()

    def vectors(self, rows: list[int]) -> np.ndarray:
        """Rows of vectors.bin."""
        if self._vectors is None:
            self._vectors = MatrixRows(self.vectors_path, str(self.dtype), self.dim)
        return self._vectors.read(rows)

    def summary(self, reuse: bool, previous_count: int) -> Summary:
        """One pass over the work: what is to embed, what has a vector (and a caption), what is
        skipped, how many of the previous index's images are gone, and whether the records are
        the previous generation's (`previous_count` images): every file kept its id, row and
        record, none was added and none embedded anew."""
        vectors, todo, captioned, skipped, same = 0, 0, False, [], True
        for block in self.all_outcomes(reuse):
            for o in block:
                if not o.has_vector:
                    if o.reason:
                        skipped.append(Skipped(o.path, o.size, o.mtime_ns, o.reason))
                    else:
                        todo += 1
                    continue
                same = same and o.vector_row is None and o.previous_row == vectors
                vectors += 1
                captioned = captioned or bool(o.caption)
        if same and vectors == previous_count:
            (changed,) = self.db.execute(
                "SELECT COUNT(*) FROM present p JOIN previous.items i ON i.path = p.path "
                "WHERE p.caption IS NOT i.caption").fetchone()
            same = changed == 0
        (removed,) = self.db.execute(
            "SELECT COUNT(*) FROM previous.items i WHERE NOT EXISTS "
            "(SELECT 1 FROM present p WHERE p.path = i.path)").fetchone()
        return Summary(vectors, captioned, skipped, same and vectors == previous_count, todo,
                       removed)

    def replaced(self, every: bool = False) -> Iterator[tuple[str, int, int]]:
        """(path, size, mtime_ns) of the previous index's images that the new generation does
        not hold as they were (gone, or changed); with `every`, all of them."""
        query = "SELECT i.path, i.size, i.mtime_ns FROM previous_items i" + ("" if every else
            " WHERE NOT EXISTS (SELECT 1 FROM present p WHERE p.path = i.path AND "
            "p.size = i.size AND p.mtime_ns = i.mtime_ns)")
        cursor = self.db.execute(query)
        while rows := cursor.fetchmany(BLOCK):
            yield from rows

    def close(self) -> None:
        if self._vectors is not None:
            self._vectors.close()
        self.db.close()


def items_of(outcomes: list[Outcome], first_row: int, next_id: int) -> tuple[list[Item], int]:
    """The new generation's records of a block of files with vectors, rows from `first_row`,
    new ids from `next_id`; returns them and the next free id."""
    items = []
    for row, o in enumerate(outcomes, first_row):
        item_id = o.id
        if item_id is None:
            item_id, next_id = next_id, next_id + 1
        items.append(Item(item_id, row, o.path, o.size, o.mtime_ns, o.caption, o.taken))
    return items, next_id
