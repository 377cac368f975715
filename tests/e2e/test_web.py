"""The search page end to end: headless Chromium, the real server, the small real gallery.

Every test loads web/index.html from `python -m server` (or from disk) and checks what a user
would see in the DOM: the grid, the query text, the terms strip, the notices. The browser is
Debian's chromium driven by Playwright; nothing is downloaded (`make test-packages` installs it).

WORDPIX_SCREENSHOT=docs/screenshot.png writes the page at 1280x800 showing a real query.
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from server.serve.gallery import Gallery
from server.text import STOP_WORDS
from tests.conftest import REPO, free_port, start_server, stop_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# Chromium logs each refused WebSocket connection as a console error: expected while the
# server is down, so they are not the page's errors
EXPECTED_CONSOLE = re.compile(r"WebSocket connection to .* failed|ERR_CONNECTION_REFUSED")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="no /usr/bin/chromium: `make test-packages` installs it")
expect.set_options(timeout=15_000)

# The query language's cases, shared with the server's parser (tests/unit/test_query.py)
QUERY_CASES = json.loads((REPO / "tests" / "query_cases.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser) -> Page:
    """A fresh page at 1280x800; any script error or alert() on it fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    opened.on("console", lambda message: message.type == "error"
              and not EXPECTED_CONSOLE.search(message.text) and problems.append(message.text))
    opened.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"),
                                        dialog.dismiss()))
    yield opened
    context.close()
    assert not problems, problems


@pytest.fixture(scope="module")
def ids(sample_gallery) -> dict[str, int]:
    return {item.path.removesuffix(".jpg"): item.id
            for item in Gallery(sample_gallery.index).all_items()}


# ---------------------------------------------------------------------------- helpers


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    expect(page.locator("#grid")).to_have_attribute("data-q", "")
    expect(page.locator(".tile")).to_have_count(12)


def search(page: Page, text: str) -> None:
    page.fill("#q", text)
    page.press("#q", "Enter")
    shows(page, text)


def shows(page: Page, text: str) -> None:
    """Wait until the grid holds the results of exactly this query text."""
    expect(page.locator("#q")).to_have_value(text)
    expect(page.locator("#grid")).to_have_attribute("data-q", text)


def tile_ids(page: Page) -> list[int]:
    return [int(i) for i in page.locator(".tile").evaluate_all("ts => ts.map(t => t.dataset.id)")]


def scores(page: Page) -> list[float]:
    return [float(s) for s in page.locator(".tile .score").all_inner_texts()]


def tile(page: Page, image_id: int):
    return page.locator(f'.tile[data-id="{image_id}"]')


def terms(page: Page) -> list[str]:
    return page.locator("#terms .term .label").all_inner_texts()


# ---------------------------------------------------------------------------- tests


def test_before_any_query_the_page_shows_the_gallery_and_examples(page, server, ids):
    open_page(page, server.url)
    assert tile_ids(page) == list(range(1, 13))  # the gallery in id order: [IMG_n] is n-th
    refs = page.locator(".tile .ref").all_inner_texts()
    assert refs == [f"[IMG_{n}]" for n in range(1, 13)]
    assert tile(page, ids["cat"]).get_attribute("title") == "a brown cat looking at the camera"
    assert scores(page) == []
    expect(page.locator("#gallery-name")).to_contain_text("12 images")
    expect(page.locator("#connection")).to_contain_text("connected")
    chips = page.locator(".chip").all_inner_texts()
    assert "people+park" in chips and "beach+sunrise" in chips      # hello.examples
    assert "wall" in chips and "camera" in chips                      # hello.gallery_examples
    assert "happyness" not in chips  # a seed example this model cannot answer is left out
    # the images really load from the server
    page.wait_for_function("[...document.querySelectorAll('.tile img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")


def test_a_typed_query_puts_the_cat_first(page, server, ids):
    open_page(page, server.url)
    search(page, "cat")
    assert tile_ids(page)[0] == ids["cat"]
    assert "brown cat" in page.locator(".tile .caption").first.inner_text()
    found = scores(page)
    assert len(found) == 12 and found == sorted(found, reverse=True)
    expect(page.locator("#summary")).to_contain_text("12 images for cat")
    assert "cat" in page.locator("#nearest .word").first.inner_text()
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#corrections")).to_be_hidden()


def test_click_adds_an_image_and_shift_click_subtracts_one(page, server, ids):
    open_page(page, server.url)
    search(page, "grass")
    tile(page, ids["cat"]).click()
    shows(page, f"grass+[IMG_{ids['cat']}]")
    assert ids["cat"] not in tile_ids(page)  # an image in the query is left out of its results
    assert terms(page) == ["grass", f"[IMG_{ids['cat']}]"]
    thumbnail = page.locator("#terms .term.image img")
    assert thumbnail.get_attribute("src").endswith(f"/images/{ids['cat']}")

    tile(page, ids["moon"]).click(modifiers=["Shift"])
    shows(page, f"grass+[IMG_{ids['cat']}]-[IMG_{ids['moon']}]")
    assert ids["moon"] not in tile_ids(page) and len(tile_ids(page)) == 10
    subtracted = page.locator('#terms .term[data-sign="subtracted"] .label')
    expect(subtracted).to_have_text(f"[IMG_{ids['moon']}]")
    # the page says which key subtracts
    expect(page.locator(".hint")).to_contain_text("Shift+click to subtract")


def test_terms_strip_weights_flips_and_removes_terms(page, server, ids):
    open_page(page, server.url)
    cat = f"[IMG_{ids['cat']}]"
    search(page, f"grass+{cat}")
    image_term = page.locator("#terms .term").nth(1)
    image_term.locator(".heavier").click()
    shows(page, f"grass+2*{cat}")
    expect(image_term.locator(".value")).to_have_text("2×")
    image_term.locator(".lighter").click()
    image_term.locator(".lighter").click()
    shows(page, f"grass+0.5*{cat}")
    image_term.locator(".sign").click()
    shows(page, f"grass-0.5*{cat}")
    expect(page.locator("#terms .term").nth(1)).to_have_attribute("data-sign", "subtracted")

    page.locator("#terms .term").first.locator(".remove").click()  # only a subtraction left
    expect(page.locator("#q")).to_have_value(f"-0.5*{cat}")
    expect(page.locator("#error")).to_contain_text("at least one term to add")
    expect(page.locator("#grid")).to_have_class(re.compile(r"\bstale\b"))

    page.locator("#terms .term .remove").click()  # nothing left: back to the gallery
    expect(page.locator("#q")).to_have_value("")
    expect(page.locator("#grid")).to_have_attribute("data-q", "")
    expect(page.locator(".tile")).to_have_count(12)
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#terms .term")).to_have_count(0)


def test_the_text_box_is_the_query_and_the_strip_follows_it(page, server):
    open_page(page, server.url)
    page.fill("#q", "2*beach + [IMG_3] - sunrise")  # typed, not yet run
    assert terms(page) == ["beach", "[IMG_3]", "sunrise"]
    assert page.locator("#terms .value").all_inner_texts() == ["2×", "1×", "1×"]
    expect(page.locator("#grid")).to_have_attribute("data-q", "")  # Enter runs it, not typing
    page.press("#q", "Enter")
    shows(page, "2*beach + [IMG_3] - sunrise")


def test_chips_and_nearest_words_run_queries(page, server):
    open_page(page, server.url)
    page.locator(".chip", has_text=re.compile(r"^people\+park$")).click()
    shows(page, "people+park")
    words = page.locator("#nearest .word")
    new = [w for w in words.evaluate_all("ws => ws.map(w => w.dataset.word)")
           if w not in ("people", "park")]
    assert len(new) >= 2
    page.locator(f'#nearest .word[data-word="{new[0]}"]').click()
    shows(page, f"people+park+{new[0]}")
    later = [w for w in words.evaluate_all("ws => ws.map(w => w.dataset.word)")
             if w not in ("people", "park", new[0])]
    page.locator(f'#nearest .word[data-word="{later[0]}"]').click(modifiers=["Shift"])
    shows(page, f"people+park+{new[0]}-{later[0]}")


def test_keyboard_only(page, server, ids):
    open_page(page, server.url)
    expect(page.locator("#q")).to_be_focused()  # the query box has the focus from the start
    page.locator(".tile").first.focus()
    page.keyboard.press("/")                     # and "/" brings it back
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.type("coins")
    page.keyboard.press("Enter")
    shows(page, "coins")
    first = tile_ids(page)[0]
    page.locator(".tile").first.focus()
    page.keyboard.press("Enter")
    shows(page, f"coins+[IMG_{first}]")
    second = tile_ids(page)[0]
    page.locator(".tile").first.focus()
    page.keyboard.press("-")
    shows(page, f"coins+[IMG_{first}]-[IMG_{second}]")


def test_uploading_with_the_file_picker(page, server, sample_gallery, ids):
    open_page(page, server.url)
    page.set_input_files("#file", sample_gallery.photos["cat"])
    shows(page, "[UPLOAD_1]")
    assert tile_ids(page)[0] == ids["cat"]  # the same photo is its own nearest neighbour
    found = scores(page)
    assert found == sorted(found, reverse=True) and found[0] > found[1]
    assert page.locator("#terms .term.upload img").get_attribute("src").startswith("blob:")
    # a second upload adds to the query
    page.set_input_files("#file", sample_gallery.photos["grass"])
    shows(page, "[UPLOAD_1]+[UPLOAD_2]")
    assert terms(page) == ["[UPLOAD_1]", "[UPLOAD_2]"]


def test_uploading_by_drag_and_drop(page, server, sample_gallery, ids):
    open_page(page, server.url)
    search(page, "cup")
    photo = base64.b64encode(sample_gallery.photos["coffee"].read_bytes()).decode()
    page.evaluate("""(photo) => {
        const bytes = Uint8Array.from(atob(photo), (c) => c.charCodeAt(0));
        const data = new DataTransfer();
        data.items.add(new File([bytes], "coffee.jpg", { type: "image/jpeg" }));
        const grid = document.getElementById("grid");
        for (const type of ["dragenter", "dragover"]) {
            grid.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true,
                                                     dataTransfer: data }));
        }
        window.overlayShown = !document.getElementById("drop").hidden;
        grid.dispatchEvent(new DragEvent("drop", { bubbles: true, cancelable: true,
                                                   dataTransfer: data }));
    }""", photo)
    assert page.evaluate("window.overlayShown")
    shows(page, "cup+[UPLOAD_1]")
    expect(page.locator("#drop")).to_be_hidden()
    assert tile_ids(page)[0] == ids["coffee"]


def test_a_broken_upload_is_an_inline_error(page, server):
    open_page(page, server.url)
    page.set_input_files("#file", files=[{"name": "photo.png", "mimeType": "image/png",
                                          "buffer": b"not a png at all"}])
    expect(page.locator("#error")).to_contain_text("not a usable image")
    expect(page.locator("#q")).to_have_value("")
    search(page, "cat")  # and the page goes on working
    expect(page.locator("#error")).to_be_hidden()


def test_a_misspelling_shows_its_correction(page, server, ids):
    open_page(page, server.url)
    search(page, "coffe")
    corrections = page.locator("#corrections")
    expect(corrections).to_be_visible()
    expect(corrections).to_contain_text("coffe → coffee")
    assert tile_ids(page)[0] == ids["coffee"]
    corrections.get_by_role("button").click()  # put the correction in the text
    shows(page, "coffee")
    expect(corrections).to_be_hidden()


def test_an_unknown_word_is_an_inline_error(page, server):
    open_page(page, server.url)
    search(page, "cat")
    page.fill("#q", "qzxv")
    page.press("#q", "Enter")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("unknown word 'qzxv'")
    expect(page.locator("#grid")).to_have_attribute("data-q", "cat")  # the old results, dimmed
    expect(page.locator("#grid")).to_have_class(re.compile(r"\bstale\b"))
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    search(page, "grass")
    expect(error).to_be_hidden()


def test_replies_to_superseded_queries_are_ignored(page, server, ids):
    # hold back the reply to "cat" so that it arrives after the one to "grass"
    page.add_init_script("""
        const Native = window.WebSocket;
        window.lateReplies = 0;
        window.WebSocket = class extends Native {
            addEventListener(type, listener, ...rest) {
                if (type !== "message") return super.addEventListener(type, listener, ...rest);
                return super.addEventListener(type, (event) => {
                    if (typeof event.data === "string" && JSON.parse(event.data).q === "cat") {
                        setTimeout(() => { window.lateReplies += 1; listener(event); }, 500);
                    } else {
                        listener(event);
                    }
                }, ...rest);
            }
        };
    """)
    open_page(page, server.url)
    page.fill("#q", "cat")
    page.press("#q", "Enter")
    page.fill("#q", "grass")
    page.press("#q", "Enter")
    shows(page, "grass")
    page.wait_for_function("window.lateReplies === 1")
    expect(page.locator("#grid")).to_have_attribute("data-q", "grass")
    assert tile_ids(page)[0] == ids["grass"]


def test_the_page_opened_from_disk(page, server, ids):
    url = (REPO / "web" / "index.html").as_uri() + f"?server=localhost:{server.port}"
    open_page(page, url)
    expect(page.locator("#server-address")).to_have_value(f"localhost:{server.port}")
    page.wait_for_function("[...document.querySelectorAll('.tile img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    search(page, "cat")
    assert tile_ids(page)[0] == ids["cat"]
    assert page.locator(".tile img").first.get_attribute("src") == \
        f"http://localhost:{server.port}/images/{ids['cat']}"


def test_a_lost_connection_shows_and_recovers(page, sample_gallery, tmp_path, ids):
    """Its own server: stopped under the page, then started again on the same port."""
    first = start_server(sample_gallery.index, tmp_path / "first.log")
    try:
        open_page(page, first.url)
        page.set_input_files("#file", sample_gallery.photos["cat"])
        shows(page, "[UPLOAD_1]")
    finally:
        stop_server(first)
    status = page.locator("#connection")
    expect(status).to_have_attribute("data-state", "disconnected")
    expect(status).to_contain_text("disconnected")
    # a change while disconnected waits, and runs once the server is back
    tile(page, ids["grass"]).click()
    expect(page.locator("#q")).to_have_value(f"[UPLOAD_1]+[IMG_{ids['grass']}]")
    expect(page.locator("#summary")).to_contain_text("waiting for the server")

    second = start_server(sample_gallery.index, tmp_path / "second.log", port=first.port)
    try:
        expect(status).to_have_attribute("data-state", "connected")
        expect(status).to_have_text("connected")
        # the photo went up again on the new connection, and the last query ran
        shows(page, f"[UPLOAD_1]+[IMG_{ids['grass']}]")
        expect(page.locator("#error")).to_be_hidden()
        assert tile_ids(page)[0] == ids["cat"]
        assert ids["grass"] not in tile_ids(page)
    finally:
        stop_server(second)
    assert "Traceback" not in second.log()


def test_the_page_reads_queries_as_the_server_does(page):
    """The page's own parseQuery and formatQuery on every case of tests/query_cases.json.

    The page is opened from disk, its server a closed port: the parser needs no server, and its
    limits are then its fallbacks, the server's MAX_QUERY_CHARS and MAX_TERMS.
    """
    page.goto((REPO / "web" / "index.html").as_uri() + f"?server=localhost:{free_port()}")
    page.wait_for_function("window.wordpixQuery !== undefined")
    readings = page.evaluate("""(texts) => texts.map((text) => {
        const { parse, format } = window.wordpixQuery;
        const fields = ({ sign, weight, kind, words, ref }) =>
            kind === "words" ? { sign, weight, kind, words } : { sign, weight, kind, ref };
        const { terms, error } = parse(text);
        const printed = format(terms);
        return { terms: terms.map(fields), error, printed,
                 reread: format(parse(printed).terms) };
    })""", [case["text"] for case in QUERY_CASES])
    wrong = []
    for case, read in zip(QUERY_CASES, readings, strict=True):
        if "error" in case:
            if case["error"] not in (read["error"] or ""):
                wrong.append((case["name"], f"error {read['error']!r}"))
        elif read["error"] is not None or read["terms"] != case["terms"]:
            wrong.append((case["name"], read["error"] or read["terms"]))
        elif not read["printed"] == read["reread"] == case["printed"]:
            wrong.append((case["name"], f"printed {read['printed']!r}, then {read['reread']!r}"))
    assert not wrong
    # the page's copy of the stop words, which decide what a term's words are
    assert sorted(page.evaluate("[...window.wordpixQuery.stopWords]")) == sorted(STOP_WORDS)


def test_screenshot(page, server, ids):
    """A real query mixing words and an image; saved when WORDPIX_SCREENSHOT names a file."""
    open_page(page, server.url)
    search(page, "grass")
    tile(page, ids["camera"]).click()
    shows(page, f"grass+[IMG_{ids['camera']}]")
    page.wait_for_function("[...document.querySelectorAll('img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    target = os.environ.get("WORDPIX_SCREENSHOT")
    if target:
        page.mouse.move(1270, 790)  # no hover highlight on the tile that was clicked
        page.screenshot(path=str(REPO / target))
