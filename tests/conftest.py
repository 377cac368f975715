"""Fixtures shared by the end-to-end tests: a small real gallery, indexed, and a real server."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from server.samples import write_sample_gallery
from server.serve.stress.common import free_port, launch_server, stop_process

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
    return RunningServer(launch_server(index, log_path, port, flags, timeout), port, log_path)


def stop_server(server: RunningServer) -> None:
    stop_process(server.process)


@pytest.fixture(scope="module")
def server(sample_gallery, tmp_path_factory) -> Iterator[RunningServer]:
    running = start_server(sample_gallery.index, tmp_path_factory.mktemp("log") / "server.log")
    yield running
    stop_server(running)
