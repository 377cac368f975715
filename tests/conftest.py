"""Fixtures shared by the end-to-end tests: a small real gallery, indexed, and a real server."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from server.samples import write_sample_gallery

REPO = Path(__file__).resolve().parents[1]

@dataclass
class SampleGallery:
    folder: Path
    index: Path
    photos: dict[str, Path]


@pytest.fixture(scope="session")
def sample_gallery(tmp_path_factory) -> SampleGallery:
    from server.artifacts import load_word_space
    from server.serve.encoder import ImageEncoder
    from server.serve.indexer import IndexOptions, build_index, scan_folder

    root = tmp_path_factory.mktemp("gallery")
    photos = write_sample_gallery(root / "photos")
    index = root / "index"
    build_index(scan_folder(root / "photos"), root / "photos", index, ImageEncoder(),
                words=load_word_space(), options=IndexOptions(progress=False))
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
                 timeout: float = 120, flags: Sequence[str] = ()) -> RunningServer:
    """`python -m server` as a user runs it (with `flags`), in its own process; returns once it
    listens."""
    port = port or free_port()
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "server", "--port", str(port), "--index", str(index), *flags],
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
