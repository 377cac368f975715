"""The settings of the server and of the indexer: every default and its help in one table per
program, the command line made from it.

`python -m server --help` and `python -m scripts.index --help` print these tables. The port is
DEFAULT_PORT, here and nowhere else in the server; paths never depend on where one stands: the
model and the page are found from the package, and indexes live under the data directory
(DATA_DIR: $WORDPIX_DATA, else `runs/` of the checkout the package is in).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from server.artifacts import DEFAULT_MODEL_DIR
from server.datasets import DATASET_KINDS
from server.serve.indexer import IndexOptions
from server.serve.limits import DEFAULT_LIMITS, MiB
from server.serve.look import FITS
from server.serve.search import Backend

DEFAULT_PORT = 9998
WEB_DIR = Path(__file__).resolve().parents[2] / "web"  # the page, beside the package
# the checkout's runs/ unless $WORDPIX_DATA says otherwise (docs/server.md, Settings)
DATA_DIR = Path(os.environ.get("WORDPIX_DATA") or Path(__file__).resolve().parents[2] / "runs")
INDEXES = DATA_DIR / "index"
DEFAULT_CAPTION_WEIGHT = 1.0  # the server ranks by picture + this x caption


def non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number >= 0")
    return value


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number >= 1")
    return value


@dataclass(frozen=True)
class Setting:
    """One command-line option: `flag`, its default and help; the rest as argparse takes it."""
    flag: str
    default: Any
    help: str
    type: Callable[[str], Any] | None = None
    choices: Sequence[str] | None = None
    action: Any = None              # argparse's: "append", "store_true", a class
    nargs: str | None = None        # argparse's: "?" for an optional value (or positional)
    const: Any = None               # the value of a flag given without its optional value
    metavar: str | None = None
    group: str = ""                 # a section of --help ("" the first)
    exclusive: bool = False         # at most one of a group's exclusive settings

    def options(self) -> dict[str, Any]:
        given = {"default": self.default, "help": self.help, "type": self.type,
                 "choices": self.choices, "action": self.action, "nargs": self.nargs,
                 "const": self.const, "metavar": self.metavar}
        return {name: value for name, value in given.items() if value is not None}


@dataclass(frozen=True)
class Group:
    title: str
    description: str = ""
    settings: tuple[Setting, ...] = field(default_factory=tuple)


_DEFAULT = " (default: %(default)s)"

SERVER = (
    Group("", settings=(
        Setting("--port", DEFAULT_PORT, "the port of the page, the images and the WebSocket"
                + _DEFAULT, type=int),
        Setting("--host", "127.0.0.1", "interface to listen on (0.0.0.0 for every one)" + _DEFAULT),
        Setting("--model", DEFAULT_MODEL_DIR, "the exported model's folder" + _DEFAULT, type=Path),
        Setting("--index", None, "a gallery index made by `python -m scripts.index` (default: "
                f"the one built last under {INDEXES}, the data directory's index/)", type=Path),
        Setting("--web", WEB_DIR, "the page's folder" + _DEFAULT, type=Path),
        Setting("--backend", "auto", "auto: exact up to 200,000 images, faiss IVF up to 1M, "
                "compressed (IVF-PQ, memory-mapped: docs/scale.md) beyond",
                choices=get_args(Backend)),
        Setting("--caption-weight", DEFAULT_CAPTION_WEIGHT, "for images with a caption, rank "
                "by picture + this x caption (0: by the picture alone)" + _DEFAULT,
                type=non_negative),
        Setting("--fit", None, "show pictures cropped to square tiles (cover) or whole "
                "(contain); default: whole where most have transparency (clip art)", choices=FITS),
        Setting("--allow-origin", [], "another web origin allowed to connect (repeatable)",
                action="append"),
        Setting("--page-from-disk", True, "accept the page opened from disk (web/index.html): "
                "it proves it is this machine's page with a key the server writes beside it at "
                "start (web/keys/<port>.js); any other page whose Origin is null, as a sandboxed "
                "frame's on any web site, is refused", action=argparse.BooleanOptionalAction),
        Setting("--verbose", False, "log every client mistake too", action="store_true"),
    )),
    Group("access", "on loopback the server is open unless --token or --token-file is given; "
          "on any other --host it needs a token, made at start and printed in a link if none is "
          "given", settings=(
        Setting("--token", None, "the access token (letters, digits, - . _ ~); other users of "
                "this machine can read a command line: prefer --token-file", exclusive=True),
        Setting("--token-file", None, "a file whose first line is the access token", type=Path,
                exclusive=True),
        Setting("--no-auth", False, "serve without a token beyond loopback too: anyone who can "
                "reach the port sees every picture", action="store_true", exclusive=True),
    )),
    Group("limits", "what clients may take (server/serve/limits.py; docs/server.md)", settings=(
        Setting("--max-connections", DEFAULT_LIMITS.connections,
                "open connections, all clients together" + _DEFAULT, type=positive),
        Setting("--max-connections-per-address", DEFAULT_LIMITS.connections_per_address,
                "open connections from one client address" + _DEFAULT, type=positive),
        Setting("--address-share", DEFAULT_LIMITS.share, "seconds of server work a second one "
                "client address may use on average; past it, messages are answered `busy` (0: "
                "no limit)" + _DEFAULT, type=non_negative),
        Setting("--address-burst", DEFAULT_LIMITS.burst, "seconds of work one address may use "
                "at once" + _DEFAULT, type=non_negative),
        Setting("--message-memory", DEFAULT_LIMITS.memory // MiB, "MiB of received messages "
                "held at once, all connections together" + _DEFAULT, type=positive),
        Setting("--memory-wait", DEFAULT_LIMITS.memory_wait, "seconds a connection may wait for "
                "message memory before it is closed" + _DEFAULT, type=non_negative),
        Setting("--upload-slots", DEFAULT_LIMITS.upload_slots, "uploads decoded at once, all "
                "connections together" + _DEFAULT, type=positive),
        Setting("--upload-memory", DEFAULT_LIMITS.upload_memory // MiB, "MiB that decoding one "
                "upload may take; larger images are refused" + _DEFAULT, type=positive),
    )),
)


_INDEXING = IndexOptions()  # the indexer's defaults, as its library callers get them

INDEXER = (
    Group("", settings=(
        Setting("folder", None, "a folder of images (recursive)", type=Path, nargs="?"),
        Setting("--dataset", None, "index a caption dataset instead of a folder",
                choices=DATASET_KINDS),
        Setting("--path", None, "the dataset's root (default for flickr8k: "
                "../shared/datasets/flickr8k; for tuxpaint: the Debian stamps)", type=Path),
        Setting("--split", None, "flickr8k split: train, dev or test"),
        Setting("--index", None, f"the index folder to update (default: {INDEXES}/NAME, NAME "
                "the folder's name or the dataset's, with its split: where the server looks)",
                type=Path),
        Setting("--model", DEFAULT_MODEL_DIR, "the exported model's folder" + _DEFAULT,
                type=Path),
        Setting("--dtype", _INDEXING.dtype, "how vectors are stored (default: as the index "
                "has them, else float32)", choices=("float32", "float16")),
        Setting("--rebuild", _INDEXING.rebuild, "re-embed everything (needed after changing "
                "the model); ids are kept", action="store_true"),
        Setting("--no-thumbnails", not _INDEXING.thumbnails, "make no thumbnails (the page "
                "then loads every original: docs/gallery-index.md)", action="store_true"),
        Setting("--no-map", not _INDEXING.map, "leave the gallery's map to the server, which "
                "lays it out when a page first asks (docs/gallery-index.md)",
                action="store_true"),
        Setting("--quiet", not _INDEXING.progress, "no progress bar", action="store_true"),
    )),
    Group("speed", "how the work is cut (docs/gallery-index.md)", settings=(
        Setting("--batch-size", _INDEXING.batch_size, "images per ONNX Runtime call"
                + _DEFAULT, type=positive),
        Setting("--chunk-size", _INDEXING.chunk_size, "images per saved chunk: at most this "
                "much work is lost on a crash" + _DEFAULT, type=positive),
        Setting("--workers", _INDEXING.workers, "image decoding processes" + _DEFAULT,
                type=int),
    )),
    Group("ray", "embedding on a Ray cluster (pip install '.[scale]'; docs/scale.md)",
          settings=(
        Setting("--ray", None, "embed on Ray: alone, RAY_ADDRESS's cluster or a local Ray "
                "started for this run; with an ADDRESS (head:6379), that cluster's",
                nargs="?", const="", metavar="ADDRESS"),
        Setting("--actors", None, "with --ray: embedding actors (default: one per CPU of the "
                "cluster)", type=positive),
    )),
    Group("search", "the server's search index, made now rather than at its first start",
          settings=(
        Setting("--search-index", False, "then build the faiss index the server will search "
                "with (34 min at 10M images on 2 cores: docs/scale.md)", action="store_true"),
        Setting("--caption-weight", DEFAULT_CAPTION_WEIGHT, "with --search-index: the "
                "server's --caption-weight" + _DEFAULT, type=non_negative),
    )),
)


def default_index(folder: Path | None, dataset: str | None, split: str | None) -> Path:
    """Where the indexer writes when not told: under INDEXES, named after the folder, or the
    dataset with its split (flickr8k-test); the server serves the one built last there."""
    if folder is not None:
        return INDEXES / (folder.resolve().name or "gallery")
    return INDEXES / "-".join(part for part in (dataset, split) if part)


def build_parser(groups: Sequence[Group], prog: str, description: str | None
                 ) -> argparse.ArgumentParser:
    """The command line of a settings table: one option per setting, in its group."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for group in groups:
        section: Any = parser.add_argument_group(group.title, group.description or None) \
            if group.title else parser
        exclusive = section.add_mutually_exclusive_group() \
            if any(s.exclusive for s in group.settings) else None
        for setting in group.settings:
            target = exclusive if setting.exclusive and exclusive is not None else section
            target.add_argument(setting.flag, **setting.options())
    return parser
