"""The page and who may use the server, in Chromium.

With an access token (`python -m server --token`): a link with `#token=...` opens the page
served and from disk; the token leaves the address at once and the browser keeps it; without it
(or with a wrong one) the page asks for it. Without a token (loopback, the defaults): the page
from disk connects with nothing pasted (its page key), and a page of another site, served on
another local port or in a sandboxed frame, reads nothing (tests/e2e/test_cross_site.py has
the same over raw HTTP).
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

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


def test_the_page_from_disk_connects_and_searches_with_nothing_pasted(page: Page, server, ids):
    open_page(page, (REPO / "web" / "index.html").as_uri() + f"?server=localhost:{server.port}")
    images_loaded(page, ".tile img")
    search(page, "cat")
    assert tile_ids(page)[0] == ids["cat"]
    images_loaded(page, ".tile img")
    expect(page.locator("#access")).to_be_hidden()


@pytest.fixture
def other_site() -> Iterator[str]:
    """A copy of the page served by another web server on another port of this machine: what
    any local web app (or a site it proxies) could serve."""
    handler = lambda *args: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *args, directory=str(REPO / "web"))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as site:
        threading.Thread(target=site.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{site.server_address[1]}/"
        site.shutdown()


@pytest.fixture
def foreign_page(browser) -> Iterator[Page]:
    """A page whose console may log refusals (403s, CORS): those are what is tested."""
    context = browser.new_context()
    yield context.new_page()
    context.close()


def test_a_page_served_on_another_port_is_refused(foreign_page: Page, server, other_site):
    page = foreign_page
    page.goto(f"{other_site}index.html?server=localhost:{server.port}")
    expect(page.locator("#connection")).to_have_attribute("data-state", "locked")
    expect(page.locator("#summary")).to_contain_text(f"open http://localhost:{server.port}/")
    expect(page.locator(".tile")).to_have_count(0)


def test_a_sandboxed_frame_on_another_site_reads_nothing(foreign_page: Page, server, ids,
                                                        other_site):
    """What an attacker's page would do: a frame whose Origin is null asks for an image and
    opens the WebSocket; both fail, and it learns nothing but that they did."""
    script = f"""
        const out = [];
        try {{ const r = await fetch("http://localhost:{server.port}/images/{ids['cat']}");
              out.push("image " + r.status); }} catch (e) {{ out.push("image refused"); }}
        const ws = new WebSocket("ws://localhost:{server.port}/ws");
        out.push(await new Promise(done => {{ ws.onmessage = () => done("ws read");
                                             ws.onerror = () => done("ws refused"); }}));
        parent.postMessage(out.join(", "), "*");"""
    page = foreign_page
    page.goto(other_site)
    result = page.evaluate("""(script) => new Promise(done => {
        addEventListener("message", (event) => done(event.data));
        const frame = document.createElement("iframe");
        frame.sandbox = "allow-scripts";
        frame.srcdoc = `<script type="module">${script}</` + `script>`;
        document.body.append(frame);
    })""", script)
    assert result == "image refused, ws refused"
