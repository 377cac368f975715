"""Thumbnails of a gallery: small JPEGs the indexer makes as it decodes each image.

They live in the index folder as `thumbs/<k[:2]>/<k>.jpg`. The key `k` names one file as it was
indexed: its path, size and mtime, and the thumbnails' settings. A changed file therefore gets
a new key (and URL), so the server can let browsers cache a thumbnail for good, and an indexing
run removes the thumbnails of what it dropped or replaced. Written before the record that
names them is committed: a kill leaves at most an orphan, never a record without its picture.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from server.images import THUMBNAIL_QUALITY, THUMBNAIL_SIDE

THUMBS = "thumbs"
KEY_LENGTH = 20  # hex digits: 80 bits, no two files of a library share one
URL_PATH = re.compile(rf"/thumbs/([0-9a-f]{{{KEY_LENGTH}}})\.jpg")
# what the manifest records: an index whose settings differ has other keys (a rebuild)
SETTINGS = {"format": "JPEG", "side": THUMBNAIL_SIDE, "quality": THUMBNAIL_QUALITY}


def thumbnail_key(path: str, size: int, mtime_ns: int, settings: dict | None = None) -> str:
    """The key of the thumbnail of file `path` (relative to the gallery root) as indexed."""
    made = settings or SETTINGS
    text = f"{made['format']} {made['side']} {made['quality']}\n{size} {mtime_ns}\n{path}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:KEY_LENGTH]


def thumbnail_file(index_dir: Path, key: str) -> Path:
    return Path(index_dir) / THUMBS / key[:2] / f"{key}.jpg"


def thumbnail_url(key: str) -> str:
    return f"/thumbs/{key}.jpg"


def write_thumbnail(index_dir: Path, key: str, data: bytes) -> None:
    """Write one thumbnail whole (a temporary name, then renamed): a reader never sees half."""
    path = thumbnail_file(index_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def remove_thumbnails(index_dir: Path, keys: Iterable[str]) -> int:
    """Delete these thumbnails (those missing are fine); returns how many were there."""
    removed = 0
    for key in keys:
        try:
            thumbnail_file(index_dir, key).unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed
