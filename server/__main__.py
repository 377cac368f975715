"""python -m server --port 9998 --index runs/index/tuxpaint: serve a gallery and the page.

Without --index it serves the index built last under runs/index (the demo's after `make demo`);
with none there, it serves the page, which says how to build one.

On loopback it is open, as it always was. Listening on anything else (--host 0.0.0.0) needs an
access token: --token or --token-file, else one made at start and printed in a ready link;
--no-auth serves openly, and the log says so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import signal
import sys
from pathlib import Path

from server.serve.access import (
    PAGE_KEYS,
    SHORT_TOKEN,
    check_token,
    is_loopback,
    link_host,
    new_token,
    read_token_file,
    remove_page_key,
    write_page_key,
)
from server.serve.app import App, load_app, start
from server.serve.front import Front
from server.serve.gallery import GalleryError, latest_index
from server.serve.limits import Limits, MiB
from server.serve.settings import INDEXES, SERVER, build_parser

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def limits_from(args: argparse.Namespace) -> Limits:
    return Limits(connections=args.max_connections,
                  connections_per_address=args.max_connections_per_address,
                  share=args.address_share, burst=args.address_burst,
                  memory=args.message_memory * MiB, memory_wait=args.memory_wait,
                  upload_slots=args.upload_slots, upload_memory=args.upload_memory * MiB)


def access_token(args: argparse.Namespace) -> tuple[str | None, bool]:
    """(the token the server needs, or None; whether it was made now and so must be shown)."""
    if args.token is not None:
        return check_token(args.token, "--token"), False
    if args.token_file is not None:
        return read_token_file(args.token_file), False
    if args.no_auth or is_loopback(args.host):
        return None, False
    return new_token(), True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, made from the settings table (server/serve/settings.py)."""
    return build_parser(SERVER, "python -m server", __doc__).parse_args(argv)


def load(args: argparse.Namespace) -> App:
    """The App for --index, else for the index built last, else one that says to build one."""
    log = logging.getLogger("wordpix.server")
    index = args.index or latest_index(INDEXES)
    if index is None:
        log.warning("no gallery index in %s: the page will say how to build one", INDEXES)
        return App.without_gallery(args.web, limits_from(args))
    if args.index is None:
        log.info("serving %s, the index built last (--index chooses another)", index)
    return load_app(args.model, index, args.web, args.backend, args.caption_weight, args.fit,
                    limits_from(args))


def announce(args: argparse.Namespace, app: App, port: int, token: str | None,
             made: bool) -> None:
    """Say where the server is, before it reads any request (the tests read it once /health
    answers). The token is written only when it was made at start, in the one link that opens
    the page with it: the log never holds a token the user chose."""
    log = logging.getLogger("wordpix.server")
    url = f"http://{link_host(args.host)}:{port}/"
    if made:
        log.info("serving %d images on %s#token=%s (WebSocket on the same port; the link holds "
                 "the access token, made at start: --token-file keeps one)", app.images, url, token)
        return
    if token is not None:
        log.info("access token required: open %s#token=<the token>", url)
        if len(token) < SHORT_TOKEN:
            log.warning("the access token has %d characters: a short one can be guessed",
                        len(token))
    elif not is_loopback(args.host):
        log.warning("--no-auth: anyone who can reach port %d sees every picture and can query "
                    "the gallery", port)
    log.info("serving %d images on %s (WebSocket on the same port)", app.images, url)


def page_key_for(args: argparse.Namespace) -> str | None:
    """The key the page from disk sends, where it is accepted. A server with an access token
    takes the token as the proof instead, but writes a key too: the page from disk then finds
    one for every running server, and a missing file means no server on that port."""
    return new_token() if args.page_from_disk else None


def publish_page_key(args: argparse.Namespace, port: int, key: str | None) -> Path | None:
    """Write the page key beside the page (web/keys/<port>.js); None when there is none or it
    cannot be written (then only the page the server serves can connect, and the log says so)."""
    if key is None:
        return None
    log = logging.getLogger("wordpix.server")
    try:
        return write_page_key(args.web, port, key)
    except OSError as error:
        log.warning("cannot write the page key into %s (%s): the page opened from disk will not "
                    "connect; open the page this server serves instead", args.web / PAGE_KEYS,
                    error.strerror or error)
        return None


async def main(args: argparse.Namespace) -> None:
    token, made = access_token(args)  # before loading: a bad token file fails at once
    app = load(args)
    key = page_key_for(args)
    try:
        server = await start(app, args.host, args.port, args.allow_origin, args.page_from_disk,
                             token, key)
    except OSError as error:  # most often: the port is taken
        raise SystemExit(f"error: cannot listen on {args.host}:{args.port}: "
                         f"{error.strerror or error}") from None
    port = server.sockets[0].getsockname()[1]
    key_file = publish_page_key(args, port, key)
    try:
        announce(args, app, port, token, made)
        await serve_until_stopped(server)
    finally:
        if key_file is not None and key is not None:
            remove_page_key(key_file, key)


async def serve_until_stopped(server: Front) -> None:
    """Serve until SIGINT or SIGTERM."""
    stop = asyncio.get_running_loop().create_future()

    def request_stop() -> None:
        if not stop.done():  # a second Ctrl-C: no error
            stop.set_result(None)

    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, request_stop)
    async with server:
        await stop


def _give_back_freed_memory() -> None:
    """Blocks over 1 MiB (large messages) are mapped and unmapped each on its own, so that what
    a burst of large messages took goes back to the system once they are answered. glibc
    otherwise raises this threshold after the first large block is freed and serves later ones
    from heaps that only grow: under the queued-frame attack of `python -m scripts.stress` the
    server then held ~3x the bytes its budget allows (docs/reliability.md). Not lower: every
    read from a socket allocates 256 KiB first, and mapping that each time cost ~25% of the
    throughput of small messages."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, 1 << 20)


def run(argv: list[str] | None = None) -> None:
    """The command line: serve until Ctrl-C; a user's mistake exits with its message."""
    arguments = parse_args(argv)
    _give_back_freed_memory()
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
