"""python -m server --port 9998 --index runs/index/tuxpaint: serve a gallery and the page."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from server.app import WEB_DIR, load_app, start
from server.encoder import DEFAULT_MODEL_DIR
from server.gallery import GalleryError

DEFAULT_INDEX = Path("runs/index/gallery")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    parser.add_argument("--port", type=int, default=9998)
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (0.0.0.0 for every one)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--index", type=Path, default=DEFAULT_INDEX,
                        help="a gallery index made by `python -m scripts.index`")
    parser.add_argument("--web", type=Path, default=WEB_DIR, help="the page's folder")
    parser.add_argument("--backend", choices=("auto", "exact", "faiss"), default="auto")
    parser.add_argument("--caption-weight", type=float, default=1.0,
                        help="for images with a caption, rank by picture + this x caption "
                        "(0: by the picture alone)")
    parser.add_argument("--allow-origin", action="append", default=[],
                        help="another web origin allowed to connect (repeatable)")
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> None:
    app = load_app(args.model, args.index, args.web, args.backend, args.caption_weight)
    server = await start(app, args.host, args.port, args.allow_origin)
    port = server.sockets[0].getsockname()[1]
    logging.getLogger("wordpix.server").info(
        "serving %d images on http://%s:%d/ (WebSocket on the same port)", len(app.gallery),
        "localhost" if args.host in ("127.0.0.1", "::1") else args.host, port)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
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
    except (GalleryError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    except OSError as error:  # most often: the port is taken
        sys.exit(f"error: cannot listen on {arguments.host}:{arguments.port}: {error.strerror}")


if __name__ == "__main__":
    run()
