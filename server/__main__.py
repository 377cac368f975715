"""python -m server --port 9998 --index runs/index/tuxpaint: serve a gallery and the page."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import get_args

from server.artifacts import DEFAULT_MODEL_DIR
from server.serve.app import WEB_DIR, load_app, start
from server.serve.gallery import GalleryError
from server.serve.search import Backend

DEFAULT_INDEX = Path("runs/index/gallery")


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number >= 0")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    parser.add_argument("--port", type=int, default=9998)
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (0.0.0.0 for every one)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--index", type=Path, default=DEFAULT_INDEX,
                        help="a gallery index made by `python -m scripts.index`")
    parser.add_argument("--web", type=Path, default=WEB_DIR, help="the page's folder")
    parser.add_argument("--backend", choices=get_args(Backend), default="auto",
                        help="auto: exact up to 200,000 images, faiss IVF up to 1M, compressed "
                        "(IVF-PQ, memory-mapped: docs/scale.md) beyond")
    parser.add_argument("--caption-weight", type=_non_negative, default=1.0,
                        help="for images with a caption, rank by picture + this x caption "
                        "(0: by the picture alone)")
    parser.add_argument("--allow-origin", action="append", default=[],
                        help="another web origin allowed to connect (repeatable)")
    parser.add_argument("--page-from-disk", action=argparse.BooleanOptionalAction, default=True,
                        help="accept the page opened from disk (Origin: null, which sandboxed "
                        "frames on any web site send too)")
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> None:
    app = load_app(args.model, args.index, args.web, args.backend, args.caption_weight)
    try:
        server = await start(app, args.host, args.port, args.allow_origin, args.page_from_disk)
    except OSError as error:  # most often: the port is taken
        raise SystemExit(f"error: cannot listen on {args.host}:{args.port}: "
                         f"{error.strerror or error}") from None
    port = server.sockets[0].getsockname()[1]
    logging.getLogger("wordpix.server").info(
        "serving %d images on http://%s:%d/ (WebSocket on the same port)", len(app.gallery),
        "localhost" if args.host in ("127.0.0.1", "::1") else args.host, port)
    stop = asyncio.get_running_loop().create_future()

    def request_stop() -> None:
        if not stop.done():  # a second Ctrl-C: no error
            stop.set_result(None)

    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, request_stop)
    async with server:
        await stop


def run(argv: list[str] | None = None) -> None:
    """The command line: serve until Ctrl-C; a user's mistake exits with its message."""
    arguments = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if arguments.verbose else logging.INFO,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S", force=True)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("gensim").setLevel(logging.WARNING)
    try:
        asyncio.run(main(arguments))
    except (GalleryError, FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    run()
