"""A person at the consent page, and an OAuth client's requests, over real HTTP against a running server."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2

from tests.serving import clean_env, console_script

REDIRECT = "http://127.0.0.1:33418/callback"


def origin_of(url: str) -> str:
    """Return scheme://host:port of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def field(html: str, name: str) -> str:
    """Return a hidden form field's value from the consent page."""
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, html
    return found.group(1)


def query(location: str) -> dict[str, str]:
    """Return the query parameters of a redirect."""
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def pkce() -> tuple[str, str]:
    """Return a (verifier, S256 challenge) pair."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


async def consent(authorize_url: str, user: str, password: str, decision: str = "allow") -> httpx2.Response:
    """Follow /authorize to the consent page and submit it as a browser would; return the final response."""
    async with httpx2.AsyncClient(timeout=30) as web:
        first = await web.get(authorize_url)
        if first.status_code != 302 or "/oauth/consent" not in first.headers["location"]:
            return first
        page_url = first.headers["location"]
        page = await web.get(page_url)
        assert page.status_code == 200, page.text
        form = {
            "request": field(page.text, "request"),
            "csrf": field(page.text, "csrf"),
            "username": user,
            "password": password,
            "decision": decision,
        }
        return await web.post(page_url, data=form, headers={"Origin": origin_of(page_url)})


@dataclass
class App:
    """One registered OAuth client of the server under test, driving the token endpoint by hand."""

    base: str
    client_id: str
    secret: str | None = None
    redirect: str = REDIRECT

    async def authorize_url(self, challenge: str, **extra: str) -> str:
        """Return the /authorize URL a client sends the browser to."""
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect,
            "state": "s-" + secrets.token_hex(4),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": f"{self.base}/mcp",
            **extra,
        }
        return f"{self.base}/authorize?{urlencode(params)}"

    async def code(self, user: str, password: str) -> tuple[str, str]:
        """Sign in as `user`; return (code, verifier)."""
        verifier, challenge = pkce()
        done = await consent(await self.authorize_url(challenge), user, password)
        assert done.status_code == 302, done.text
        return query(done.headers["location"])["code"], verifier

    async def token(self, **form: str) -> httpx2.Response:
        """POST to /token as this client."""
        data = {"client_id": self.client_id, **form}
        if self.secret:
            data["client_secret"] = self.secret
        async with httpx2.AsyncClient(timeout=30) as web:
            return await web.post(f"{self.base}/token", data=data)

    async def exchange(self, code: str, verifier: str | None) -> httpx2.Response:
        """Spend a code (with its verifier, unless None)."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect}
        return await self.token(**form, **({"code_verifier": verifier} if verifier is not None else {}))

    async def tokens(self, user: str, password: str) -> dict[str, Any]:
        """Run the whole grant for `user`; return the token response."""
        code, verifier = await self.code(user, password)
        response = await self.exchange(code, verifier)
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    async def refresh(self, refresh_token: str) -> httpx2.Response:
        """Spend a refresh token."""
        return await self.token(grant_type="refresh_token", refresh_token=refresh_token)


async def register(base: str, **metadata: Any) -> httpx2.Response:
    """POST a dynamic client registration."""
    body = {"redirect_uris": [REDIRECT], "client_name": "test client", "token_endpoint_auth_method": "none", **metadata}
    async with httpx2.AsyncClient(timeout=30) as web:
        return await web.post(f"{base}/register", json=body)


async def status(base: str, token: str) -> int:
    """Return the status of an MCP initialize sent with this bearer token."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    async with httpx2.AsyncClient(timeout=30) as web:
        return (await web.post(f"{base}/mcp", json=body, headers=headers)).status_code


def rows(data_dir: Path, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run one statement on the server's database (a second connection, as an operator would)."""
    db = sqlite3.connect(data_dir / "memory.sqlite3", timeout=30)
    try:
        with db:
            return db.execute(sql, params).fetchall()
    finally:
        db.close()


def digest(token: str) -> str:
    """Return a token's stored hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(data_dir: Path, name: str, password: str) -> subprocess.CompletedProcess[str]:
    """Run `agent-memory user add NAME --password-stdin`."""
    command = [console_script(), "--data-dir", str(data_dir), "user", "add", name, "--password-stdin"]
    return subprocess.run(command, input=password + "\n", env=clean_env(), capture_output=True, text=True, timeout=120)
