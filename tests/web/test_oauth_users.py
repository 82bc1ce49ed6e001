"""With OAuth sign-in on, the page takes the same users: their passwords and OAuth access tokens, one user each."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx2
import pytest
from playwright.sync_api import Browser, expect

from agent_memory.config import Settings
from tests.mcp.oauth_browser import App, add_user, register
from tests.serving import clean_env, http_server
from tests.web.conftest import WAIT_MS, Logged, Server, shot

pytestmark = pytest.mark.e2e

PASSWORDS = {"alice": "alice-" + secrets.token_hex(8), "bob": "bob-" + secrets.token_hex(8)}
TEAPOT = "Alice keeps the spare key in the blue teapot."
CAROL = secrets.token_urlsafe(24)  # a static token beside OAuth


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose users sign in with passwords (OAuth on); Alice's and Bob's OAuth access tokens as theirs."""
    data = tmp_path_factory.mktemp("oauth-page") / "data"
    for name, password in PASSWORDS.items():
        assert add_user(data, name, password).returncode == 0
    # No model: keyword recall is enough to show whose memories a page holds.
    env = clean_env(
        AGENT_MEMORY_DATA_DIR=str(data),
        AGENT_MEMORY_HTTP_TOKENS=f"{CAROL}:carol",
        AGENT_MEMORY_MODEL=str(data / "no-such-model"),
    )
    with http_server(env=env) as (url, _):
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"

        async def access_tokens() -> dict[str, str]:
            registered = await register(origin)
            assert registered.status_code == 201, registered.text
            app = App(origin, registered.json()["client_id"])
            return {user: (await app.tokens(user, password))["access_token"] for user, password in PASSWORDS.items()}

        # Off this thread: Playwright's sync API may hold an event loop on it.
        with ThreadPoolExecutor(1) as pool:
            tokens = pool.submit(anyio.run, access_tokens).result(timeout=300)
        yield Server(origin, url, {**tokens, "carol": CAROL})


@pytest.fixture(scope="module")
def alices(server: Server) -> str:
    """Alice's memory, stored over MCP with her OAuth access token."""
    return str(server.call("alice", "remember", content=TEAPOT)["id"])


def with_password(browser: Browser, server: Server, user: str, password: str) -> Logged:
    """Open a browser context and sign in on the page's form with a user name and password."""
    context = browser.new_context()
    context.set_default_timeout(WAIT_MS)
    logged = Logged(context.new_page(), context)
    logged.page.goto(server.ui("/login"))
    logged.page.get_by_label("User").fill(user)
    logged.page.get_by_label("Password").fill(password)
    logged.page.get_by_role("button", name="Sign in", exact=True).click()
    return logged


def test_a_user_signs_in_with_their_password_and_sees_only_their_memories(
    browser: Browser, server: Server, alices: str
) -> None:
    alice = with_password(browser, server, "alice", PASSWORDS["alice"])
    bob = with_password(browser, server, "bob", PASSWORDS["bob"])
    try:
        alice.page.wait_for_url(server.ui("/"))
        expect(alice.page.locator(".who")).to_contain_text("alice")
        expect(alice.page.locator("article.memory .content")).to_have_text([TEAPOT])
        bob.page.wait_for_url(server.ui("/"))
        expect(bob.page.locator(".who")).to_contain_text("bob")
        expect(bob.page.locator("article.memory")).to_have_count(0)
        bob.page.goto(server.ui("/search?q=spare+key+teapot"))
        expect(bob.page.locator("article.memory")).to_have_count(0)
        response = bob.page.goto(server.ui(f"/memory/{alices}"))
        assert response is not None and response.status == 404
        # Her edits and exports are hers only: Bob's export of everything holds no memory.
        exported = bob.context.request.get(server.ui("/export"))
        assert exported.ok and "teapot" not in exported.text() and '"type": "memory"' not in exported.text()
    finally:
        alice.context.close()
        bob.context.close()


def test_a_wrong_password_or_an_unknown_user_is_refused(browser: Browser, server: Server) -> None:
    for user, password in (("alice", PASSWORDS["bob"]), ("mallory", PASSWORDS["alice"])):
        logged = with_password(browser, server, user, password)
        try:
            expect(logged.page.get_by_role("alert")).to_have_text("Wrong user name or password.")
            if user == "alice":
                shot(logged.page, "login")
            assert logged.page.goto(server.ui("/")).status == 401  # type: ignore[union-attr]
        finally:
            logged.context.close()


def test_an_oauth_access_token_opens_the_page_for_its_user_only(browser: Browser, server: Server, alices: str) -> None:
    def as_bearer(token: str) -> Logged:
        context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {token}"})
        context.set_default_timeout(WAIT_MS)
        return Logged(context.new_page(), context)

    alice, bob, nobody = as_bearer(server.tokens["alice"]), as_bearer(server.tokens["bob"]), as_bearer("not-a-token")
    try:
        alice.page.goto(server.ui("/"))
        expect(alice.page.locator("article.memory .content")).to_have_text([TEAPOT])
        assert alice.page.goto(server.ui(f"/memory/{alices}")).status == 200  # type: ignore[union-attr]
        bob.page.goto(server.ui("/"))
        expect(bob.page.locator(".who")).to_contain_text("bob")
        expect(bob.page.locator("article.memory")).to_have_count(0)
        assert bob.page.goto(server.ui(f"/memory/{alices}")).status == 404  # type: ignore[union-attr]
        assert "teapot" not in bob.context.request.get(server.ui("/export")).text()
        assert nobody.page.goto(server.ui("/")).status == 401  # type: ignore[union-attr]
    finally:
        for logged in (alice, bob, nobody):
            logged.context.close()
    # The same token typed into the sign-in form gives a session of that user too.
    with httpx2.Client(base_url=server.origin, timeout=120) as client:
        signed = client.post(
            "/ui/login", data={"token": server.tokens["bob"]}, headers={"origin": server.origin}, follow_redirects=True
        )
        assert signed.status_code == 200 and "teapot" not in signed.text and "<strong>bob</strong>" in signed.text
        assert client.get(f"/ui/memory/{alices}").status_code == 404


def test_with_oauth_users_and_no_token_the_loopback_page_is_not_open(tmp_path: Path) -> None:
    from agent_memory.web.security import Guard

    settings = Settings(data_dir=tmp_path)
    assert Guard.for_settings(settings).open_access  # no tokens, no users, loopback: as MCP allows
    users = Guard.for_settings(settings, lambda: pytest.fail("not called"), "http://127.0.0.1:1/mcp")
    assert not users.open_access
