"""The page's map of the gallery (web/map.js), in headless Chromium against the real server.

"Map" shows every image of the sample gallery at its place on the server's layout, drawn on a
canvas in the grid's place: the regions' words on it and, as a text alternative, as buttons
below it; a click on a word searches for it, a click on an image opens its preview, the
query's results are highlighted and its place marked, and a word placed from the toolbar is
marked where its images are without touching the query. Where things are drawn comes from the
page's read-only hook (`window.wordpixMap`) and the canvas's `data-*` counts; the regions and
the search results from the server itself.
"""

from __future__ import annotations

import math

import pytest
from playwright.sync_api import Page, expect

from server.serve.gallery import Gallery
from tests.conftest import REPO
from tests.e2e.pages import focused, open_page, search, shows
from tests.e2e.test_server import Client
from tests.e2e.test_web_phone import _small_targets


@pytest.fixture(scope="module")
def coarse_regions(server) -> list[str]:
    """The level-0 regions' words as the server sends them, largest first."""
    client = Client(server.ws_url)
    reply = client.send({"type": "map", "id": "test"})
    client.close()
    return [r["label"] for r in sorted((r for r in reply["regions"] if r["level"] == 0),
                                       key=lambda r: -r["count"])]


def open_map(page: Page) -> None:
    """Press "Map" and wait for the first frame with every image and its thumbnails."""
    toggle = page.locator("#map-toggle")
    if page.evaluate("matchMedia('(hover: none)').matches"):
        toggle.tap()
    else:
        toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    canvas = page.locator("#map-canvas")
    expect(canvas).to_be_visible()
    expect(canvas).to_have_attribute("data-drawn", "12")
    expect(canvas).to_have_attribute("data-thumbs", "12")  # few images: their thumbnails
    expect(page.locator("#grid")).to_be_hidden()  # the map stands in its place


def screen_of(page: Page, image_id: int) -> dict:
    return page.evaluate("(id) => wordpixMap.screenOf(id)", image_id)


def isolated(page: Page, ids: dict[str, int]) -> tuple[str, dict]:
    """The image drawn farthest from any other (no other thumbnail over it), and where."""
    places = {name: screen_of(page, i) for name, i in ids.items()}
    def room(name: str) -> float:
        return min(math.dist((places[name]["x"], places[name]["y"]), (p["x"], p["y"]))
                   for other, p in places.items() if other != name)
    name = max(places, key=room)
    return name, places[name]


def painted(page: Page) -> int:
    """Pixels of the canvas that are not its ground: what the frame drew."""
    return page.evaluate("""() => {
        const c = document.getElementById('map-canvas');
        const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
        let n = 0;
        for (let i = 0; i < data.length; i += 4) {
          if (data[i] < 250 || data[i + 1] < 250 || data[i + 2] < 250) n++;
        }
        return n;
    }""")


# ---------------------------------------------------------------------------- tests


def test_the_map_draws_every_image_and_lists_its_regions(page, server, coarse_regions):
    open_page(page, server.url)
    toggle = page.locator("#map-toggle")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#map")).to_be_hidden()
    open_map(page)
    assert painted(page) > 2000  # dots, then pictures, and the regions' words
    canvas = page.locator("#map-canvas")
    expect(canvas).to_have_attribute("data-level", "0")  # zoomed out: the coarse regions
    assert int(canvas.get_attribute("data-labels")) >= 2
    drawn = [label["text"] for label in page.evaluate("wordpixMap.labels()")]
    assert drawn and set(drawn) <= set(coarse_regions)  # those that fit without overlapping
    # the text alternative: every coarse region, as a button, and the canvas says what it is
    expect(page.locator("#map-regions .chip")).to_have_count(len(coarse_regions))
    listed = page.locator("#map-regions .chip").evaluate_all("bs => bs.map(b => b.dataset.label)")
    assert listed == coarse_regions
    label = canvas.get_attribute("aria-label") or ""
    assert "12 images" in label and coarse_regions[0] in label
    expect(page.locator("#map-status")).to_contain_text("12 images")
    toggle.click()  # and back to the grid
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#map")).to_be_hidden()
    expect(page.locator(".tile")).to_have_count(12)


def test_a_word_of_the_map_runs_its_query_and_the_map_stays(page, server, coarse_regions):
    open_page(page, server.url)
    open_map(page)
    label = page.evaluate("wordpixMap.labels()")[0]
    page.mouse.click(label["x"], label["y"])  # a word drawn on the canvas
    shows(page, label["text"])
    expect(page.locator("#summary")).to_contain_text(f"for {label['text']}")
    expect(page.locator("#map")).to_be_visible()  # the results are shown on the map
    canvas = page.locator("#map-canvas")
    expect(canvas).to_have_attribute("data-highlighted", "12")
    assert [m["kind"] for m in page.evaluate("wordpixMap.marks()")] == ["query"]
    other = next(word for word in coarse_regions if word != label["text"])
    page.locator(f'#map-regions .chip[data-label="{other}"]').click()  # the text alternative
    shows(page, other)
    expect(page.locator("#map-toggle")).to_have_attribute("aria-pressed", "true")
    page.locator("#map-toggle").click()  # the grid holds the same results
    expect(page.locator(".tile")).to_have_count(12)
    expect(page.locator("#grid")).to_have_attribute("data-q", other)


def test_a_click_inside_a_region_runs_its_word(page, server):
    """Away from any word or image, a click within a region searches for the region's word."""
    open_page(page, server.url)
    open_map(page)
    box = page.locator("#map-canvas").bounding_box()
    found = page.evaluate("""([left, top, width, height]) => {
      const canvas = document.getElementById("map-canvas");
      const region = (x, y) => {  // the region's word at (x, y), if a click there runs it
        const target = wordpixMap.targetAt(x, y);
        const onTop = document.elementFromPoint(x, y) === canvas;
        return target && target.kind === "region" && onTop ? target.text : null;
      };
      for (let y = Math.ceil(top) + 8; y < top + height - 8; y += 3)
        for (let x = Math.ceil(left) + 8; x < left + width - 8; x += 3) {
          const text = region(x, y);  // and all around it: not on a region's edge
          if (text && [[-4, 0], [4, 0], [0, -4], [0, 4]].every(([dx, dy]) =>
              region(x + dx, y + dy) === text)) return { x, y, text };
        }
      return null;
    }""", [box["x"], box["y"], box["width"], box["height"]])
    assert found, "no point of the map is inside a region and off every image and word"
    page.mouse.click(found["x"], found["y"])
    shows(page, found["text"])
    expect(page.locator("#map")).to_be_visible()
    corner = page.evaluate(f"wordpixMap.targetAt({box['x'] + 1}, {box['y'] + 1})")
    assert corner is None  # the canvas's corner is in no region: a click there does nothing


def test_the_query_is_marked_among_its_results(page, server, ids):
    open_page(page, server.url)
    search(page, "cat")  # before the map is shown: it still knows the results
    open_map(page)
    expect(page.locator("#map-canvas")).to_have_attribute("data-marks", "1")
    mark = page.evaluate("wordpixMap.marks()")[0]
    cat = screen_of(page, ids["cat"])
    # the score-weighted median of the top 10: the cat (0.7) outweighs the other nine together
    assert mark["kind"] == "query" and mark["text"] == "cat"
    assert abs(mark["x"] - cat["x"]) < 1 and abs(mark["y"] - cat["y"]) < 1
    search(page, "grass")  # a query run on the map: the map stays, with the new results
    expect(page.locator("#map")).to_be_visible()
    page.wait_for_function("wordpixMap.marks()[0] && wordpixMap.marks()[0].text === 'grass'")
    expect(page.locator("#map-status")).to_contain_text("results of “grass” highlighted")


def test_a_click_on_an_image_opens_its_preview(page, server, ids, sample_gallery):
    open_page(page, server.url)
    open_map(page)
    name, _ = isolated(page, ids)
    # a query that leaves the image out of its results: the page has no record of it but the map
    query = f"cat-[IMG_{ids[name]}]" if name != "cat" else f"grass-[IMG_{ids[name]}]"
    search(page, query)
    place = screen_of(page, ids[name])  # the terms strip came above the map: it moved down
    page.mouse.click(place["x"], place["y"])
    preview = page.locator("#preview")
    expect(preview).to_be_visible()
    expect(preview.locator("#preview-title")).to_have_text(f"[IMG_{ids[name]}]")
    caption = Gallery(sample_gallery.index).by_id(ids[name]).caption
    expect(preview.locator("#preview-caption")).to_have_text(caption)  # from its describe
    expect(preview.locator("#preview-words .word").first).to_be_visible()
    page.wait_for_function("document.getElementById('preview-image').naturalWidth > 0")
    page.keyboard.press("ArrowRight")  # not among the results: no next one to walk to
    expect(preview.locator("#preview-title")).to_have_text(f"[IMG_{ids[name]}]")
    page.keyboard.press("Escape")
    expect(preview).to_be_hidden()
    assert focused(page) == "#map-canvas"  # back on the map
    shows(page, query)


def test_a_placed_word_is_marked_and_the_query_stays(page, server, ids):
    open_page(page, server.url)
    search(page, "grass")
    open_map(page)
    page.fill("#map-word", "coffee")
    page.press("#map-word", "Enter")
    expect(page.locator("#map-canvas")).to_have_attribute("data-marks", "2")
    expect(page.locator("#map-status")).to_contain_text("“coffee” is marked")
    marks = {m["kind"]: m for m in page.evaluate("wordpixMap.marks()")}
    word = marks["word"]
    assert word["text"] == "coffee"
    # where its images are: each coordinate is one of the images' (a median, axis by axis)
    places = [screen_of(page, i) for i in ids.values()]
    assert any(abs(word["x"] - p["x"]) < 1 for p in places)
    assert any(abs(word["y"] - p["y"]) < 1 for p in places)
    shows(page, "grass")  # the user's query and the grid are untouched
    assert marks["query"]["text"] == "grass"
    expect(page.locator("#map-words .chip")).to_have_text(["coffee"])
    page.locator("#map-clear").click()
    expect(page.locator("#map-canvas")).to_have_attribute("data-marks", "1")
    expect(page.locator("#map-words")).to_be_hidden()


def test_the_mouse_and_the_keys_move_and_zoom_the_map(page, server, ids):
    open_page(page, server.url)
    open_map(page)
    view = page.evaluate("wordpixMap.view()")
    name, place = isolated(page, ids)
    page.mouse.move(place["x"], place["y"])
    page.mouse.wheel(0, -400)  # zooms in around the pointer: the image under it stays there
    page.wait_for_function("(z) => wordpixMap.view().zoom > z", arg=view["zoom"])
    after = screen_of(page, ids[name])
    assert abs(after["x"] - place["x"]) < 2 and abs(after["y"] - place["y"]) < 2
    box = page.locator("#map-canvas").bounding_box()
    start = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] - 60, start[1], steps=4)  # a drag moves the map with it
    page.mouse.up()
    moved = screen_of(page, ids[name])
    assert abs(moved["x"] - (after["x"] - 60)) < 2
    expect(page.locator("#preview")).to_be_hidden()  # a drag is no click

    page.locator("#map-reset").click()
    page.wait_for_function("wordpixMap.view().zoom === 1")
    page.locator("#map-zoom-in").click()
    page.wait_for_function("wordpixMap.view().zoom > 1.5")
    page.locator("#map-canvas").focus()
    page.keyboard.press("0")
    page.wait_for_function("wordpixMap.view().zoom === 1")
    centre = page.evaluate("wordpixMap.view().cx")
    page.keyboard.press("ArrowRight")  # the map moves: what is to the right comes into view
    page.wait_for_function("(c) => wordpixMap.view().cx > c", arg=centre)
    page.keyboard.press("+")
    page.wait_for_function("wordpixMap.view().zoom > 1.5")
    page.keyboard.press("-")
    page.wait_for_function("Math.abs(wordpixMap.view().zoom - 1) < 1e-9")
    page.keyboard.press("Enter")  # the image nearest the centre, if one is near
    opened = page.locator("#preview").is_visible() or "No image at the centre" in \
        page.locator("#map-status").inner_text()
    assert opened


def test_the_map_on_a_phone(phone, server, coarse_regions):
    open_page(phone, server.url)
    open_map(phone)
    box = phone.locator("#map-canvas").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 844 + 1  # scrolled into view, whole
    assert box["width"] >= 340
    small = _small_targets(phone, "#map button, #map input, #map-toggle")
    assert not small, small
    touch = phone.context.new_cdp_session(phone)
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    def fingers(kind: str, *points: tuple[float, float]) -> None:
        touch.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [
            {"x": px, "y": py, "id": n} for n, (px, py) in enumerate(points)]})

    before = phone.evaluate("wordpixMap.view()")
    fingers("touchStart", (x, y))  # one finger drags
    for step in range(1, 6):
        fingers("touchMove", (x - 12 * step, y))
    fingers("touchEnd")
    phone.wait_for_function("(cx) => wordpixMap.view().cx > cx + 1e-4", arg=before["cx"])
    fingers("touchStart", (x - 30, y), (x + 30, y))  # two pinch
    for step in range(1, 6):
        fingers("touchMove", (x - 30 - 15 * step, y), (x + 30 + 15 * step, y))
    fingers("touchEnd")
    phone.wait_for_function("wordpixMap.view().zoom > 2")
    phone.locator("#map-reset").tap()
    phone.wait_for_function("wordpixMap.view().zoom === 1")
    chip = phone.locator("#map-regions .chip").first
    chip.tap()  # the regions as buttons, on a phone too
    shows(phone, coarse_regions[0])
    expect(phone.locator("#map-canvas")).to_have_attribute("data-highlighted", "12")


def test_the_map_of_the_page_opened_from_disk(page, server):
    # its thumbnails come from another origin: drawn all the same
    url = (REPO / "web" / "index.html").as_uri() + f"?server=localhost:{server.port}"
    open_page(page, url)
    open_map(page)
    page.locator("#map-regions .chip").first.click()
    expect(page.locator("#map-canvas")).to_have_attribute("data-highlighted", "12")
