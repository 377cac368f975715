"""The preview and the keyboard, in headless Chromium against the real server.

A click on a result opens its preview: the image whole, its full caption, its score, the words
the model puts nearest it (the server's `describe`), and buttons that add it, subtract it, search
for it alone or open the file. Keyboard users get a skip link, one Tab stop for the grid with
arrows inside it, and the focus stays in the grid when the results change under it.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.pages import focused, open_page, open_preview, search, shows, tile, tile_ids


def test_the_preview_shows_the_image_whole_its_caption_score_and_words(page, server, ids):
    open_page(page, server.url)
    search(page, "cat")
    cat = ids["cat"]
    score = tile(page, cat).locator(".score").inner_text()
    preview = open_preview(page, cat)
    image = preview.locator("#preview-image")
    assert image.get_attribute("src").endswith(f"/images/{cat}")
    page.wait_for_function("document.getElementById('preview-image').naturalWidth > 0")
    assert image.evaluate("i => getComputedStyle(i).objectFit") == "contain"  # not cropped
    expect(preview.locator("#preview-caption")).to_have_text("a brown cat looking at the camera")
    # the score, and the day and time the photo was taken (here: the file's time)
    expect(preview.locator("#preview-score")).to_have_text(
        re.compile(rf"score {score} · \d{{4}}-\d\d-\d\d \d\d:\d\d"))
    words = preview.locator("#preview-words .word").evaluate_all(
        "ws => ws.map(w => w.dataset.word)")
    assert len(words) == 8 and "cat" in words[:3]  # what the model sees in it
    expect(preview.locator("#preview-picture")).to_contain_text("The picture alone:")
    opener = preview.locator("#preview-open")
    assert opener.get_attribute("href").endswith(f"/images/{cat}")
    assert opener.get_attribute("target") == "_blank"
    expect(page.locator("#preview-add")).to_be_focused()

    page.keyboard.press("Escape")  # closes the preview, and only the preview
    expect(preview).to_be_hidden()
    expect(page.locator("#q")).to_have_value("cat")
    assert focused(page) == f"tile {cat}"  # back on the image it showed


def test_the_previews_buttons(page, server, ids):
    open_page(page, server.url)
    search(page, "grass")
    open_preview(page, ids["cat"])
    page.locator("#preview-add").click()
    shows(page, f"grass+[IMG_{ids['cat']}]")
    assert focused(page).startswith("tile ")  # the focus stayed in the grid

    open_preview(page, ids["moon"])
    page.locator("#preview-subtract").click()
    shows(page, f"grass+[IMG_{ids['cat']}]-[IMG_{ids['moon']}]")

    preview = open_preview(page, ids["coffee"])
    word = preview.locator("#preview-words .word").first.get_attribute("data-word")
    preview.locator("#preview-words .word").first.click()  # one of its words joins the query
    shows(page, f"grass+[IMG_{ids['cat']}]-[IMG_{ids['moon']}]+{word}")

    open_preview(page, ids["coffee"])
    page.locator("#preview-like").click()  # more like this: the image alone
    shows(page, f"[IMG_{ids['coffee']}]")
    assert ids["coffee"] not in tile_ids(page)

    open_preview(page, tile_ids(page)[0])
    with page.context.expect_page() as opened:
        page.locator("#preview-open").click()
    file = opened.value
    file.wait_for_load_state()
    assert file.url.endswith(f"/images/{tile_ids(page)[0]}")
    assert file.evaluate("document.images[0].naturalWidth") > 0  # the picture itself


def test_the_preview_walks_the_results_with_arrows(page, server):
    open_page(page, server.url)
    search(page, "wall")
    first, second = tile_ids(page)[:2]
    open_preview(page, first)
    page.keyboard.press("ArrowRight")
    expect(page.locator("#preview-title")).to_have_text(f"[IMG_{second}]")
    page.locator("#preview-prev").click()
    expect(page.locator("#preview-title")).to_have_text(f"[IMG_{first}]")
    page.locator("#preview-close").click()
    expect(page.locator("#preview")).to_be_hidden()


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
    # a few Tabs from the query box to the first result: the chips and the grid are one stop each
    tabs = 0
    while not focused(page).startswith("tile ") and tabs < 30:
        page.keyboard.press("Tab")
        tabs += 1
    assert focused(page) == f"tile {first}" and tabs <= 12, tabs  # 41 before; 12 with "Map"
    page.keyboard.press("Shift+Tab")  # and the grid is one stop: back out of it at once
    assert not focused(page).startswith("tile ")

    page.locator("#q").focus()
    page.keyboard.press("ArrowDown")   # down from the box: the results
    assert focused(page) == f"tile {first}"
    page.keyboard.press("ArrowRight")  # arrows move within the grid
    assert focused(page) == f"tile {tile_ids(page)[1]}"
    columns = page.evaluate("getComputedStyle(grid).gridTemplateColumns.split(' ').length")
    page.keyboard.press("ArrowDown")
    assert focused(page) == f"tile {tile_ids(page)[1 + columns]}"
    page.keyboard.press("Home")
    assert focused(page) == f"tile {first}"

    page.keyboard.press("+")  # add the focused image, and stay in the grid
    shows(page, f"coins+[IMG_{first}]")
    second = tile_ids(page)[0]
    assert focused(page) == f"tile {second}"
    page.keyboard.press("-")
    shows(page, f"coins+[IMG_{first}]-[IMG_{second}]")
    assert focused(page).startswith("tile ")

    third = tile_ids(page)[0]
    page.locator(".tile").first.focus()
    page.keyboard.press("Enter")  # Enter opens the preview, as a click does
    expect(page.locator("#preview-title")).to_have_text(f"[IMG_{third}]")
    page.keyboard.press("Enter")  # on its first button: add
    shows(page, f"coins+[IMG_{first}]-[IMG_{second}]+[IMG_{third}]")
    assert focused(page).startswith("tile ")


def test_a_skip_link_leads_to_the_results(page, server, ids):
    open_page(page, server.url)
    # the first stop of the page, just before the query box (which has the focus on load)
    page.keyboard.press("Shift+Tab")
    skip = page.locator("#skip")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    assert skip.bounding_box()["y"] >= 0  # shown when focused, not off screen
    page.keyboard.press("Enter")
    assert focused(page) == "tile 1"
