"""`make demo`: index the default gallery with the shipped model and serve it on port 9998.

    make demo                         # Tux Paint's stamps (installed with apt where possible),
                                      # else scikit-image's sample photos
    make demo GALLERY=~/Pictures      # any folder of images (captions: a .txt beside an image)
    make demo GALLERY=flickr8k        # the Flickr8k test split, where ../shared has it
    make demo PORT=8080

The index lives in runs/index/<gallery>; a second run only embeds what changed, so it starts in
seconds. Stop the server with Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from server.__main__ import run as serve
from server.artifacts import load_word_space
from server.datasets import SHARED_FLICKR8K, TUXPAINT_STAMPS, read_flickr8k, read_tuxpaint
from server.samples import write_sample_gallery
from server.serve.encoder import ImageEncoder
from server.serve.indexer import SourceImage, build_index, dataset_sources, scan_folder
from server.serve.settings import DATA_DIR, DEFAULT_PORT

RUNS = DATA_DIR  # the data directory (server/serve/settings.py)
TUXPAINT_PACKAGE = "tuxpaint-stamps-default"


def install_tuxpaint() -> bool:
    """Install the stamps with apt (no recommends) where this user can; True if they are there."""
    if TUXPAINT_STAMPS.is_dir():
        return True
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        print(f"(cannot install {TUXPAINT_PACKAGE}: needs apt-get as root; "
              f"try `sudo apt-get install --no-install-recommends {TUXPAINT_PACKAGE}`)")
        return False
    print(f"installing {TUXPAINT_PACKAGE} with apt-get (about 60 MB) ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt_get(*arguments: str) -> int:
        return subprocess.run([apt, *arguments], check=False, stdout=subprocess.DEVNULL,
                              env=env).returncode

    installed = apt_get("install", "-y", "--no-install-recommends", TUXPAINT_PACKAGE) == 0
    if not installed:  # the package lists may be missing on a fresh machine
        apt_get("update")
        apt_get("install", "-y", "--no-install-recommends", TUXPAINT_PACKAGE)
    return TUXPAINT_STAMPS.is_dir()


def choose_gallery(spec: str) -> tuple[str, Path, Iterable[SourceImage]]:
    """(name, root, images) for GALLERY: empty for the default, 'flickr8k', or a folder."""
    if spec == "flickr8k":
        if not SHARED_FLICKR8K.is_dir():
            sys.exit(f"error: GALLERY=flickr8k needs the dataset at {SHARED_FLICKR8K}")
        return ("flickr8k-test", *dataset_sources(read_flickr8k(SHARED_FLICKR8K, "test")))
    if spec:
        folder = Path(spec).expanduser().resolve()
        if not folder.is_dir():
            sys.exit(f"error: GALLERY={spec} is not a folder")
        return folder.name or "gallery", folder, scan_folder(folder)
    if install_tuxpaint():
        return ("tuxpaint", *dataset_sources(read_tuxpaint()))
    print("falling back to scikit-image's sample photos")
    folder = RUNS / "galleries" / "skimage"
    if not folder.is_dir():  # written once: rewriting would make every run re-embed them
        try:
            write_sample_gallery(folder)
        except ImportError as error:
            sys.exit(f"error: no Tux Paint stamps, and {error}; or give GALLERY=DIR")
    return "skimage", folder.resolve(), scan_folder(folder)


def run_demo(gallery: str = "", port: int = DEFAULT_PORT) -> None:
    """Index the chosen gallery (only what changed since the last run), then serve it here."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    name, root, sources = choose_gallery(gallery)
    index = RUNS / "index" / name
    print(f"indexing {name} into {index} ...")
    report = build_index(sources, root, index, ImageEncoder(), words=load_word_space())
    print(report.summary())
    print(f"\nopen http://localhost:{port}/  (or web/index.html?server=localhost:"
          f"{port} from disk); Ctrl-C stops the server\n", flush=True)
    serve(["--port", str(port), "--index", str(index)])  # in this process: no re-import
