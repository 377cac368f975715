"""The page and a server that needs its access token (`python -m server --token`), in Chromium.

A link with `#token=...` opens the page served and from disk; the token leaves the address at
once and the browser keeps it; without it (or with a wrong one) the page asks for it.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ACCESS_TOKEN, REPO
from tests.e2e.pages import images_loaded, open_page, search, tile_ids


def page_url(server, where: str) -> str:
    if where == "served":
        return server.url
    return (REPO / "web" / "index.html").as_uri() + f"?server=localhost:{server.port}"


@pytest.mark.parametrize("where", ["served", "disk"])
def test_a_link_with_the_token_opens_the_page(page: Page, guarded_server, ids, where):
    open_page(page, f"{page_url(guarded_server, where)}#token={ACCESS_TOKEN}")
    images_loaded(page, ".tile img")
    assert "token" not in page.url  # not in the history, a bookmark or a link shared later
    search(page, "cat")
    assert tile_ids(page)[0] == ids["cat"]
    images_loaded(page, ".tile img")
    page.goto(page_url(guarded_server, where))  # the browser kept it
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")


@pytest.mark.parametrize("where", ["served", "disk"])
def test_without_the_token_the_page_asks_for_it(page: Page, guarded_server, where):
    page.goto(f"{page_url(guarded_server, where)}#token=an-old-one")
    notice = page.locator("#access")
    expect(notice).to_contain_text("refused the access token")
    expect(page.locator("#connection")).to_have_attribute("data-state", "locked")
    page.fill("#access-token", ACCESS_TOKEN)
    page.press("#access-token", "Enter")
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    expect(notice).to_be_hidden()
    expect(page.locator(".tile")).to_have_count(12)
    images_loaded(page, ".tile img")


def test_a_page_without_any_token_says_it_needs_one(page: Page, guarded_server):
    page.goto(guarded_server.url)
    expect(page.locator("#access")).to_contain_text("needs its access token")
    expect(page.locator("#access-token")).to_be_focused()
