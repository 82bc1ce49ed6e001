"""What a person does on the page, in Debian's Chromium, checked against a separate MCP client's view."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.web.conftest import Logged, Server, shot, sign_in, start

pytestmark = pytest.mark.e2e


def contents(logged: Logged) -> list[str]:
    """Return the memory texts the page lists, in order."""
    return logged.page.locator("article.memory .content").all_inner_texts()


def search(logged: Logged, server: Server, query: str, **filters: str) -> list[str]:
    """Search from the page's form (filters in the query string) and return the hits' texts."""
    query_string = "&".join(f"{k}={v}" for k, v in filters.items())
    logged.page.goto(server.ui(f"/search?{query_string}"))
    logged.page.get_by_label("Search", exact=True).fill(query)
    logged.page.get_by_label("Search", exact=True).press("Enter")
    logged.page.wait_for_selector("#results")
    return contents(logged)


@pytest.fixture(scope="module")
def seeded(server: Server) -> dict[str, str]:
    """Alice's memories, stored through MCP."""
    ids = {}
    for key, content, role, tags in [
        ("bike", "I keep my bicycle in the garden shed behind the house.", "user", ["home"]),
        ("dentist", "The dentist appointment is on Tuesday at nine.", "fact", ["health"]),
        ("flight", "Our flight to Lisbon leaves from gate 12 on Friday.", "assistant", ["travel"]),
        ("locker", "My gym locker code is 4512.", "fact", ["gym"]),
        ("plumber", "The plumber comes on Monday to fix the kitchen sink.", "user", ["home"]),
    ]:
        ids[key] = server.call("alice", "remember", content=content, role=role, tags=tags)["id"]
    return ids


def test_search_finds_a_paraphrased_memory_and_filters_narrow(
    browser: Browser, server: Server, seeded: dict[str, str], pages: list[Logged]
) -> None:
    alice = sign_in(browser, server, "alice")
    pages.append(alice)
    hits = search(alice, server, "Where is the bike stored?")
    assert "bicycle in the garden shed" in hits[0]
    expect(alice.page.locator("#results")).to_contain_text("hybrid")
    shot(alice.page, "search")
    search(alice, server, "gardens")
    expect(alice.page.locator("article.memory mark").first).to_have_text("garden")
    # A tag filter keeps only the tagged memories; a role filter only that role.
    assert all("dentist" in h for h in search(alice, server, "appointment bike shed", tags="health"))
    alice.page.goto(server.ui("/?role=fact"))
    assert sorted(contents(alice)) == ["My gym locker code is 4512.", "The dentist appointment is on Tuesday at nine."]
    alice.page.goto(server.ui("/?tags=home"))
    assert len(contents(alice)) == 2 and all("garden" in c or "plumber" in c for c in contents(alice))
    alice.page.goto(server.ui("/"))
    assert len(contents(alice)) == 5 and contents(alice)[0].startswith("The plumber")  # newest first
    expect(alice.page.locator(".chart .bar")).to_have_count(1)
    shot(alice.page, "timeline")
    alice.page.set_viewport_size({"width": 375, "height": 800})
    shot(alice.page, "timeline-phone")
    assert alice.page.evaluate("document.scrollingElement.scrollWidth") <= 375


def test_an_edit_shows_in_mcp_recall_from_another_client(
    browser: Browser, server: Server, seeded: dict[str, str], pages: list[Logged]
) -> None:
    alice = sign_in(browser, server, "alice")
    pages.append(alice)
    alice.page.goto(server.ui(f"/memory/{seeded['locker']}"))
    expect(alice.page.locator(".facts")).to_contain_text("fact")
    shot(alice.page, "memory")
    alice.page.get_by_label("Content").fill("My gym locker code is 9921.")
    alice.page.get_by_label("Tags (comma-separated)").fill("gym, codes")
    alice.page.get_by_role("button", name="Save").click()
    expect(alice.page.locator(".notice")).to_have_text("Saved.")
    expect(alice.page.locator(".content.full")).to_have_text("My gym locker code is 9921.")
    hits = server.call("alice", "recall", query="gym locker code")["hits"]
    assert hits[0]["content"] == "My gym locker code is 9921."
    assert hits[0]["tags"] == ["gym", "codes"] and hits[0]["role"] == "fact"
    assert not [h for h in hits if "4512" in h["content"]]
    # The corrected memory lists both versions, each linked, itself the current one.
    versions = alice.page.locator("ol.versions li")
    expect(versions).to_have_count(2)
    expect(versions.nth(0)).to_contain_text("My gym locker code is 4512.")
    expect(versions.nth(0)).to_contain_text("superseded by")
    expect(versions.nth(1)).to_contain_text("current")
    expect(versions.nth(1)).to_have_attribute("aria-current", "page")
    new_id = alice.page.url.split("/memory/")[1].split("?")[0]
    shot(alice.page, "memory-versions")
    # The old version opens from its link and says what replaced it, and when.
    versions.nth(0).get_by_role("link").first.click()
    alice.page.wait_for_url(server.ui(f"/memory/{seeded['locker']}"))
    notice = alice.page.locator(".superseded")
    expect(notice).to_contain_text(f"Superseded by {new_id} on 20")
    expect(alice.page.locator("ol.versions li").nth(0)).to_have_attribute("aria-current", "page")
    notice.get_by_role("link").click()
    alice.page.wait_for_url(server.ui(f"/memory/{new_id}"))
    expect(alice.page.locator(".content.full")).to_have_text("My gym locker code is 9921.")


def test_forget_removes_it_from_mcp_recall(
    browser: Browser, server: Server, seeded: dict[str, str], pages: list[Logged]
) -> None:
    alice = sign_in(browser, server, "alice")
    pages.append(alice)
    assert seeded["plumber"] in [h["id"] for h in server.call("alice", "recall", query="plumber kitchen sink")["hits"]]
    alice.page.goto(server.ui("/?tags=home"))
    alice.page.get_by_label(f"Select memory {seeded['plumber']}").check()
    alice.page.get_by_role("button", name="Forget selected…").click()
    expect(alice.page.get_by_role("heading", level=1)).to_have_text("Forget 1 memory?")
    shot(alice.page, "forget")
    alice.page.get_by_role("button", name="Yes, forget").click()
    expect(alice.page.locator(".notice")).to_have_text("Forgot 1 memory.")
    hits = server.call("alice", "recall", query="plumber kitchen sink")["hits"]
    assert seeded["plumber"] not in [h["id"] for h in hits]
    assert not [h for h in hits if "plumber" in h["content"]]


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start(tmp_path_factory.mktemp("empty"), ["alice"])


def test_export_then_import_into_an_empty_store_reproduces_it(
    browser: Browser, server: Server, empty_server: Server, seeded: dict[str, str], pages: list[Logged], tmp_path: Path
) -> None:
    alice = sign_in(browser, server, "alice")
    pages.append(alice)
    alice.page.goto(server.ui("/?tags=travel"))
    with alice.page.expect_download() as download:
        alice.page.get_by_role("link", name="Export these as JSONL").click()
    path = tmp_path / "export.jsonl"
    download.value.save_as(path)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["type"] for r in records] == ["header", "memory"]
    original = records[1]

    fresh = sign_in(browser, empty_server, "alice")
    pages.append(fresh)
    assert contents(fresh) == []
    fresh.page.goto(empty_server.ui("/import"))
    fresh.page.get_by_label("An agent-memory export").set_input_files(path)
    fresh.page.get_by_role("button", name="Import").click()
    expect(fresh.page.locator("#report")).to_be_visible()
    expect(fresh.page.locator("section[role=status] .facts")).to_contain_text("Stored1")
    shot(fresh.page, "import")
    [hit] = [h for h in empty_server.call("alice", "recall", query="flight to Lisbon")["hits"]]
    for key in ("id", "content", "role", "tags", "namespace", "session_id", "created_at"):
        assert hit[key] == original[key], key


def test_a_second_user_sees_nothing_of_the_first(
    browser: Browser, server: Server, seeded: dict[str, str], pages: list[Logged]
) -> None:
    bob = sign_in(browser, server, "bob")
    pages.append(bob)
    assert contents(bob) == []
    assert search(bob, server, "bicycle garden shed dentist flight") == []
    response = bob.page.goto(server.ui(f"/memory/{seeded['dentist']}"))
    assert response is not None and response.status == 404
    bob.page.goto(server.ui("/namespaces"))
    expect(bob.page.locator("main")).to_contain_text("No memories yet.")
    # Bob's forms cannot reach Alice's memory either.
    bob.page.goto(server.ui("/"))
    bob.page.evaluate(
        "id => { const f = document.getElementById('bulk'); const i = document.createElement('input');"
        " i.type = 'hidden'; i.name = 'ids'; i.value = id; f.append(i); f.action = f.action.replace('/confirm', '');"
        " f.submit(); }",
        seeded["dentist"],
    )
    expect(bob.page.locator(".notice")).to_have_text("Forgot 0 memories.")
    assert seeded["dentist"] in [h["id"] for h in server.call("alice", "recall", query="dentist appointment")["hits"]]
