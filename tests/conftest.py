"""Fixtures shared by the end-to-end tests: a small real gallery, indexed, and a real server."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as samples

REPO = Path(__file__).resolve().parents[1]

# scikit-image's sample photos, each with a caption as a person would write it
SAMPLE_PHOTOS = {
    "astronaut": (samples.astronaut, "an astronaut in a white suit in front of a flag"),
    "cat": (samples.chelsea, "a brown cat looking at the camera"),
    "coffee": (samples.coffee, "a cup of coffee on a saucer"),
    "rocket": (samples.rocket, "a rocket on the launch pad"),
    "camera": (samples.camera, "a man with a camera on a tripod in a field"),
    "coins": (samples.coins, "old coins on a table"),
    "moon": (samples.moon, "the surface of the moon"),
    "clock": (samples.clock, "a clock on a wall"),
    "hubble": (samples.hubble_deep_field, "stars and galaxies in the night sky"),
    "grass": (samples.grass, "green grass"),
    "brick": (samples.brick, "a brick wall"),
    "page": (samples.page, "a page of a book with text"),
}


def write_sample_gallery(folder: Path) -> dict[str, Path]:
    """JPEGs with a .txt caption beside each; returns name -> image path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (load, caption) in SAMPLE_PHOTOS.items():
        pixels = load()
        if pixels.dtype != np.uint8:
            pixels = (pixels * 255).astype(np.uint8)
        paths[name] = folder / f"{name}.jpg"
        Image.fromarray(pixels).convert("RGB").save(paths[name], quality=92)
        (folder / f"{name}.txt").write_text(caption + "\n")
    return paths


@dataclass
class SampleGallery:
    folder: Path
    index: Path
    photos: dict[str, Path]


@pytest.fixture(scope="session")
def sample_gallery(tmp_path_factory) -> SampleGallery:
    from server.encoder import ImageEncoder, load_words
    from server.indexer import build_index, scan_folder

    root = tmp_path_factory.mktemp("gallery")
    photos = write_sample_gallery(root / "photos")
    index = root / "index"
    build_index(scan_folder(root / "photos"), root / "photos", index, ImageEncoder(),
                words=load_words(), progress=False)
    return SampleGallery(root / "photos", index, photos)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class RunningServer:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}/"

    @property
    def ws_url(self) -> str:
        return f"ws://localhost:{self.port}/ws"

    def log(self) -> str:
        return self.log_path.read_text()


def start_server(index: Path, log_path: Path, port: int | None = None,
                 timeout: float = 120) -> RunningServer:
    """`python -m server` as a user runs it, in its own process; returns once it listens."""
    port = port or free_port()
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "--port", str(port), "--index", str(index)],
        cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + timeout
    while not re.search(r"serving \d+ images", log_path.read_text()):
        if process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log_path.read_text()}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the server did not start:\n{log_path.read_text()}")
        time.sleep(0.1)
    return RunningServer(process, port, log_path)


def stop_server(server: RunningServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture(scope="module")
def server(sample_gallery, tmp_path_factory) -> Iterator[RunningServer]:
    running = start_server(sample_gallery.index, tmp_path_factory.mktemp("log") / "server.log")
    yield running
    stop_server(running)
