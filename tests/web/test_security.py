"""The page's gate over plain HTTP: tokens and cookies, CSRF and Origin, Host, headers, and one user per token."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.serving import bearer, clean_env, console_script, http_server
from tests.web.conftest import Server

pytestmark = pytest.mark.e2e

READY = "agent-memory: the page is at "


@pytest.fixture(scope="module")
def alices(server: Server) -> str:
    return str(server.call("alice", "remember", content="Alice's secret recipe uses cardamom.")["id"])


def signed_in(server: Server, user: str) -> tuple[httpx2.Client, str]:
    """Return a client holding a session cookie for the user, and the session's CSRF token."""
    client = httpx2.Client(base_url=server.origin, timeout=120)
    response = client.post(
        "/ui/login", data={"token": server.tokens[user]}, headers={"origin": server.origin}, follow_redirects=True
    )
    assert response.status_code == 200, response.text
    match = re.search(r'name="csrf" value="([^"]+)"', response.text)
    assert match
    return client, match.group(1)


def test_the_page_needs_a_token_and_a_token_sees_only_its_users_memories(server: Server, alices: str) -> None:
    with httpx2.Client(base_url=server.origin, timeout=120) as client:
        assert client.get("/ui/").status_code == 401
        assert client.get("/ui/", headers=bearer("not-a-token")).status_code == 401
        mine = client.get(f"/ui/memory/{alices}", headers=bearer(server.tokens["alice"]))
        assert mine.status_code == 200 and "cardamom" in mine.text
        assert client.get(f"/ui/memory/{alices}", headers=bearer(server.tokens["bob"])).status_code == 404
        for path in ("/ui/", "/ui/search?q=secret+recipe", "/ui/export", "/ui/namespaces"):
            response = client.get(path, headers=bearer(server.tokens["bob"]))
            assert response.status_code == 200 and "cardamom" not in response.text, path
        refused = client.post("/ui/forget", data={"ids": alices}, headers=bearer(server.tokens["bob"]))
        assert refused.status_code == 303
        assert client.get(f"/ui/memory/{alices}", headers=bearer(server.tokens["alice"])).status_code == 200


def test_a_post_needs_the_forms_token_and_this_pages_origin(server: Server, alices: str) -> None:
    client, csrf = signed_in(server, "alice")
    try:
        [session] = list(client.cookies.jar)
        assert session.has_nonstandard_attr("HttpOnly") and session.get_nonstandard_attr("SameSite") == "strict"
        form = {"ids": alices, "csrf": csrf}
        assert client.post("/ui/forget", data={"ids": alices}, headers={"origin": server.origin}).status_code == 403
        assert client.post("/ui/forget", data=form, headers={"origin": "http://evil.example"}).status_code == 403
        assert client.post("/ui/forget", data=form).status_code == 403  # no Origin at all
        wrong = {"ids": alices, "csrf": csrf[::-1]}
        assert client.post("/ui/forget", data=wrong, headers={"origin": server.origin}).status_code == 403
        assert client.get(f"/ui/memory/{alices}").status_code == 200  # still there
        # A bearer request from another origin is refused too (a browser page cannot send one; a proxy might).
        cross = {"origin": "http://evil.example", **bearer(server.tokens["alice"])}
        assert client.post("/ui/forget", data={"ids": alices}, headers=cross).status_code == 403
    finally:
        client.close()


def test_unknown_host_names_are_refused_and_every_page_carries_the_csp(server: Server) -> None:
    with httpx2.Client(base_url=server.origin, timeout=120) as client:
        assert client.get("/ui/login", headers={"host": "evil.example"}).status_code == 421
        response = client.get("/ui/login")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert client.get("/ui/static/app.css").headers["content-security-policy"]


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[str]:
    """Run `agent-memory ui --no-browser` and yield its sign-in link."""
    env = clean_env(AGENT_MEMORY_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.Popen(
        [console_script(), "ui", "--no-browser"], env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        assert proc.stderr is not None
        for raw in proc.stderr:  # bounded by the process: it exits or prints the link
            line = raw.decode().strip()
            if line.startswith(READY):
                yield line.removeprefix(READY)
                break
        else:
            raise AssertionError(f"agent-memory ui exited with {proc.wait()}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()


def test_agent_memory_ui_signs_in_once_with_the_link_it_prints(ui: str) -> None:
    assert ui.startswith("http://127.0.0.1:") and "/ui/login?token=" in ui
    origin = ui.split("/ui/")[0]
    with httpx2.Client(timeout=120) as client:
        assert client.get(f"{origin}/ui/").status_code == 401
        first = client.get(ui)
        assert first.status_code == 303 and first.headers["location"] == f"{origin}/ui/"
        cookie = first.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert client.get(f"{origin}/ui/").status_code == 200
    with httpx2.Client(timeout=120) as other:
        assert other.get(ui).status_code == 401  # the token was spent
        assert other.get(f"{origin}/ui/").status_code == 401


def test_without_tokens_on_loopback_the_page_opens_but_posts_still_need_its_form_token(tmp_path: Path) -> None:
    env = clean_env(AGENT_MEMORY_DATA_DIR=str(tmp_path / "data"))
    with http_server(env=env) as (url, _), httpx2.Client(timeout=120) as client:
        origin = url.removesuffix("/mcp")
        page = client.get(f"{origin}/ui/")
        assert page.status_code == 200 and "signed in as <strong>default</strong>" in page.text
        assert "samesite=strict" in page.headers["set-cookie"].lower()
        match = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert match
        headers = {"origin": origin}
        assert client.post(f"{origin}/ui/forget", data={"ids": "x"}, headers=headers).status_code == 403
        done = client.post(f"{origin}/ui/forget", data={"ids": "x", "csrf": match.group(1)}, headers=headers)
        assert done.status_code == 303
