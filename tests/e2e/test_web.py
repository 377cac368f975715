"""The search page end to end: headless Chromium, the real server, the small real gallery.

Every test loads web/index.html from `python -m server` (or from disk) and checks what a user
would see in the DOM: the grid, the query text, the terms strip, the notices. The browser is
Debian's chromium driven by Playwright; nothing is downloaded (`make test-packages` installs it).
The preview, history, phones and galleries have their own files: test_web_*.py.
"""

from __future__ import annotations

import base64
import os
import re

from playwright.sync_api import expect

from tests.conftest import DESKTOP, PHONE, REPO, start_server, stop_server
from tests.e2e.pages import (
    images_loaded,
    open_page,
    open_preview,
    search,
    shows,
    terms,
    tile,
    tile_ids,
)
from tests.e2e.pages import scores as tile_scores

# ---------------------------------------------------------------------------- tests


def test_before_any_query_the_page_shows_the_gallery_and_examples(page, server, ids):
    open_page(page, server.url)
    assert tile_ids(page) == list(range(1, 13))  # the gallery in id order: [IMG_n] is n-th
    refs = page.locator(".tile .ref").all_inner_texts()
    assert refs == [f"[IMG_{n}]" for n in range(1, 13)]
    assert tile(page, ids["cat"]).get_attribute("title") == "a brown cat looking at the camera"
    assert tile_scores(page) == []
    expect(page.locator("#gallery-name")).to_have_text("Photos · 12 images")  # readable
    expect(page.locator("#connection")).to_contain_text("connected")
    tries = page.locator(".chip-group", has_text="Try").locator(".chip").all_inner_texts()
    words = page.locator(".chip-group", has_text="In this gallery").locator(".chip")
    assert tries[:3] == ["flag", "wall", "wall+brick"]  # examples that work on these photos
    assert "people+park" not in tries and "beach+sunrise" not in tries  # none here
    assert words.all_inner_texts()[:3] == ["wall", "brick", "brown"]
    # photos fill their tiles (cropped); the images really load from the server
    assert tile(page, ids["cat"]).locator("img").evaluate(
        "i => getComputedStyle(i).objectFit") == "cover"
    images_loaded(page, ".tile img")


def test_a_typed_query_puts_the_cat_first(page, server, ids):
    open_page(page, server.url)
    search(page, "cat")
    assert tile_ids(page)[0] == ids["cat"]
    assert "brown cat" in page.locator(".tile .caption").first.inner_text()
    found = tile_scores(page)
    assert len(found) == 12 and found == sorted(found, reverse=True)
    expect(page.locator("#summary")).to_contain_text("12 images (1 close match) for cat")
    assert "cat" in page.locator("#nearest .word").first.inner_text()
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#corrections")).to_be_hidden()


def test_a_query_of_several_terms_is_explained(page, server, ids):
    open_page(page, server.url)
    search(page, "coffee+cat-yellow")
    explained = page.locator("#explain-terms li")
    expect(explained).to_have_count(3)
    expect(explained.nth(0)).to_contain_text("coffee brought: coffee")
    expect(explained.nth(2)).to_contain_text(re.compile(r"-yellow took away: yellow"))
    labels = page.locator(".tile .best-term").all_inner_texts()
    assert len(labels) == 12 and set(labels) <= {"≈ coffee", "≈ cat"}
    assert tile(page, ids["cat"]).locator(".best-term").inner_text() == "≈ cat"
    assert tile(page, ids["coffee"]).locator(".best-term").inner_text() == "≈ coffee"
    search(page, "cat")  # one term: nothing to explain
    expect(page.locator("#explain")).to_be_hidden()
    expect(page.locator(".tile .best-term")).to_have_count(0)


def test_the_preview_adds_an_image_and_shift_click_subtracts_one(page, server, ids):
    open_page(page, server.url)
    search(page, "grass")
    tile(page, ids["cat"]).click()  # a click opens the preview: nothing changes yet
    expect(page.locator("#preview")).to_be_visible()
    expect(page.locator("#q")).to_have_value("grass")
    page.locator("#preview-add").click()
    shows(page, f"grass+[IMG_{ids['cat']}]")
    assert ids["cat"] not in tile_ids(page)  # an image in the query is left out of its results
    assert terms(page) == ["grass", f"[IMG_{ids['cat']}]"]
    thumbnail = page.locator("#terms .term.image img")
    assert re.search(r"/thumbs/[0-9a-f]{20}\.jpg$", thumbnail.get_attribute("src") or "")

    tile(page, ids["moon"]).click(modifiers=["Shift"])  # the quick path: no preview
    shows(page, f"grass+[IMG_{ids['cat']}]-[IMG_{ids['moon']}]")
    expect(page.locator("#preview")).to_be_hidden()
    assert ids["moon"] not in tile_ids(page) and len(tile_ids(page)) == 10
    subtracted = page.locator('#terms .term[data-sign="subtracted"] .label')
    expect(subtracted).to_have_text(f"[IMG_{ids['moon']}]")
    # the page says which key subtracts
    expect(page.locator(".hint.for-mouse")).to_contain_text("Shift+click subtracts it at once")


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
    page.fill("#q", "2*beach + [IMG_3] - sunrise")  # typed, not yet run: read by the server
    expect(page.locator("#terms .term .label")).to_have_text(["beach", "[IMG_3]", "sunrise"])
    expect(page.locator("#terms .value")).to_have_text(["2×", "1×", "1×"])
    expect(page.locator("#grid")).to_have_attribute("data-q", "")  # Enter runs it, not typing
    page.press("#q", "Enter")
    shows(page, "2*beach + [IMG_3] - sunrise")
    page.fill("#q", "sand + [img_")  # half typed: the pieces so far, the last as typed
    expect(page.locator("#terms .term .label")).to_have_text(["sand", "[img_"])
    page.locator("#terms .term").first.locator(".heavier").click()  # edits print it back
    expect(page.locator("#q")).to_have_value("2*sand+[img_")
    expect(page.locator("#error")).to_contain_text("not an image reference")


def test_chips_and_nearest_words_run_queries(page, server):
    open_page(page, server.url)
    page.locator(".chip", has_text=re.compile(r"^wall\+brick$")).click()
    shows(page, "wall+brick")
    words = page.locator("#nearest .word")
    new = [w for w in words.evaluate_all("ws => ws.map(w => w.dataset.word)")
           if w not in ("wall", "brick")]
    assert len(new) >= 2
    page.locator(f'#nearest .word[data-word="{new[0]}"]').click()
    shows(page, f"wall+brick+{new[0]}")
    expect(page.locator("#toast")).to_contain_text(f"Added {new[0]}")  # said where one looks
    later = [w for w in words.evaluate_all("ws => ws.map(w => w.dataset.word)")
             if w not in ("wall", "brick", new[0])]
    page.locator(f'#nearest .word[data-word="{later[0]}"]').click(modifiers=["Shift"])
    shows(page, f"wall+brick+{new[0]}-{later[0]}")


def test_uploading_with_the_file_picker(page, server, sample_gallery, ids):
    open_page(page, server.url)
    page.set_input_files("#file", sample_gallery.photos["cat"])
    shows(page, "[UPLOAD_1]")
    assert tile_ids(page)[0] == ids["cat"]  # the same photo is its own nearest neighbour
    found = tile_scores(page)
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
                    const reply = typeof event.data === "string" ? JSON.parse(event.data) : {};
                    if (reply.type === "results" && reply.q === "cat") {
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
    # the grid shows thumbnails, from the server the page was pointed at
    assert re.fullmatch(rf"http://localhost:{server.port}/thumbs/[0-9a-f]{{20}}\.jpg",
                        page.locator(".tile img").first.get_attribute("src") or "")


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
    # the results no longer look current
    expect(page.locator("#grid")).to_have_class(re.compile(r"\bstale\b"))
    # a change while disconnected waits, and runs once the server is back
    tile(page, ids["grass"]).click()
    expect(page.locator("#preview-words")).to_contain_text("waiting for the server")
    page.locator("#preview-add").click()
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


def test_screenshots(new_page, server, ids):
    """Real queries on a desktop, in the preview, on the map and on a phone; saved as
    docs/screenshot.png, screenshot-preview.png, screenshot-map.png and screenshot-phone.png
    when WORDPIX_SCREENSHOTS names a folder."""
    folder = os.environ.get("WORDPIX_SCREENSHOTS")
    query = f"grass+[IMG_{ids['camera']}]"
    desktop = new_page(**DESKTOP)
    open_page(desktop, server.url)
    search(desktop, query)
    images_loaded(desktop, "#grid img, #terms img")
    desktop.mouse.move(1270, 790)  # no hover highlight
    if folder:
        desktop.screenshot(path=str(REPO / folder / "screenshot.png"))
    open_preview(desktop, ids["cat"])
    images_loaded(desktop, "#preview img")
    if folder:
        desktop.screenshot(path=str(REPO / folder / "screenshot-preview.png"))
    desktop.keyboard.press("Escape")
    desktop.locator("#map-toggle").click()  # the query's results highlighted on the map
    map_canvas = desktop.locator("#map-canvas")
    expect(map_canvas).to_have_attribute("data-thumbs", "12")  # every thumbnail drawn
    expect(map_canvas).to_have_attribute("data-marks", "1")  # and the query's place
    desktop.mouse.move(1270, 790)
    if folder:
        desktop.screenshot(path=str(REPO / folder / "screenshot-map.png"))
    phone = new_page(**PHONE)
    open_page(phone, server.url)
    search(phone, query)
    images_loaded(phone, "#grid li:nth-child(-n+4) img, #terms img")
    if folder:
        phone.screenshot(path=str(REPO / folder / "screenshot-phone.png"))
