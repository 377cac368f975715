"""A way back, and photos that survive a reload: in headless Chromium against the real server.

Each query is an entry of the browser's history, so Back and Forward walk the refinements, the
address is a link to the query, and Ctrl+Z (outside the text box) and the notes' Undo go back
too. Photos in a query are kept by the browser (IndexedDB): a reload or a link opened in the
same browser sends them again; another browser says to add the photo again.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.pages import (
    images_loaded,
    open_page,
    open_preview,
    press,
    search,
    shows,
    terms,
    tile_ids,
)


def test_back_and_forward_walk_the_queries(device, server, ids):
    page = device
    open_page(page, server.url)
    search(page, "cat")
    search(page, "grass")
    open_preview(page, ids["cat"])
    press(page, page.locator("#preview-add"))
    refined = f"grass+[IMG_{ids['cat']}]"
    shows(page, refined)
    assert "#q=grass%2B%5BIMG_" in page.url  # the address is the query

    page.go_back()
    shows(page, "grass")
    page.go_back()
    shows(page, "cat")
    assert tile_ids(page)[0] == ids["cat"]
    page.go_back()
    expect(page.locator("#grid")).to_have_attribute("data-q", "")  # the gallery, as it began
    expect(page.locator("#q")).to_have_value("")
    page.go_forward()
    shows(page, "cat")
    page.go_forward()
    page.go_forward()
    shows(page, refined)
    assert ids["cat"] not in tile_ids(page)


def test_the_address_is_a_link_to_the_query(new_page, server, ids):
    page = new_page()
    open_page(page, server.url)
    search(page, f"grass+[IMG_{ids['cat']}]")
    elsewhere = new_page()
    elsewhere.goto(page.url)  # another browser
    shows(elsewhere, f"grass+[IMG_{ids['cat']}]")
    assert tile_ids(elsewhere) == tile_ids(page)


def test_ctrl_z_outside_the_text_box_undoes_the_pages_changes(page, server, ids):
    open_page(page, server.url)
    page.locator(".brand").click()    # out of the text box
    page.keyboard.press("Control+z")  # nothing to undo: the page says so and stays

    expect(page.locator("#toast")).to_contain_text("Nothing to undo")
    search(page, "grass")
    page.locator("#nearest .word").first.click()
    word = page.locator("#nearest .word").first.get_attribute("data-word")
    with_word = page.locator("#q").input_value()
    shows(page, with_word)
    open_preview(page, ids["cat"])
    page.locator("#preview-add").click()
    shows(page, f"{with_word}+[IMG_{ids['cat']}]")

    page.keyboard.press("Control+z")  # the focus is in the grid, not the text box
    shows(page, with_word)
    page.keyboard.press("Control+z")
    shows(page, "grass")
    page.keyboard.press("Control+Shift+z")  # and redo
    shows(page, with_word)
    assert word

    page.locator("#q").focus()  # in the text box, Ctrl+Z is the box's own undo
    page.keyboard.type(" cat")
    page.keyboard.press("Control+z")
    expect(page.locator("#grid")).to_have_attribute("data-q", with_word)


def test_escape_clears_the_query_with_a_way_back(device, server):
    page = device
    open_page(page, server.url)
    search(page, "coffee")
    page.locator("#q").focus()
    page.keyboard.press("Escape")  # the search box's own clearing
    expect(page.locator("#q")).to_have_value("")
    expect(page.locator("#grid")).to_have_attribute("data-q", "")
    toast = page.locator("#toast")
    expect(toast).to_contain_text("Cleared the query")
    press(page, toast.get_by_role("button", name="Undo"))
    shows(page, "coffee")
    page.locator("#q").focus()
    page.keyboard.press("Escape")
    expect(page.locator("#grid")).to_have_attribute("data-q", "")
    page.go_back()  # Back brings it back too
    shows(page, "coffee")


def test_a_reload_sends_the_querys_photo_again(device, server, sample_gallery, ids):
    page = device
    open_page(page, server.url)
    page.set_input_files("#file", sample_gallery.photos["cat"])
    shows(page, "[UPLOAD_1]")
    open_preview(page, ids["grass"])
    press(page, page.locator("#preview-add"))
    query = f"[UPLOAD_1]+[IMG_{ids['grass']}]"
    shows(page, query)
    before = tile_ids(page)

    page.reload()
    shows(page, query)  # the photo went up again from the browser's store
    assert tile_ids(page) == before and before[0] == ids["cat"]
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#missing")).to_be_hidden()
    thumbnail = page.locator("#terms .term.upload img")
    assert thumbnail.get_attribute("src").startswith("blob:")
    images_loaded(page, "#terms img")

    page.go_back()  # and an entry from before the reload too
    shows(page, "[UPLOAD_1]")
    assert tile_ids(page)[0] == ids["cat"]


def test_a_link_with_a_photo_in_the_same_browser_and_in_another(new_page, server,
                                                                  sample_gallery, ids):
    page = new_page()
    open_page(page, server.url)
    page.set_input_files("#file", sample_gallery.photos["coffee"])
    shows(page, "[UPLOAD_1]")
    search(page, "[UPLOAD_1]+cup")
    link = page.url

    same_browser = page.context.new_page()  # another tab: the browser has the photo
    same_browser.goto(link)
    shows(same_browser, "[UPLOAD_1]+cup")
    assert tile_ids(same_browser)[0] == ids["coffee"]

    other = new_page()  # another browser: no photo, and it says what to do
    other.goto(link)
    missing = other.locator("#missing")
    expect(missing).to_contain_text("added in another browser")
    expect(other.locator(".tile")).to_have_count(0)
    expect(other.locator("#terms .term.upload .missing")).to_be_visible()
    assert terms(other) == ["[UPLOAD_1]", "cup"]
    with other.expect_file_chooser() as chooser:
        missing.get_by_role("button", name=re.compile("Add this photo again")).click()
    chooser.value.set_files(sample_gallery.photos["coffee"])
    shows(other, "[UPLOAD_1]+cup")
    expect(missing).to_be_hidden()
    assert tile_ids(other)[0] == ids["coffee"]

    third = new_page()
    third.goto(link)
    third.locator("#missing").get_by_role("button", name="Remove it from the query").click()
    shows(third, "cup")
