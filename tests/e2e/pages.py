"""What the page tests do and look at, as a user would: the query box, the grid, the notices.

The pages come from the `page` (1280x800) and `phone` (390x844, touch) fixtures of
tests/conftest.py; the server is the real one, on the real sample gallery.
"""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect


def open_page(page: Page, url: str, count: int = 12) -> None:
    """Load the page and wait for the gallery's first tiles."""
    page.goto(url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    expect(page.locator("#grid")).to_have_attribute("data-q", "")
    expect(page.locator(".tile")).to_have_count(count)


def search(page: Page, text: str) -> None:
    page.fill("#q", text)
    page.press("#q", "Enter")
    shows(page, text)


def shows(page: Page, text: str) -> None:
    """Wait until the grid holds the results of exactly this query text."""
    expect(page.locator("#q")).to_have_value(text)
    expect(page.locator("#grid")).to_have_attribute("data-q", text)
    expect(page.locator("#grid")).not_to_have_class(re.compile(r"\bstale\b"))


def tile_ids(page: Page) -> list[int]:
    return [int(i) for i in page.locator(".tile").evaluate_all("ts => ts.map(t => t.dataset.id)")]


def scores(page: Page) -> list[float]:
    return [float(s) for s in page.locator(".tile .score").all_inner_texts()]


def tile(page: Page, image_id: int) -> Locator:
    return page.locator(f'.tile[data-id="{image_id}"]')


def terms(page: Page) -> list[str]:
    return page.locator("#terms .term .label").all_inner_texts()


def images_loaded(page: Page, selector: str = "img") -> None:
    page.wait_for_function(f"[...document.querySelectorAll({selector!r})]"
                           ".every(i => i.complete && i.naturalWidth > 0)")


def focused(page: Page) -> str:
    """What has the keyboard focus: `tile 5`, `#q`, `.skip`, or the tag name."""
    return page.evaluate("""() => {
        const at = document.activeElement;
        if (at.classList.contains("tile")) return `tile ${at.dataset.id}`;
        return at.id ? `#${at.id}` : at.tagName.toLowerCase();
    }""")


def is_touch(page: Page) -> bool:
    return page.evaluate("matchMedia('(hover: none)').matches")


def press(page: Page, target: Locator) -> None:
    """A tap on a touch screen, a click elsewhere."""
    if is_touch(page):
        target.tap()
    else:
        target.click()


def open_preview(page: Page, image_id: int) -> Locator:
    """Click (or tap) a result; its preview opens with the image's nearest words."""
    press(page, tile(page, image_id))

    preview = page.locator("#preview")
    expect(preview).to_be_visible()
    expect(preview.locator("#preview-title")).to_have_text(f"[IMG_{image_id}]")
    expect(preview.locator("#preview-words .word").first).to_be_visible()
    return preview
