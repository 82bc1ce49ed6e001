"""OAuth across two real HTTP servers on one Postgres database: what one server issues, the other honours.

Both servers have the same public origin (AGENT_MEMORY_OAUTH_ISSUER_URL), as N servers behind one load balancer
do; here the origin is server A's own address, so the browser's consent happens at A, and every other step is
sent to B on purpose. B knows the client A registered, the code A issued, the secret A derived for that client
(the client-secret key is in the database's kv table), and the tokens; a grant revoked at B is refused at A.
No model (keyword recall is enough).
"""

from __future__ import annotations

import secrets
import socket
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp.client import Client

from tests.conftest import call
from tests.mcp.oauth_browser import REDIRECT, consent, pkce, query, register, status
from tests.postgres import PostgresServer
from tests.serving import bearer, clean_env, console_script, http_process, transport

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

PASSWORD = "alice-" + secrets.token_hex(8)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def servers(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Start A (at the issuer's address) and B on one database with one user; yield their base URLs."""
    url = postgres_server.create()
    command = [console_script(), "--database-url", url, "--data-dir", str(tmp_path / "cli"), "user", "add", "alice"]
    added = subprocess.run(
        [*command, "--password-stdin"], input=PASSWORD + "\n", env=clean_env(), capture_output=True, text=True
    )
    assert added.returncode == 0, added.stderr
    port = _free_port()
    issuer = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        bases = []
        for name, args in (("a", ["--port", str(port)]), ("b", [])):
            env = clean_env(
                AGENT_MEMORY_DATA_DIR=str(tmp_path / name),
                AGENT_MEMORY_MODEL=str(tmp_path / "no-such-model"),
                AGENT_MEMORY_OAUTH_ISSUER_URL=issuer,
            )
            mcp_url, _, _ = stack.enter_context(http_process(["--database-url", url, *args], env, timeout=120))
            bases.append(mcp_url.removesuffix("/mcp"))
        assert bases[0] == issuer
        yield bases[0], bases[1]


async def _post(url: str, **form: str) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=30) as web:
        return await web.post(url, data=form)


async def test_a_token_issued_through_one_server_is_honoured_and_revoked_through_another(
    servers: tuple[str, str],
) -> None:
    a, b = servers
    # A confidential client registered at A; its secret is derived from the key in the database.
    registered = await register(a, token_endpoint_auth_method="client_secret_post")
    assert registered.status_code == 201, registered.text
    client_id, secret = registered.json()["client_id"], registered.json()["client_secret"]
    code, verifier = await _code(a, client_id)  # the browser's part, at the issuer
    client = {"client_id": client_id, "client_secret": secret}
    wrong = await _post(
        f"{b}/token", client_id=client_id, client_secret="x" * 43, grant_type="authorization_code", code=code
    )
    assert wrong.status_code == 401, wrong.text  # B checks the secret it derives, not any secret
    exchanged = await _exchange(b, client, code, verifier)
    assert exchanged.status_code == 200, exchanged.text
    tokens = exchanged.json()
    assert await status(a, tokens["access_token"]) == 200
    assert await status(b, tokens["access_token"]) == 200
    note = f"The spare key is under pot {secrets.randbelow(10**6):06d}."

    async def as_alice(base: str, token: str, steps: Any) -> Any:
        with anyio.fail_after(120):
            async with Client(transport(f"{base}/mcp", bearer(token))) as session:
                return await steps(session)

    async def write(session: Client) -> str:
        return str((await call(session, "remember", content=note))["id"])

    async def find(session: Client) -> list[str]:
        return [h["id"] for h in (await call(session, "recall", query="spare key pot"))["hits"]]

    written = await as_alice(a, tokens["access_token"], write)
    assert written in await as_alice(b, tokens["access_token"], find)
    # Refreshed at A, the rotated refresh token is spent at B; spent again at A, the whole grant is revoked.
    refreshed = await _post(f"{a}/token", **client, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    third = await _post(f"{b}/token", **client, grant_type="refresh_token", refresh_token=second["refresh_token"])
    assert third.status_code == 200, third.text
    replayed = await _post(f"{a}/token", **client, grant_type="refresh_token", refresh_token=second["refresh_token"])
    assert replayed.status_code == 400, replayed.text
    assert await status(b, third.json()["access_token"]) == 401
    # A fresh grant revoked through B is refused at A.
    code, verifier = await _code(a, client_id)
    fresh = await _exchange(a, client, code, verifier)
    assert fresh.status_code == 200, fresh.text
    access = fresh.json()["access_token"]
    assert await status(a, access) == 200
    revoked = await _post(f"{b}/revoke", **client, token=access)
    assert revoked.status_code == 200, revoked.text
    assert await status(a, access) == 401 and await status(b, access) == 401


async def _exchange(base: str, client: dict[str, str], code: str, verifier: str) -> httpx2.Response:
    """Exchange an authorization code at this server's token endpoint."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    return await _post(f"{base}/token", **client, **form)


async def _code(base: str, client_id: str) -> tuple[str, str]:
    """Sign alice in at the issuer for this client; return (code, verifier)."""
    verifier, challenge = pkce()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "state": "s2",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": f"{base}/mcp",
    }
    done = await consent(str(httpx2.URL(f"{base}/authorize", params=params)), "alice", PASSWORD)
    assert done.status_code == 302, done.text
    return query(done.headers["location"])["code"], verifier
