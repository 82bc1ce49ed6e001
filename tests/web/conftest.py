"""Browser fixtures: Debian's Chromium driven by Playwright, a real server process, signed-in pages with logs."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
from mcp.client import Client
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Dialog, Page, expect, sync_playwright

from tests.conftest import call
from tests.serving import bearer, clean_env, http_server, transport

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "ui"
# Set to 1 to refresh the screenshots in docs/ui; otherwise they go to a temp dir and a test run leaves the tree clean.
UPDATE_SHOTS = "AGENT_MEMORY_UPDATE_SCREENSHOTS"
# The server's first recall waits for the model to load; nothing here waits longer than this.
WAIT_MS = 60_000
expect.set_options(timeout=WAIT_MS)


@dataclass
class Server:
    """A running `agent-memory serve --transport http` with its page at /ui and its users' tokens."""

    origin: str
    mcp: str
    tokens: dict[str, str]

    def ui(self, path: str = "/") -> str:
        """Return the URL of a page under /ui."""
        return f"{self.origin}/ui{path}"

    def call(self, user: str, tool: str, **arguments: Any) -> dict[str, Any]:
        """Call an MCP tool as a user from a separate MCP client (its own connection, off the browser's thread)."""

        async def go() -> dict[str, Any]:
            async with Client(transport(self.mcp, bearer(self.tokens[user]))) as client:
                return await call(client, tool, **arguments)

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(anyio.run, go).result(timeout=300)


def start(tmp: Path, users: list[str]) -> Iterator[Server]:
    """Start a server on a fresh data dir with one token per user."""
    tokens = {user: secrets.token_urlsafe(24) for user in users}
    env = clean_env(
        AGENT_MEMORY_DATA_DIR=str(tmp / "data"),
        AGENT_MEMORY_HTTP_TOKENS=",".join(f"{t}:{u}" for u, t in tokens.items()),
        AGENT_MEMORY_MODEL_WAIT_SECONDS="240",
    )
    with http_server(env=env) as (url, _):
        parts = urlsplit(url)
        yield Server(f"{parts.scheme}://{parts.netloc}", url, tokens)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start(tmp_path_factory.mktemp("web"), ["alice", "bob", "mallory"])


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module: Playwright's sync API holds an event loop on this thread until it stops, and the async tests of
    # other modules need the thread's loop free.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@dataclass
class Logged:
    """A signed-in page and everything the browser reported: console messages, dialogs, requests."""

    page: Page
    context: BrowserContext
    console: list[ConsoleMessage] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def errors(self) -> list[str]:
        """Return the console's errors and warnings (a CSP violation is reported as an error)."""
        return [f"{m.type}: {m.text}" for m in self.console if m.type in ("error", "warning")]


def sign_in(browser: Browser, server: Server, user: str, **options: Any) -> Logged:
    """Open a new browser context and sign in with the user's token through the sign-in form."""
    context = browser.new_context(accept_downloads=True, **options)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    logged = Logged(page, context)
    page.on("console", lambda message: logged.console.append(message))

    def on_dialog(dialog: Dialog) -> None:
        logged.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    context.on("request", lambda request: logged.requests.append(request.url))
    page.goto(server.ui("/login"))
    page.get_by_label("Token").fill(server.tokens[user])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.ui("/"))
    return logged


@pytest.fixture
def pages(browser: Browser) -> Iterator[list[Logged]]:
    """Collect the pages a test opens and close their contexts after it."""
    opened: list[Logged] = []
    yield opened
    for logged in opened:
        logged.context.close()


def shots_dir() -> Path:
    """Return where screenshots go: docs/ui when asked to refresh them, else a temp dir."""
    if os.environ.get(UPDATE_SHOTS) == "1":
        return DOCS_SHOTS
    return Path(tempfile.gettempdir()) / "agent-memory-ui-shots"


def shot(page: Page, name: str) -> Path:
    """Save a screenshot of the page (for docs/ui.md when refreshing) and return its path."""
    folder = shots_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
