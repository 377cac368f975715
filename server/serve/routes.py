"""What HTTP GET and HEAD answer: the page's files, gallery images and /health.

The page is `/` and the other files of web/ by name; a gallery image is `/images/<id>`, only the
very file that was indexed; a thumbnail `/thumbs/<key>.jpg`, a name made of 20 hex digits.
Nothing else on disk can be reached, because paths are looked up or made of checked parts,
never joined from what a request says. The front door (front.py) has checked the method, the
Host and the access token; it passes a `refusal` when the request may not have gallery data.
"""

from __future__ import annotations

import asyncio
import http
import json
import mimetypes
import os
import re
from pathlib import Path

from server.serve.front import HttpAnswer, ServedFile, open_regular
from server.serve.gallery import Gallery, Item
from server.serve.protocol import MAX_IMAGE_ID
from server.serve.settings import WEB_DIR
from server.serve.thumbnails import URL_PATH, thumbnail_file

_IMAGE_PATH = re.compile(rf"/images/([0-9]{{1,{len(str(MAX_IMAGE_ID))}}})")


class Routes:
    """The HTTP answers of a server of `gallery` (None: no index yet, so no images)."""

    def __init__(self, gallery: Gallery | None, web_dir: Path = WEB_DIR):
        self.gallery = gallery
        self.root = gallery.root.resolve() if gallery is not None else None
        self.web_files = web_files(web_dir)

    async def route(self, path: str, refusal: HttpAnswer | None = None) -> HttpAnswer:
        """What a GET of `path` answers; with a `refusal` (no access token, a page of another
        origin) only the page's files and /health's "ok", and the refusal for anything else."""
        if path in self.web_files:
            served = await asyncio.to_thread(open_regular, self.web_files[path])
            if served is not None:
                return HttpAnswer(http.HTTPStatus.OK, cache="no-cache", file=served,
                                  content_type=content_type(self.web_files[path].name))
        if path == "/health":
            return health(refusal, len(self.gallery) if self.gallery is not None else 0)
        if refusal is not None:
            return refusal
        if self.gallery is None:
            return HttpAnswer.text(http.HTTPStatus.NOT_FOUND, "no gallery")
        thumb = URL_PATH.fullmatch(path)
        if thumb:
            served = await asyncio.to_thread(
                open_regular, thumbnail_file(self.gallery.directory, thumb.group(1)))
            if served is not None:
                # a key names one file as indexed: a changed file has another URL, so the
                # browser may keep this one for good (private: the URL may carry the token)
                return HttpAnswer(http.HTTPStatus.OK, content_type="image/jpeg",
                                  cache="private, max-age=31536000, immutable", file=served)
        match = _IMAGE_PATH.fullmatch(path)
        if match:
            item = self.gallery.by_id(int(match.group(1)))
            served = None if item is None else await asyncio.to_thread(self._open_indexed, item)
            if item is not None and served is not None:
                # private: the URL may carry the access token, so no shared cache keeps it
                return HttpAnswer(http.HTTPStatus.OK, content_type=content_type(item.path),
                                  cache="private, max-age=3600", file=served)
        return HttpAnswer.text(http.HTTPStatus.NOT_FOUND, "not found")

    def _open_indexed(self, item: Item) -> ServedFile | None:
        """The file indexed as `item`, opened, if it is still that file: a regular file inside
        the gallery's root once every link is followed, of the size and mtime indexed. What
        is checked is the opened file itself, so a link re-pointed meanwhile changes nothing."""
        assert self.root is not None
        served = open_regular(self.root / item.path)
        if served is None:
            return None
        try:
            real = Path(os.readlink(f"/proc/self/fd/{served.fd}"))
        except OSError:  # no /proc: resolve the name instead
            real = (self.root / item.path).resolve()
        if (real.is_relative_to(self.root) and served.size == item.size and
                served.mtime_ns == item.mtime_ns):
            return served
        served.close()
        return None


def health(refusal: HttpAnswer | None, images: int) -> HttpAnswer:
    """Alive, for anyone (a proxy's check); the gallery's size only to whom may see it. Any
    page learns why its WebSocket was refused: "token" (it needs the access token) or "page"
    (a page of another origin, or the page from disk without its key)."""
    if refusal is None:
        return HttpAnswer(http.HTTPStatus.OK, json.dumps({"ok": True, "images": images}).encode(),
                          "application/json")
    why = {"token": "required"} if refusal.status == http.HTTPStatus.UNAUTHORIZED else \
        {"page": "refused"}
    return HttpAnswer(http.HTTPStatus.OK, json.dumps({"ok": True, **why}).encode(),
                      "application/json", public=True)


def web_files(web_dir: Path) -> dict[str, Path]:
    """The page's files by URL path: looked up, never joined, so nothing else can be read."""
    files = {f"/{p.name}": p for p in Path(web_dir).iterdir() if p.is_file()} \
        if Path(web_dir).is_dir() else {}
    if "/index.html" in files:
        files["/"] = files["/index.html"]
    return files


def content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"
