"""OAuth 2.1 sign-in over real HTTP on loopback: the SDK's own OAuth client through the whole flow, and attacks."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

from tests.conftest import call
from tests.mcp.oauth_browser import (
    REDIRECT,
    App,
    add_user,
    consent,
    digest,
    field,
    pkce,
    query,
    register,
    rows,
    status,
)
from tests.serving import bearer, clean_env, http_server, transport

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

PASSWORDS = {"alice": "alice-" + secrets.token_hex(8), "bob": "bob-" + secrets.token_hex(8)}
CAROL = secrets.token_urlsafe(24)  # a static token beside OAuth


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One server with two users who sign in and a static token; no model (keyword recall is enough here)."""
    data = tmp_path_factory.mktemp("oauth") / "data"
    for name, password in PASSWORDS.items():
        assert add_user(data, name, password).returncode == 0
    env = clean_env(
        AGENT_MEMORY_DATA_DIR=str(data),
        AGENT_MEMORY_HTTP_TOKENS=f"{CAROL}:carol",
        AGENT_MEMORY_MODEL=str(data / "no-such-model"),
    )
    with http_server(env=env) as (url, _):
        yield url.removesuffix("/mcp"), data


@pytest.fixture(scope="module")
def app(server: tuple[str, Path]) -> App:
    """One public client registered for the attack tests (registration is rate limited)."""

    async def registered() -> App:
        response = await register(server[0])
        assert response.status_code == 201, response.text
        return App(server[0], response.json()["client_id"])

    return anyio.run(registered)


class Storage:
    """The SDK client's token storage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def sdk_client(url: str, user: str, storage: Storage) -> OAuthClientProvider:
    """Return the SDK's OAuth client, whose browser signs in as `user` at the consent page."""
    redirected: dict[str, str] = {}

    async def redirect_handler(authorize_url: str) -> None:
        done = await consent(authorize_url, user, PASSWORDS[user])
        assert done.status_code == 302, done.text
        redirected.update(query(done.headers["location"]))

    async def callback_handler() -> AuthorizationCodeResult:
        return AuthorizationCodeResult(code=redirected["code"], state=redirected.get("state"))

    metadata = OAuthClientMetadata(
        redirect_uris=[AnyUrl(REDIRECT)],
        client_name="SDK test client",
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
    )
    return OAuthClientProvider(url, metadata, storage, redirect_handler, callback_handler)


@asynccontextmanager
async def signed_in(url: str, auth: OAuthClientProvider) -> AsyncIterator[Any]:
    """Open a streamable HTTP transport whose requests the SDK's OAuth client authorizes."""
    async with (
        httpx2.AsyncClient(auth=auth, timeout=httpx2.Timeout(30, read=120)) as http,
        streamable_http_client(url, http_client=http) as streams,
    ):
        yield streams


async def test_the_sdk_oauth_client_signs_in_uses_tools_refreshes_and_is_revoked(server: tuple[str, Path]) -> None:
    base, data = server
    url = f"{base}/mcp"
    async with httpx2.AsyncClient(timeout=30) as web:
        refused = await web.post(url, json={})
    assert refused.status_code == 401
    assert f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"' in refused.headers["www-authenticate"]

    storage = Storage()
    auth = sdk_client(url, "alice", storage)
    note = f"Alice parks in bay {secrets.randbelow(1000)}."
    with anyio.fail_after(120):
        async with Client(signed_in(url, auth)) as client:
            await call(client, "remember", content=note)
            recent = await call(client, "load_recent", limit=5)
    assert recent["messages"][-1]["content"] == note
    assert rows(data, "SELECT user FROM memories WHERE content = ?", (note,)) == [("alice",)]
    assert storage.tokens is not None and storage.client is not None
    first = storage.tokens
    assert first.refresh_token and first.expires_in == 3600

    auth.context.token_expiry_time = time.time() - 1  # the access token has run out: the client refreshes
    with anyio.fail_after(120):
        async with Client(signed_in(url, auth)) as client:
            assert (await call(client, "load_recent", limit=5))["messages"][-1]["content"] == note
    second = storage.tokens
    assert second is not None and second.access_token != first.access_token
    assert second.refresh_token != first.refresh_token
    assert await status(base, first.access_token) == 401  # rotation ended the old access token
    assert await status(base, second.access_token) == 200

    async with httpx2.AsyncClient(timeout=30) as web:
        client = {"client_id": storage.client.client_id or "", "client_secret": storage.client.client_secret or ""}
        assert client["client_secret"]  # the SDK client registered as a confidential client
        anonymous = await web.post(
            f"{base}/revoke", data={"token": second.access_token, "client_id": client["client_id"]}
        )
        assert anonymous.status_code == 401 and await status(base, second.access_token) == 200
        revoked = await web.post(f"{base}/revoke", data={"token": second.access_token, **client})
    assert revoked.status_code == 200
    assert await status(base, second.access_token) == 401
    assert rows(data, "SELECT COUNT(*) FROM oauth_tokens WHERE user = 'alice' AND used = 0") == [(0,)]


async def test_an_oauth_token_sees_exactly_its_users_memories(server: tuple[str, Path], app: App) -> None:
    base, _ = server
    alice = (await app.tokens("alice", PASSWORDS["alice"]))["access_token"]
    bob = (await app.tokens("bob", PASSWORDS["bob"]))["access_token"]
    secret = f"Alice's safe code is {secrets.randbelow(10**6):06d}."

    async def as_user(token: str, steps: Any) -> Any:
        with anyio.fail_after(120):
            async with Client(transport(f"{base}/mcp", bearer(token))) as client:
                return await steps(client)

    async def write(client: Client) -> str:
        return str((await call(client, "remember", content=secret))["id"])

    memory_id = await as_user(alice, write)

    async def look(client: Client) -> None:
        found = await call(client, "recall", query="safe code", limit=50)
        assert all("safe code" not in h["content"] for h in found["hits"])
        recent = await call(client, "load_recent", limit=200)
        assert all("safe code" not in m["content"] for m in recent["messages"])
        assert (await client.call_tool("forget", {"id": memory_id})).is_error
        text = getattr((await client.read_resource("memory://recent")).contents[0], "text", "")
        assert "safe code" not in text

    await as_user(bob, look)
    await as_user(CAROL, look)  # the static token, beside OAuth, is carol's alone

    async def still_there(client: Client) -> None:
        assert memory_id in [h["id"] for h in (await call(client, "recall", query="safe code"))["hits"]]

    await as_user(alice, still_there)


async def test_a_code_works_once_and_its_reuse_revokes_what_it_issued(server: tuple[str, Path], app: App) -> None:
    code, verifier = await app.code("alice", PASSWORDS["alice"])
    first = await app.exchange(code, verifier)
    assert first.status_code == 200
    again = await app.exchange(code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert await status(server[0], first.json()["access_token"]) == 401
    assert (await app.refresh(first.json()["refresh_token"])).status_code == 400


async def test_a_wrong_or_missing_verifier_gets_no_token(server: tuple[str, Path], app: App) -> None:
    _, data = server
    before = rows(data, "SELECT COUNT(*) FROM oauth_tokens")
    code, verifier = await app.code("alice", PASSWORDS["alice"])
    wrong = await app.exchange(code, pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    missing = await app.exchange(code, None)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    assert rows(data, "SELECT COUNT(*) FROM oauth_tokens") == before
    assert (await app.exchange(code, verifier)).status_code == 200  # the code itself was good


async def test_the_plain_pkce_method_and_a_missing_challenge_are_refused(server: tuple[str, Path], app: App) -> None:
    _, data = server
    verifier, _ = pkce()
    codes = rows(data, "SELECT COUNT(*) FROM oauth_codes")
    plain = await consent(await app.authorize_url(verifier, code_challenge_method="plain"), "alice", PASSWORDS["alice"])
    assert plain.status_code in (302, 400)
    assert "code=" not in plain.headers.get("location", "") and "invalid_request" in (
        plain.headers.get("location", "") + plain.text
    )
    url = await app.authorize_url("x")
    no_challenge = await consent(url.replace("code_challenge=x&", ""), "alice", PASSWORDS["alice"])
    assert "code=" not in no_challenge.headers.get("location", "")
    assert rows(data, "SELECT COUNT(*) FROM oauth_codes") == codes


async def test_only_the_registered_redirect_uri_is_used(server: tuple[str, Path], app: App) -> None:
    _, data = server
    codes = rows(data, "SELECT COUNT(*) FROM oauth_codes")
    _, challenge = pkce()
    for other in ("https://evil.example/callback", REDIRECT + "x", REDIRECT.replace("callback", "callbacK")):
        refused = await consent(await app.authorize_url(challenge, redirect_uri=other), "alice", PASSWORDS["alice"])
        assert refused.status_code == 400 and "location" not in refused.headers, other
        assert "not registered" in refused.json()["error_description"]
    assert rows(data, "SELECT COUNT(*) FROM oauth_codes") == codes
    # RFC 8252: a loopback redirect may come back on another port; the token request must name the same one.
    moved = App(app.base, app.client_id, redirect=REDIRECT.replace("33418", "40001"))
    code, verifier = await moved.code("alice", PASSWORDS["alice"])
    changed = await app.exchange(code, verifier)
    assert changed.status_code == 400 and "redirect_uri" in changed.json()["error_description"]
    assert (await moved.exchange(code, verifier)).status_code == 200


async def test_a_refresh_token_used_twice_revokes_the_whole_family(server: tuple[str, Path], app: App) -> None:
    tokens = await app.tokens("bob", PASSWORDS["bob"])
    rotated = await app.refresh(tokens["refresh_token"])
    assert rotated.status_code == 200
    newer = rotated.json()
    assert await status(server[0], newer["access_token"]) == 200
    replay = await app.refresh(tokens["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert await status(server[0], newer["access_token"]) == 401
    assert (await app.refresh(newer["refresh_token"])).status_code == 400


async def test_an_expired_or_foreign_resource_token_is_refused(server: tuple[str, Path], app: App) -> None:
    base, data = server
    expiring = (await app.tokens("alice", PASSWORDS["alice"]))["access_token"]
    assert await status(base, expiring) == 200
    rows(data, "UPDATE oauth_tokens SET expires_ts = ? WHERE token_hash = ?", (time.time() - 1, digest(expiring)))
    assert await status(base, expiring) == 401

    elsewhere = (await app.tokens("alice", PASSWORDS["alice"]))["access_token"]
    rows(data, "UPDATE oauth_tokens SET resource = 'http://127.0.0.1:1/mcp' WHERE token_hash = ?", (digest(elsewhere),))
    assert await status(base, elsewhere) == 401

    _, challenge = pkce()
    asked = await consent(
        await app.authorize_url(challenge, resource="https://other.example/mcp"), "alice", PASSWORDS["alice"]
    )
    assert asked.status_code == 302 and query(asked.headers["location"])["error"] == "invalid_target"


async def test_the_consent_form_refuses_csrf_foreign_origins_and_wrong_passwords(
    server: tuple[str, Path], app: App
) -> None:
    base, data = server
    codes = rows(data, "SELECT COUNT(*) FROM oauth_codes")
    _, challenge = pkce()
    async with httpx2.AsyncClient(timeout=30) as web:
        page_url = (await web.get(await app.authorize_url(challenge))).headers["location"]
        page = await web.get(page_url)
        assert "script-src" not in page.headers["content-security-policy"]
        assert "default-src 'none'" in page.headers["content-security-policy"] and "<script" not in page.text
        form = {"request": field(page.text, "request"), "csrf": field(page.text, "csrf"), "decision": "allow"}
        form |= {"username": "alice", "password": PASSWORDS["alice"]}
        here = {"Origin": base}
        forged = await web.post(page_url, data={**form, "csrf": "forged"}, headers=here)
        assert forged.status_code == 403
        async with httpx2.AsyncClient(timeout=30) as other_browser:  # the form's token without the page's cookie
            assert (await other_browser.post(page_url, data=form, headers=here)).status_code == 403
        foreign = await web.post(page_url, data=form, headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403
        assert (await web.post(page_url, data=form)).status_code == 403  # no Origin at all
        rebound = await web.get(page_url, headers={"Host": "evil.example"})
        assert rebound.status_code == 421
        wrong = await web.post(page_url, data={**form, "password": "not-it-at-all"}, headers=here)
        assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
        assert rows(data, "SELECT COUNT(*) FROM oauth_codes") == codes
        granted = await web.post(page_url, data=form, headers=here)
        assert granted.status_code == 302 and "code" in query(granted.headers["location"])
        assert (await web.post(page_url, data=form, headers=here)).status_code == 404  # decided once


async def test_the_page_escapes_the_client_name_and_a_denial_says_so(server: tuple[str, Path]) -> None:
    base, _ = server
    registered = await register(base, client_name='<script>alert("x")</script>')
    hostile = App(base, registered.json()["client_id"])
    _, challenge = pkce()
    async with httpx2.AsyncClient(timeout=30) as web:
        page = await web.get((await web.get(await hostile.authorize_url(challenge))).headers["location"])
    assert "<script>" not in page.text and "&lt;script&gt;alert(&quot;x&quot;)" in page.text
    denied = await consent(await hostile.authorize_url(challenge), "alice", PASSWORDS["alice"], decision="deny")
    assert query(denied.headers["location"])["error"] == "access_denied"


async def test_registration_refuses_redirects_that_could_leak_a_code(server: tuple[str, Path]) -> None:
    for uri in ("http://evil.example/cb", "https://evil.example/cb#frag"):
        refused = await register(server[0], redirect_uris=[uri])
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_redirect_uri"
