"""Fixtures shared by the end-to-end tests: a small real gallery, indexed, and a real server."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from server.samples import write_sample_gallery
from tests.stress.common import free_port, launch_server, stop_process

REPO = Path(__file__).resolve().parents[1]

@dataclass
class SampleGallery:
    folder: Path
    index: Path
    photos: dict[str, Path]


@pytest.fixture(scope="session")
def sample_gallery(tmp_path_factory) -> SampleGallery:
    from server.serve.indexer import scan_folder

    root = tmp_path_factory.mktemp("gallery")
    photos = write_sample_gallery(root / "photos")
    index = root / "index"
    _index(scan_folder(root / "photos"), root / "photos", index)
    return SampleGallery(root / "photos", index, photos)


# Tux Paint stamps whose captions say `called`, `one`, `two`, `people` (and a few cars): clip
# art with transparency, as the demo's gallery, in a fifth of its indexing time
TUXPAINT_PART = ("vehicles", "plants", "symbols/money", "symbols/math", "space/planets",
                 "people", "town/roadsigns")


@pytest.fixture(scope="session")
def tuxpaint_index(tmp_path_factory) -> Path:
    from server.datasets import TUXPAINT_STAMPS, read_tuxpaint
    from server.serve.indexer import dataset_sources

    if not TUXPAINT_STAMPS.is_dir():
        pytest.skip("no Tux Paint stamps: `make test-packages` installs them")
    part = [record for record in read_tuxpaint() if any(
        record.image.relative_to(TUXPAINT_STAMPS).as_posix().startswith(f"{folder}/")
        for folder in TUXPAINT_PART)]
    index = tmp_path_factory.mktemp("tuxpaint") / "tuxpaint"
    _index(dataset_sources(part)[1], TUXPAINT_STAMPS, index)
    return index


def _index(sources: Iterable, root: Path, index: Path) -> None:
    from server.artifacts import load_word_space
    from server.serve.encoder import ImageEncoder
    from server.serve.indexer import IndexOptions, build_index

    build_index(sources, root, index, ImageEncoder(), words=load_word_space(),
                options=IndexOptions(progress=False))


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


def page_key(server: RunningServer, web: Path = REPO / "web") -> str:
    """The key the server wrote for the page from disk (web/keys/<port>.js)."""
    script = (web / "keys" / f"{server.port}.js").read_text()
    found = re.search(r'= "([^"]+)";', script)
    assert found, script
    return found.group(1)


def start_server(index: Path | None, log_path: Path, port: int | None = None,
                 timeout: float = 120, flags: Sequence[str] = (), cwd: Path = REPO
                 ) -> RunningServer:
    """`python -m server` as a user runs it (with `flags`), in its own process; returns once it
    listens. Without `index`, the server chooses (the index built last under `cwd`/runs/index);
    this checkout's code runs wherever `cwd` is."""
    port = port or free_port()
    return RunningServer(launch_server(index, log_path, port, flags, timeout, cwd), port,
                         log_path)


def stop_server(server: RunningServer) -> None:
    stop_process(server.process)


@pytest.fixture(scope="module")
def server(sample_gallery, tmp_path_factory) -> Iterator[RunningServer]:
    running = start_server(sample_gallery.index, tmp_path_factory.mktemp("log") / "server.log")
    yield running
    stop_server(running)


ACCESS_TOKEN = "a-test-token_0123456789~abcdef"
GUARDED_CAP = 16  # connections an address may hold: what waits out a pause is bounded by it


@pytest.fixture(scope="module")
def guarded_server(sample_gallery, tmp_path_factory) -> Iterator[RunningServer]:
    """The sample gallery behind the access token ACCESS_TOKEN, which its log must never hold."""
    running = start_server(sample_gallery.index, tmp_path_factory.mktemp("log") / "guarded.log",
                           flags=["--token", ACCESS_TOKEN,
                                  "--max-connections-per-address", str(GUARDED_CAP)])
    yield running
    stop_server(running)
    assert "Traceback" not in running.log()
    assert ACCESS_TOKEN not in running.log()


@pytest.fixture(scope="module")
def tuxpaint_server(tuxpaint_index, tmp_path_factory) -> Iterator[RunningServer]:
    running = start_server(tuxpaint_index, tmp_path_factory.mktemp("log") / "tuxpaint.log")
    yield running
    stop_server(running)


@pytest.fixture(scope="session")
def ids(sample_gallery) -> dict[str, int]:
    """The sample photos' gallery ids by name ("cat": 2)."""
    from server.serve.gallery import Gallery

    return {item.path.removesuffix(".jpg"): item.id
            for item in Gallery(sample_gallery.index).all_items()}


# ---------------------------------------------------------------------------- the browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# Chromium logs each refused WebSocket connection as a console error: expected while a server
# is down, so they are not the page's errors; nor is the 401 of a server that wants its token
EXPECTED_CONSOLE = re.compile(r"WebSocket connection to .* failed|ERR_CONNECTION_REFUSED|"
                              r"the server responded with a status of 401")
# The page from disk looks for the page key of the server it connects to (web/keys/<port>.js):
# none while no server runs on that port
MISSING_KEY = re.compile(r"/web/keys/\d+\.js")


def expected_error(message) -> bool:
    """Whether a console error of the page is one of those expected (above)."""
    return bool(EXPECTED_CONSOLE.search(message.text) or (
        "ERR_FILE_NOT_FOUND" in message.text and MISSING_KEY.search(message.location["url"])))


DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, driven by Playwright (which downloads nothing)."""
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: `make test-packages` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser):
    """Pages in fresh contexts (another browser, as far as a page can tell); any script error
    or alert() on one fails the test."""
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
    contexts, problems = [], []

    def make(**options):
        context = browser.new_context(**(options or DESKTOP))
        contexts.append(context)
        opened = context.new_page()
        def console(message) -> None:
            if message.type == "error" and not expected_error(message):
                problems.append(message.text)

        def dialog(shown) -> None:
            problems.append(f"dialog: {shown.message}")
            shown.dismiss()

        opened.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
        opened.on("console", console)
        opened.on("dialog", dialog)
        return opened

    yield make
    for context in contexts:
        context.close()
    assert not problems, problems


@pytest.fixture
def page(new_page):
    """A desktop page: 1280x800."""
    return new_page(**DESKTOP)


@pytest.fixture
def phone(new_page):
    """A phone's page: 390x844, touch, no hover."""
    return new_page(**PHONE)


@pytest.fixture(params=["desktop", "phone"])
def device(request, new_page):
    """The same test on a desktop page and on a phone's."""
    return new_page(**(DESKTOP if request.param == "desktop" else PHONE))
