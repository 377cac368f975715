"""A personal photo library in the page, in real Chromium: filters, the relevance line, and the
bytes a page of results moves. (Apart from test_photo_library.py: Playwright's event loop, once
the browser runs, would be in the way of the asyncio tests that follow that file.)"""

from __future__ import annotations

import re

import pytest

from server.samples import write_large_photos
from tests.conftest import start_server, stop_server
from tests.e2e.test_photo_library import index, items_by_path, make_library


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("library")
    make_library(root / "photos")
    index(root / "photos", root / "index")
    return root / "photos", root / "index"


@pytest.fixture(scope="module")
def library_server(library, tmp_path_factory):
    running = start_server(library[1], tmp_path_factory.mktemp("log") / "library.log")
    yield running
    stop_server(running)

def test_the_page_filters_by_folder_and_day_and_draws_the_line(library, library_server, page):
    from playwright.sync_api import expect

    from tests.e2e.pages import images_loaded, open_page, search, tile_ids

    by_id = {item.id: path for path, item in items_by_path(library[1]).items()}
    open_page(page, library_server.url, count=15)
    expect(page.locator("#filters")).to_be_visible()  # the photos have dates
    page.click("#filters summary")  # folded until opened
    search(page, "cat")
    line = page.locator(".relevance-line")
    expect(line).to_have_count(1)
    expect(line).to_contain_text(re.compile(r"\d+ close match(es)?, then weaker ones"))
    expect(page.locator("#summary")).to_contain_text("close match")
    # the folder field offers the library's folders, as the hello lists them
    offered = page.locator("#folder-list option").evaluate_all("os => os.map(o => o.value)")
    assert "phone" in offered and set(offered) == \
        {path[:end] for path in by_id.values() for end, char in enumerate(path) if char == "/"}
    expect(page.locator("#filter-folder")).to_have_attribute("list", "folder-list")
    page.fill("#filter-folder", "phone")
    page.press("#filter-folder", "Enter")
    expect(page.locator(".tile")).to_have_count(3)
    assert {by_id[i] for i in tile_ids(page)} == \
        {"phone/photo-000.jpg", "phone/photo-001.jpg", "phone/cat.heic"}
    page.fill("#filter-from", "2019-07-01")
    page.fill("#filter-to", "2019-07-31")
    page.locator("#filter-to").dispatch_event("change")
    expect(page.locator(".tile")).to_have_count(1)
    assert [by_id[i] for i in tile_ids(page)] == ["phone/photo-001.jpg"]
    images_loaded(page, ".tile img")
    page.click("#filter-clear")
    expect(page.locator(".tile")).to_have_count(15)


def test_filters_travel_in_the_address(library, library_server, page):
    from playwright.sync_api import expect

    from tests.e2e.pages import tile_ids

    by_id = {item.id: path for path, item in items_by_path(library[1]).items()}
    page.goto(library_server.url + "#q=cat&folder=phone&order=date")
    expect(page.locator("#grid")).to_have_attribute("data-q", "cat")
    expect(page.locator("#filter-folder")).to_have_value("phone")
    expect(page.locator("#filter-order")).to_have_value("date")
    expect(page.locator(".tile")).to_have_count(3)
    assert {by_id[i] for i in tile_ids(page)} == \
        {"phone/photo-000.jpg", "phone/photo-001.jpg", "phone/cat.heic"}
    page.fill("#filter-to", "2019-07-31")  # only the photo its EXIF dates to 2019
    page.locator("#filter-to").dispatch_event("change")
    expect(page.locator(".tile")).to_have_count(1)
    assert "to=2019-07-31" in page.url and "folder=phone" in page.url
    page.reload()  # a reload keeps them
    expect(page.locator("#filter-to")).to_have_value("2019-07-31")
    expect(page.locator(".tile")).to_have_count(1)


@pytest.fixture(scope="module")
def phone_photos(tmp_path_factory):
    """30 photos of 12 megapixels, 3-5 MB each, indexed, served."""
    root = tmp_path_factory.mktemp("phone")
    write_large_photos(root / "photos", 30)
    index(root / "photos", root / "index")
    running = start_server(root / "index", root / "server.log")
    yield root / "photos", running
    stop_server(running)


def test_a_page_of_results_moves_thumbnails_not_originals(phone_photos, page):
    from tests.e2e.pages import images_loaded, open_page, search

    folder, server = phone_photos
    open_page(page, server.url, count=24)
    search(page, "man")
    images_loaded(page, ".tile img")
    received = page.evaluate("""() => performance.getEntriesByType("resource")
        .filter(e => e.initiatorType === "img" && e.name.includes("/thumbs/"))
        .reduce((sum, e) => sum + e.transferSize, 0)""")
    originals = sum(p.stat().st_size for p in folder.glob("*.jpg")) * 24 / 30
    print(f"\n24 results: {received / 1e6:.2f} MB of thumbnails received "
          f"(the originals: {originals / 1e6:.0f} MB)")
    assert 0 < received <= 2e6
    assert page.locator(".tile img").evaluate_all(
        "imgs => imgs.every(i => i.src.includes('/thumbs/'))")


@pytest.fixture(scope="module")
def duplicates_server(tmp_path_factory):
    """Three dev photos with their planted copies, among ten others, indexed, served."""
    from tests.e2e.test_duplicates import planted_library

    root = tmp_path_factory.mktemp("duplicates")
    planted = planted_library(root / "photos", originals=3, others=10)
    index(root / "photos", root / "index")
    running = start_server(root / "index", root / "server.log")
    yield planted, running
    stop_server(running)


def test_the_page_lists_near_duplicates_and_opens_one(duplicates_server, page):
    from playwright.sync_api import expect

    from tests.e2e.pages import images_loaded, open_page

    planted, server = duplicates_server
    open_page(page, server.url, count=min(24, 13 + len(planted)))
    page.click("#duplicates")
    heads = page.locator(".group-head")
    expect(heads).to_have_count(3)
    expect(heads.first).to_contain_text("near-identical photos")
    expect(page.locator("#summary")).to_contain_text("3 groups of near duplicates")
    expect(page.locator(".in-group .tile")).to_have_count(3 * 5)  # each original, 4 copies
    images_loaded(page, ".tile img")
    page.locator(".in-group .tile").first.click()
    expect(page.locator("#preview")).to_be_visible()
