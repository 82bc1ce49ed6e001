"""Content written by a model is shown as text: no script runs, no dialog opens, nothing is fetched elsewhere."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.web.conftest import Logged, Server, shot, sign_in

pytestmark = pytest.mark.e2e

PAYLOADS = [
    "<script>alert('script')</script>",
    "<img src=x onerror=alert('img')>",
    "\"><svg onload=alert('svg')>",
    "</textarea><script>alert('textarea')</script>",
    "[click me](javascript:alert('markdown')) and <a href=\"javascript:alert('link')\">a link</a>",
    '<iframe src="https://example.com/"></iframe><link rel=stylesheet href="https://example.com/x.css">',
    "{{ 7*7 }} {% raw %} &lt;b&gt; &amp; <style>body{display:none}</style>",
    "مرحبا بالعالم، هذه ذاكرة مكتوبة من اليمين إلى اليسار \u202e reversed \u202c end",
    "Emoji 👩‍👩‍👧‍👦 🚀 🇵🇹 and combining é",
    "x" * 6000,
]


@pytest.fixture(scope="module")
def hostile(server: Server) -> list[str]:
    """Store every payload as Mallory's memory, with hostile tags and metadata too."""
    stored = []
    for text in PAYLOADS:
        result = server.call(
            "mallory",
            "remember",
            content=text,
            tags=["<b>tag</b>", "\"'><script>alert('tag')</script>"],
            metadata={"note": "<script>alert('meta')</script>", "url": "javascript:alert('meta')"},
        )
        stored.append(result["id"])
    return stored


def assert_inert(logged: Logged, server: Server) -> None:
    """No dialog, no console error (a CSP violation is one), no request off the origin, only our own script."""
    assert logged.dialogs == []
    assert logged.errors() == []
    assert [u for u in logged.requests if not u.startswith(server.origin + "/")] == []
    scripts = logged.page.evaluate("Array.from(document.scripts, s => s.src)")
    assert scripts == [server.ui("/static/app.js")]
    assert logged.page.locator("main img, main svg, main iframe, main style, main link").count() == 0


def test_hostile_content_renders_as_text_on_every_page(
    browser: Browser, server: Server, hostile: list[str], pages: list[Logged]
) -> None:
    mallory = sign_in(browser, server, "mallory")
    pages.append(mallory)
    page = mallory.page
    page.goto(server.ui("/"))
    shown = page.locator("article.memory .content").all_inner_texts()
    for text in PAYLOADS:
        if len(text) < 600:  # long texts are cut in lists; the detail page shows them whole
            assert text.replace("\u202e", "").replace("\u202c", "") in [
                s.replace("\u202e", "").replace("\u202c", "") for s in shown
            ]
    expect(page.locator(".tag").first).to_have_text("<b>tag</b>")
    assert_inert(mallory, server)
    shot(page, "hostile")
    page.goto(server.ui("/search?q=alert+script+javascript"))
    expect(page.locator("#results")).to_be_visible()
    assert page.locator("mark").count() > 0
    assert_inert(mallory, server)
    for memory_id, text in zip(hostile, PAYLOADS, strict=True):
        page.goto(server.ui(f"/memory/{memory_id}"))
        expect(page.locator(".content.full")).to_have_text(text)
        expect(page.get_by_label("Content")).to_have_value(text)
        expect(page.locator(".facts pre")).to_contain_text("<script>alert('meta')</script>")
        assert_inert(mallory, server)
    for path in ("/namespaces", "/health", "/import"):
        page.goto(server.ui(path))
        assert_inert(mallory, server)


def test_long_lines_fit_a_phone_width_window(
    browser: Browser, server: Server, hostile: list[str], pages: list[Logged]
) -> None:
    mallory = sign_in(browser, server, "mallory", viewport={"width": 375, "height": 800})
    pages.append(mallory)
    for path in ("/", f"/memory/{hostile[-1]}", "/search?q=xxxx"):
        mallory.page.goto(server.ui(path))
        assert mallory.page.evaluate("document.scrollingElement.scrollWidth") <= 375, path
    assert_inert(mallory, server)
