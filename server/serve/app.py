"""The query server, wired: one asyncio process, WebSocket queries and plain HTTP on one port.

The parts, one job each:
- `front.py`: every TCP connection (HTTP, the hand-over to websockets, the token, connection
  caps, the memory budget for messages);
- `routes.py`: what HTTP GET answers (the page, gallery images, /health);
- `sessions.py`: one WebSocket connection's conversation (the hello, then each message);
- `dispatch.py`: what each message means; `batcher.py`: queries answered together, fairly;
  `uploads.py`: image uploads in worker processes;
- `protocol.py`: the messages' types, error codes and strict JSON (docs/protocol.md);
- `hello.py`: the first message.
This module loads a gallery's parts (`load_app`), or those of a server with no index yet
(`App.without_gallery`), and listens (`start`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from server.artifacts import load_word_space
from server.english import EnglishWords
from server.serve.access import access_for
from server.serve.dispatch import Dispatcher, NoGallery
from server.serve.encoder import ImageEncoder
from server.serve.front import Front, HttpAnswer
from server.serve.gallery import Gallery
from server.serve.hello import NO_INDEX, gallery_hello, setup_hello
from server.serve.hubness import cached_hubness, load_bank
from server.serve.limits import DEFAULT_LIMITS, Clients, Limits
from server.serve.look import Fit, picture_fit
from server.serve.protocol import Reply
from server.serve.relevance import RelevanceLines
from server.serve.retrieval import Retriever
from server.serve.routes import Routes
from server.serve.search import Backend, make_search
from server.serve.sessions import Replier, Session, converse
from server.serve.settings import DEFAULT_CAPTION_WEIGHT, DEFAULT_PORT, WEB_DIR
from server.serve.spelling import Speller
from server.serve.uploads import Uploads
from server.serve.websocket import WebSocket

__all__ = ["NO_INDEX", "WEB_DIR", "App", "Session", "load_app", "start"]
log = logging.getLogger("wordpix.server")


class App:
    """What the front door calls: the hello and the replier for each WebSocket connection,
    the routes for HTTP, and the clients' accounts both share."""

    def __init__(self, hello: str, replier: Replier, routes: Routes, clients: Clients,
                 retriever: Retriever | None = None):
        self.hello, self.replier, self.routes, self.clients = hello, replier, routes, clients
        self.limits = clients.limits
        self.retriever = retriever  # None: no gallery index yet
        self.gallery = retriever.gallery if retriever is not None else None

    @classmethod
    def of_gallery(cls, retriever: Retriever, encoder: ImageEncoder, web_dir: Path = WEB_DIR,
                   name: str = "gallery", fit: Fit = "cover",
                   limits: Limits = DEFAULT_LIMITS) -> App:
        clients = Clients(limits)
        uploads = Uploads(encoder.directory, limits)  # forks now: see Uploads
        return cls(gallery_hello(retriever, name, fit),
                   Dispatcher(retriever, clients, uploads),
                   Routes(retriever.gallery, web_dir), clients, retriever)

    @classmethod
    def without_gallery(cls, web_dir: Path = WEB_DIR, limits: Limits = DEFAULT_LIMITS) -> App:
        """`python -m server` before any index was built: the page, whose hello says how to
        build one, and that same message as the answer to every other request."""
        return cls(setup_hello(), NoGallery(NO_INDEX), Routes(None, web_dir), Clients(limits))

    @property
    def images(self) -> int:
        return len(self.gallery) if self.gallery is not None else 0

    async def handle(self, connection: WebSocket) -> None:
        await converse(connection, self.hello, self.replier)

    async def reply(self, message: str | bytes, session: Session) -> Reply:
        return await self.replier.reply(message, session)

    async def route(self, path: str, refusal: HttpAnswer | None = None) -> HttpAnswer:
        return await self.routes.route(path, refusal)


def load_app(model_dir: Path, index_dir: Path, web_dir: Path = WEB_DIR,
             backend: Backend = "auto", caption_weight: float = DEFAULT_CAPTION_WEIGHT,
             fit: Fit | None = None, limits: Limits = DEFAULT_LIMITS) -> App:
    """Load the words, the CNN and the gallery, logging how long each took. `fit`: how the
    page shows pictures; None looks at the gallery (picture_fit)."""
    timings = {}
    start = time.perf_counter()
    words = load_word_space(model_dir)
    english = EnglishWords.load(model_dir, words)
    speller = Speller(words.words, english.index if english else ())
    timings["words"] = time.perf_counter() - start
    start = time.perf_counter()
    # here for the model's fingerprint and input size: the upload workers run their own CNN
    encoder = ImageEncoder(model_dir, threads=1)
    timings["cnn"] = time.perf_counter() - start
    start = time.perf_counter()
    gallery = Gallery(index_dir, model_fingerprint=encoder.fingerprint)
    vectors = gallery.search_vectors(caption_weight)
    search = make_search(vectors, backend, index_file=gallery.search_cache(caption_weight))
    bank = load_bank(model_dir)
    hubs = None if bank is None else cached_hubness(
        vectors, bank, gallery.directory, gallery.search_cache(caption_weight).stem)
    timings["gallery"] = time.perf_counter() - start
    lines = RelevanceLines.load(model_dir, encoder.fingerprint)
    app = App.of_gallery(Retriever(words, gallery, search, english, speller, vectors, hubs,
                                   lines),
                         encoder, web_dir, name=Path(index_dir).name,
                         fit=fit or picture_fit(gallery), limits=limits)
    log.info("loaded %d caption words and %d English words in %.2f s, the CNN in %.2f s, "
             "%d gallery images in %.2f s (%s)", len(words), len(english) if english else 0,
             timings["words"], timings["cnn"], len(gallery), timings["gallery"],
             type(search).__name__)
    if gallery.thumbnails is None:
        log.warning("this index has no thumbnails: the page loads every original (slow for "
                    "large photos). Add them with `python -m scripts.index %s --index %s`",
                    gallery.root, gallery.directory)
    return app


async def start(app: App, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                allow_origins: Sequence[str] = (), page_from_disk: bool = True,
                token: str | None = None, page_key: str | None = None) -> Front:
    """Listen; HTTP and the WebSocket handshake answer only Host names of this machine, the
    WebSocket only its pages' origins and the allowed ones (`access_for`: the page from disk
    with `page_key` where there is no `token`), and, with a `token`, only requests that carry
    it (but for the page's files)."""
    access = access_for(host, allow_origins, page_from_disk, token, page_key)
    return await Front(app.handle, app.route, app.clients, host=host, port=port, access=access)
