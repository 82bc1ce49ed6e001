"""Setting OAuth up: the user and token commands, when it is on, the issuer URL, and the registration rate limit."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import anyio
import httpx2
import pytest

from agent_memory.config import load_settings
from agent_memory.errors import ConfigError
from tests.mcp.oauth_browser import App, add_user, register, rows, status
from tests.serving import clean_env, console_script, http_server

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

PASSWORD = "dana-" + secrets.token_hex(8)


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run an agent-memory command on this data dir."""
    command = [console_script(), "--data-dir", str(data), *args]
    return subprocess.run(command, env=clean_env(), capture_output=True, text=True, timeout=120)


def no_model(data: Path, **extra: str) -> dict[str, str]:
    """Return a server environment on this data dir that loads no model."""
    return clean_env(AGENT_MEMORY_DATA_DIR=str(data), AGENT_MEMORY_MODEL=str(data / "no-such-model"), **extra)


async def test_a_registration_flood_is_rate_limited_and_nothing_is_stored(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert add_user(data, "dana", PASSWORD).returncode == 0
    with http_server(env=no_model(data)) as (url, _):
        base = url.removesuffix("/mcp")
        with anyio.fail_after(120):
            answers = [(await register(base)).status_code for _ in range(15)]
    assert answers == [201] * 10 + [429] * 5
    assert rows(data, "SELECT COUNT(*) FROM oauth_clients") == [(10,)]


async def test_user_and_token_commands_manage_who_signs_in(tmp_path: Path) -> None:
    data = tmp_path / "data"
    short = add_user(data, "dana", "short")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    assert add_user(data, "dana", PASSWORD).returncode == 0
    assert add_user(data, "erin", PASSWORD + "e").returncode == 0
    listed = json.loads(cli(data, "user", "list", "--json").stdout)
    assert [u["name"] for u in listed] == ["dana", "erin"]
    assert rows(data, "SELECT password_hash LIKE 'scrypt$%' FROM users") == [(1,), (1,)]
    with http_server(env=no_model(data)) as (url, _):
        base = url.removesuffix("/mcp")
        app = App(base, (await register(base)).json()["client_id"])
        dana = await app.tokens("dana", PASSWORD)
        erin = await app.tokens("erin", PASSWORD + "e")
        grants = json.loads(cli(data, "token", "list", "--json").stdout)
        assert sorted(g["user"] for g in grants) == ["dana", "erin"]
        assert all(g["client"] == "test client" for g in grants)
        assert str(dana["access_token"]) not in json.dumps(grants)
        dana_grant = next(g["grant"] for g in grants if g["user"] == "dana")
        assert cli(data, "token", "revoke", dana_grant[:8]).returncode == 0
        assert await status(base, dana["access_token"]) == 401
        assert (await app.refresh(dana["refresh_token"])).status_code == 400
        assert await status(base, erin["access_token"]) == 200
        assert cli(data, "user", "remove", "erin").returncode == 0
        assert await status(base, erin["access_token"]) == 401
        assert cli(data, "user", "remove", "erin").returncode == 1
    for secret in (PASSWORD, dana["access_token"], dana["refresh_token"]):
        dump = (data / "memory.sqlite3").read_bytes()
        assert secret.encode() not in dump  # everything is stored hashed


async def test_oauth_can_be_turned_off_and_static_tokens_keep_working(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert add_user(data, "dana", PASSWORD).returncode == 0
    token = secrets.token_urlsafe(24)
    with http_server(env=no_model(data, AGENT_MEMORY_OAUTH="0", AGENT_MEMORY_HTTP_TOKENS=f"{token}:dana")) as (url, _):
        base = url.removesuffix("/mcp")
        async with httpx2.AsyncClient(timeout=30) as web:
            assert (await web.get(f"{base}/.well-known/oauth-authorization-server")).status_code == 404
            assert (await web.post(f"{base}/register", json={})).status_code == 404
        assert await status(base, token) == 200


def test_a_public_address_with_users_needs_the_issuer_url(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert add_user(data, "dana", PASSWORD).returncode == 0
    command = [console_script(), "serve", "--transport", "http", "--host", "0.0.0.0", "--port", "0"]
    done = subprocess.run(command, env=no_model(data), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "AGENT_MEMORY_OAUTH_ISSUER_URL" in done.stderr


def test_the_issuer_url_is_a_public_https_origin() -> None:
    assert load_settings({"AGENT_MEMORY_OAUTH_ISSUER_URL": "https://memory.example.com"}).oauth_issuer_url
    assert load_settings({"AGENT_MEMORY_OAUTH_ISSUER_URL": "http://localhost:8765"}).oauth_issuer_url
    for bad in ("http://memory.example.com", "https://memory.example.com/mcp", "https://x.example/?a=1", "memory"):
        with pytest.raises(ConfigError, match="AGENT_MEMORY_OAUTH_ISSUER_URL"):
            load_settings({"AGENT_MEMORY_OAUTH_ISSUER_URL": bad})


async def test_behind_a_proxy_the_issuer_url_names_everything_and_is_the_accepted_host(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert add_user(data, "dana", PASSWORD).returncode == 0
    token = secrets.token_urlsafe(24)
    public = "https://memory.example.com"
    env = no_model(data, AGENT_MEMORY_OAUTH_ISSUER_URL=public, AGENT_MEMORY_HTTP_TOKENS=f"{token}:dana")
    proxied = {"Host": "memory.example.com"}  # what Caddy (or nginx with proxy_set_header Host) forwards
    with http_server(env=env) as (url, _):
        base = url.removesuffix("/mcp")
        async with httpx2.AsyncClient(timeout=30, headers=proxied) as web:
            metadata = (await web.get(f"{base}/.well-known/oauth-protected-resource/mcp")).json()
            assert metadata == {**metadata, "resource": f"{public}/mcp", "authorization_servers": [public]}
            refused = await web.post(f"{base}/mcp", json={})
            assert f'resource_metadata="{public}/.well-known/oauth-protected-resource/mcp"' in str(
                refused.headers["www-authenticate"]
            )
            client_id = (await web.post(f"{base}/register", json={"redirect_uris": ["http://127.0.0.1:9/cb"]})).json()
            app = App(
                public, client_id["client_id"], secret=client_id.get("client_secret"), redirect="http://127.0.0.1:9/cb"
            )
            authorize = (await app.authorize_url("x" * 43)).replace(public, base)
            consent_url = (await web.get(authorize)).headers["location"]
            assert consent_url.startswith(f"{public}/oauth/consent?request=")
            page = await web.get(consent_url.replace(public, base))
            assert page.status_code == 200 and "Secure" in page.headers["set-cookie"]
            direct = await web.get(consent_url.replace(public, base), headers={"Host": url.split("/")[2]})
            assert direct.status_code == 421
        assert await status(base, token) == 200  # loopback names still work for local clients
        async with httpx2.AsyncClient(timeout=30) as web:
            body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            evil = await web.post(
                f"{base}/mcp", json=body, headers={"Host": "evil.example", "Authorization": f"Bearer {token}"}
            )
            assert evil.status_code == 421
