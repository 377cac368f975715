"""The page on a phone: 390x844, touch, no hover, in headless Chromium against the real server.

After a query the first results are on the first screen (the hints and chips fold away, the
nearest words are one row above the grid), every tap target is at least 40 px, a tap shows at
once what it did, the preview is how one subtracts, and nothing speaks of Shift or dropping
files.
"""

from __future__ import annotations

from itertools import pairwise

from playwright.sync_api import Page, expect

from tests.e2e.pages import open_page, open_preview, search, shows, tile_ids

SCREEN = 844
TAP = 40


def test_the_first_results_are_on_the_first_screen(phone, server):
    open_page(phone, server.url)
    expect(phone.locator("#help")).to_be_visible()  # before any search: how to use it
    expect(phone.locator(".chip").first).to_be_visible()
    search(phone, "cat")
    # two columns, and the first results on the first screen: the close matches, which a
    # relevance line may end after the first tile of a row
    boxes = [phone.locator(".tile").nth(i).bounding_box() for i in range(4)]
    assert any(a["y"] == b["y"] for a, b in pairwise(boxes)), boxes
    line = phone.locator(".relevance-line")
    said = line.inner_text() if line.count() else ""
    close = int(said.split()[0]) if said[:1].isdigit() else 2
    first_row = boxes[:max(1, min(2, close))]
    assert all(box["y"] + box["height"] <= SCREEN for box in first_row), first_row
    expect(phone.locator("#help")).to_be_hidden()  # folded away after the first search
    word = phone.locator("#nearest .word").first
    assert word.bounding_box()["y"] < first_row[0]["y"]  # the nearest words: above the grid
    toggle = phone.locator("#help-toggle")
    toggle.tap()  # and one tap away
    expect(phone.locator(".chip").first).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")


def test_every_tap_target_is_at_least_40px(phone, server, ids):
    open_page(phone, server.url)
    search(phone, f"2*grass+[IMG_{ids['cat']}]")
    phone.locator("#help-toggle").tap()  # the chips too
    small = _small_targets(phone, "main button, main a, main input, header button")
    assert not small, small
    open_preview(phone, ids["moon"])
    small = _small_targets(phone, "#preview button, #preview a")
    assert not small, small


def _small_targets(page: Page, selector: str) -> list[str]:
    boxes = page.locator(selector).evaluate_all("""(targets) => targets
        .filter((t) => t.offsetParent !== null)
        .map((t) => [t.id || t.className || t.tagName, t.textContent.trim().slice(0, 20),
                     t.offsetWidth, t.offsetHeight])""")  # layout size: a tap's scale aside
    return [box for box in boxes if box[2] < TAP or box[3] < TAP]


def test_a_tap_shows_what_it_did_at_once(phone, server):
    open_page(phone, server.url)
    search(phone, "grass")
    word = phone.locator("#nearest .word").nth(1)
    name = word.get_attribute("data-word")
    look = "w => { const s = getComputedStyle(w); return [s.transform, s.backgroundColor]; }"
    resting = word.evaluate(look)
    # a finger on it (Chromium holds :active only ~150 ms after a tap: forced here to look)
    client = phone.context.new_cdp_session(phone)
    client.send("DOM.enable")
    client.send("CSS.enable")
    root = client.send("DOM.getDocument")["root"]["nodeId"]
    node = client.send("DOM.querySelector", {"nodeId": root,
                                             "selector": f'#nearest .word[data-word="{name}"]'})
    client.send("CSS.forcePseudoState", {"nodeId": node["nodeId"],
                                         "forcedPseudoClasses": ["active"]})
    pressed = word.evaluate(look)
    client.send("CSS.forcePseudoState", {"nodeId": node["nodeId"], "forcedPseudoClasses": []})
    assert pressed[0] != resting[0] and pressed[1] != resting[1], (resting, pressed)
    word.tap()
    shows(phone, f"grass+{name}")

    toast = phone.locator("#toast")  # and what it changed, where the finger is, not far above
    expect(toast).to_contain_text(f"Added {name}: grass+{name}")
    assert toast.bounding_box()["y"] + toast.bounding_box()["height"] <= SCREEN


def test_on_a_phone_the_preview_is_how_one_subtracts(phone, server, ids):
    open_page(phone, server.url)
    search(phone, "grass")
    preview = open_preview(phone, ids["cat"])
    assert preview.bounding_box()["width"] <= 390
    subtract = phone.locator("#preview-subtract")
    assert subtract.bounding_box()["y"] + subtract.bounding_box()["height"] <= SCREEN
    subtract.tap()
    shows(phone, f"grass-[IMG_{ids['cat']}]")
    assert ids["cat"] not in tile_ids(phone)


def test_no_desktop_only_hints_on_a_touch_screen(phone, server):
    open_page(phone, server.url)
    shown = phone.locator("body").inner_text()  # what is on screen, not what is hidden
    for desktop_only in ("Shift", "Drop a photo", "Ctrl", "jumps to the query box"):
        assert desktop_only not in shown, desktop_only
    expect(phone.locator(".hint.for-touch")).to_contain_text("Tap an image")
