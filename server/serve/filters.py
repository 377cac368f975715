"""A query's filter (when and where the photos were taken) and its order.

A filter picks the gallery rows it keeps with one SQL range scan of the index's records (the
dates' index, or the paths' for a folder), and the query is then ranked among those rows only
(`server.serve.search.search_within`): a filter that keeps 3 photos returns those 3, never the
few of the gallery's best 24 that happen to pass it.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import numpy as np

Order = Literal["score", "date"]
ORDERS: tuple[Order, ...] = ("score", "date")
MAX_FOLDER_CHARS = 1000
CACHED_ROWS = 2_000_000  # rows of recent filters kept (16 MB): a page pages through one filter


@dataclass(frozen=True)
class Within:
    """Photos taken on or after `since` and before `before` ('YYYY-MM-DD', either open), in
    `folder` or below it (a path relative to the gallery root; "" for all)."""

    since: str | None = None
    before: str | None = None
    folder: str = ""

    @property
    def everything(self) -> bool:
        return self.since is None and self.before is None and not self.folder


def within(since: str | None, until: str | None, folder: str | None) -> Within:
    """The filter of a request's `from` and `to` (days, both kept) and `folder`; ValueError
    says what is wrong with them."""
    first = _day(since, "from")
    last = _day(until, "to")
    if first and last and last < first:
        raise ValueError(f'"to" ({until}) is before "from" ({since})')
    return Within(first.isoformat() if first else None,
                  (last + timedelta(days=1)).isoformat() if last else None,
                  _folder(folder or ""))


def _day(text: str | None, name: str) -> date | None:
    if text is None:
        return None
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f'"{name}" must be a day as YYYY-MM-DD, not {text[:40]!r}') from None


def _folder(text: str) -> str:
    if len(text) > MAX_FOLDER_CHARS:
        raise ValueError(f'"folder" is too long (at most {MAX_FOLDER_CHARS} characters)')
    folder = text.strip("/")
    if folder and any(part in ("", ".", "..") or "\0" in part for part in folder.split("/")):
        raise ValueError('"folder" must be a folder of the gallery, as "2019/summer"')
    return folder


class RowsWithin:
    """The gallery rows a filter keeps, sorted, for the latest filters asked."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db
        self._cache: OrderedDict[Within, np.ndarray] = OrderedDict()

    def __call__(self, kept: Within) -> np.ndarray:
        if kept in self._cache:
            self._cache.move_to_end(kept)
            return self._cache[kept]
        rows = self._select(kept)
        self._cache[kept] = rows
        while len(self._cache) > 1 and sum(len(r) for r in self._cache.values()) > CACHED_ROWS:
            self._cache.popitem(last=False)
        return rows

    def _select(self, kept: Within) -> np.ndarray:
        clauses, args = [], []
        if kept.since is not None:
            clauses.append("taken >= ?")
            args.append(kept.since)
        if kept.before is not None:
            clauses.append("taken < ?")
            args.append(kept.before)
        if kept.folder:
            # the subtree's paths are those from "folder/" up to "folder0" ('0' follows '/')
            clauses.append("path >= ? AND path < ?")
            args += [kept.folder + "/", kept.folder + "0"]
        where = " AND ".join(clauses) or "1"
        cursor = self._db.execute(f"SELECT row FROM items WHERE {where} ORDER BY row", args)
        return np.fromiter((row for (row,) in cursor), np.int64)
