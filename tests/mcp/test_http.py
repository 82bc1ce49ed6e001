"""The server over streamable HTTP: a real process on a free loopback port, a real MCP client, bearer tokens."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp.client import Client
from mcp_types import PromptReference

from agent_memory.config import load_settings
from agent_memory.errors import ConfigError
from agent_memory.mcp.context import SESSION_HEADER as SESSION
from agent_memory.mcp.server import build_server
from tests.conftest import MODES, call
from tests.serving import bearer, clean_env, console_script, http_server, transport

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

ALICE = secrets.token_urlsafe(24)
BOB = secrets.token_urlsafe(24)
ALICE_LAPTOP = secrets.token_urlsafe(24)  # alice's second client: the same user, another token
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the module (one model load): two users, each with a token."""
    env = clean_env(
        AGENT_MEMORY_DATA_DIR=str(tmp_path_factory.mktemp("http") / "data"),
        AGENT_MEMORY_HTTP_TOKENS=f"{ALICE}:alice,{BOB}:bob,{ALICE_LAPTOP}:alice",
        AGENT_MEMORY_MODEL_WAIT_SECONDS="240",
    )
    with http_server(env=env) as (url, _):
        yield url


async def _as(url: str, token: str, steps: Any, mode: str = "auto") -> Any:
    with anyio.fail_after(300):
        async with Client(transport(url, bearer(token)), mode=mode) as client:
            return await steps(client)


async def test_every_tool_works_over_http_and_recall_is_hybrid(server: str) -> None:
    async def steps(client: Client) -> None:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert tools == {"remember", "recall", "load_recent", "summarize_history", "forget"}
        kept = await call(client, "remember", content="I keep my bicycle in the garden shed.", tags=["home"])
        gone = await call(client, "remember", content="Temporary note about the plumber visit.")
        found = await call(client, "recall", query="Where is the bike stored?")
        assert found["mode"] == "hybrid" and found["hits"][0]["id"] == kept["id"]
        recent = await call(client, "load_recent")
        assert [m["id"] for m in recent["messages"]][-2:] == [kept["id"], gone["id"]]
        summary = await call(client, "summarize_history")
        assert summary["covers"]["count"] >= 2
        assert (await call(client, "forget", id=gone["id"]))["deleted"] is True
        bad = await client.call_tool("recall", {"query": "x", "limit": 500})
        assert bad.is_error

    await _as(server, ALICE, steps)


@pytest.mark.parametrize("mode", MODES)
async def test_a_token_never_sees_another_tokens_memories(server: str, mode: str) -> None:
    secret = f"Alice's locker code is {secrets.randbelow(10**6):06d} ({mode})."

    async def alice_writes(client: Client) -> str:
        await call(client, "remember", content="Filed away.", namespace=f"alice-private-{mode}")
        stored: dict[str, Any] = await call(client, "remember", content=secret)
        return str(stored["id"])

    alice_id = await _as(server, ALICE, alice_writes, mode)

    async def bob_looks(client: Client) -> None:
        await call(client, "remember", content=f"Bob likes green tea ({mode}).")
        found = await call(client, "recall", query="Alice locker code", limit=50)
        assert all(h["id"] != alice_id and "locker" not in h["content"] for h in found["hits"])
        recent = await call(client, "load_recent", limit=200)
        assert recent["messages"] and all("locker" not in m["content"] for m in recent["messages"])
        summary = await call(client, "summarize_history")
        assert "locker" not in summary["summary"]
        denied = await client.call_tool("forget", {"id": alice_id})
        assert denied.is_error
        resource = (await client.read_resource("memory://recent")).contents[0]
        assert "Bob likes green tea" in getattr(resource, "text", "") and "locker" not in getattr(resource, "text", "")
        prompt = await client.get_prompt("where_we_left_off", {})
        assert "locker" not in json.dumps(prompt.model_dump(mode="json"))
        ref = PromptReference(type="ref/prompt", name="where_we_left_off")
        assert (await client.complete(ref, {"name": "namespace", "value": "alice"})).completion.values == []

    await _as(server, BOB, bob_looks, mode)

    async def alice_still_has_it(client: Client) -> None:
        found = await call(client, "recall", query="Alice locker code", limit=50)
        assert alice_id in [h["id"] for h in found["hits"]]
        ref = PromptReference(type="ref/prompt", name="where_we_left_off")
        completed = await client.complete(ref, {"name": "namespace", "value": "alice"})
        assert f"alice-private-{mode}" in completed.completion.values
        assert all("green tea" not in h["content"] for h in found["hits"])

    await _as(server, ALICE, alice_still_has_it, mode)


async def test_each_http_connection_gets_its_own_default_session(server: str) -> None:
    async def one(client: Client) -> str:
        stored = await call(client, "remember", content=f"Session probe {secrets.token_hex(4)}")
        recent = await call(client, "load_recent", limit=1)
        assert recent["messages"][-1]["id"] == stored["id"]
        return str(recent["messages"][-1]["session_id"])

    first = await _as(server, ALICE, one, "legacy")
    second = await _as(server, ALICE, one, "legacy")
    assert first != second


async def test_each_session_less_client_gets_a_session_of_its_own(server: str) -> None:
    """Two clients of one user over the session-less protocol: their writes and load_recent never mix."""

    def client(token: str, **headers: str) -> Any:
        return Client(transport(server, {**bearer(token), **headers}), mode="auto")

    tag = secrets.token_hex(4)
    with anyio.fail_after(300):
        async with (
            client(ALICE) as desk,
            client(ALICE_LAPTOP) as laptop,
            client(ALICE, **{SESSION: "pair-" + tag}) as named,
        ):
            mine = {
                name: await call(c, "remember", content=f"{name} note {tag}")
                for name, c in (("desk", desk), ("laptop", laptop), ("named", named))
            }
            sessions = {}
            for name, c in (("desk", desk), ("laptop", laptop), ("named", named)):
                newest = (await call(c, "load_recent", limit=3))["messages"]
                sessions[name] = next(m["session_id"] for m in newest if m["id"] == mine[name]["id"])
            assert len(set(sessions.values())) == 3 and sessions["named"] == f"pair-{tag}"
            for name, c in (("desk", desk), ("laptop", laptop), ("named", named)):
                own = (await call(c, "load_recent", session_id=sessions[name], limit=200))["messages"]
                assert [m["id"] for m in own if tag in m["content"]] == [mine[name]["id"]], name
            assert ALICE not in json.dumps(sessions) and ALICE_LAPTOP not in json.dumps(sessions)
        # The same token in a new connection is the same client: the same session.
        async with client(ALICE) as again:
            stored = await call(again, "remember", content=f"desk again {tag}")
            newest = (await call(again, "load_recent", limit=1))["messages"][-1]
            assert newest["id"] == stored["id"] and newest["session_id"] == sessions["desk"]
            async with client(ALICE, **{SESSION: "x" * 200}) as bad:
                refused = await bad.call_tool("load_recent", {})
                assert refused.is_error and SESSION in str(refused.content)


async def test_requests_without_or_with_a_wrong_token_get_401(server: str) -> None:
    async with httpx2.AsyncClient(timeout=30) as http:
        for headers in ({}, bearer("x" * 32), bearer(ALICE + "x"), {"Authorization": f"Basic {ALICE}"}):
            response = await http.post(server, json=INITIALIZE, headers={**MCP_HEADERS, **headers})
            assert response.status_code == 401, headers
        accepted = await http.post(server, json=INITIALIZE, headers={**MCP_HEADERS, **bearer(BOB)})
        assert accepted.status_code == 200


async def test_a_foreign_host_or_origin_is_rejected_even_with_a_valid_token(server: str) -> None:
    async with httpx2.AsyncClient(timeout=30) as http:
        headers = {**MCP_HEADERS, **bearer(ALICE)}
        rebound = await http.post(server, json=INITIALIZE, headers={**headers, "Host": "evil.example:80"})
        assert rebound.status_code == 421
        foreign = await http.post(server, json=INITIALIZE, headers={**headers, "Origin": "http://evil.example"})
        assert foreign.status_code == 403
        local = await http.post(server, json=INITIALIZE, headers={**headers, "Origin": "http://localhost:3000"})
        assert local.status_code == 200


async def test_a_deleted_session_is_gone_and_other_tokens_cannot_use_a_session(server: str) -> None:
    async with httpx2.AsyncClient(timeout=30) as http:
        opened = await http.post(server, json=INITIALIZE, headers={**MCP_HEADERS, **bearer(ALICE)})
        session = {"mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        stolen = await http.post(server, json=ping, headers={**MCP_HEADERS, **bearer(BOB), **session})
        assert stolen.status_code == 404  # as if the session did not exist
        alive = await http.post(server, json=ping, headers={**MCP_HEADERS, **bearer(ALICE), **session})
        assert alive.status_code == 200
        closed = await http.delete(server, headers={**MCP_HEADERS, **bearer(ALICE), **session})
        assert closed.status_code == 200
        gone = await http.post(server, json=ping, headers={**MCP_HEADERS, **bearer(ALICE), **session})
        assert gone.status_code == 404


def test_a_public_address_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    env = clean_env(AGENT_MEMORY_DATA_DIR=str(tmp_path / "data"))
    command = [console_script(), "serve", "--transport", "http", "--host", "0.0.0.0", "--port", "0"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "refusing to listen on 0.0.0.0 without a token" in done.stderr


def test_tokens_come_from_the_variable_or_a_file(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# token:user\n{ALICE}:alice\n\n{BOB}:bob\n")
    from_file = load_settings({"AGENT_MEMORY_HTTP_TOKENS_FILE": str(tokens)})
    assert from_file.http_tokens == ((ALICE, "alice"), (BOB, "bob"))
    bare = load_settings({"AGENT_MEMORY_HTTP_TOKENS": ALICE, "AGENT_MEMORY_USER": "carol"})
    assert bare.http_tokens == ((ALICE, "carol"),)
    assert load_settings({"AGENT_MEMORY_HTTP_TOKENS": ALICE}, user="dave").http_tokens == ((ALICE, "dave"),)
    assert "http_tokens" not in repr(bare) and ALICE not in repr(bare)
    for bad in ("short:alice", f"{ALICE} x:alice", f"{ALICE}:alice,{ALICE}:bob", f"{ALICE}:bad\x01user"):
        with pytest.raises(ConfigError):
            load_settings({"AGENT_MEMORY_HTTP_TOKENS": bad})


def test_public_address_rules_tokens_or_explicit_permission_and_pinned_host_names() -> None:
    from agent_memory.mcp.http import check_exposure, transport_security

    public = load_settings({"AGENT_MEMORY_HTTP_HOST": "0.0.0.0"})
    with pytest.raises(ConfigError, match="without a token"):
        check_exposure(public)
    check_exposure(load_settings({"AGENT_MEMORY_HTTP_HOST": "0.0.0.0", "AGENT_MEMORY_HTTP_TOKENS": f"{ALICE}:a"}))
    check_exposure(load_settings({"AGENT_MEMORY_HTTP_HOST": "0.0.0.0", "AGENT_MEMORY_HTTP_ALLOW_UNAUTHENTICATED": "1"}))
    for loopback in ("127.0.0.1", "localhost", "::1", "[::1]"):
        check_exposure(load_settings({"AGENT_MEMORY_HTTP_HOST": loopback}))
        build_server(load_settings({"AGENT_MEMORY_HTTP_HOST": loopback, "AGENT_MEMORY_HTTP_TOKENS": ALICE}))
        guard = transport_security(load_settings({"AGENT_MEMORY_HTTP_HOST": loopback}))
        assert guard.enable_dns_rebinding_protection and "localhost:*" in guard.allowed_hosts
        assert "[::1]:*" in guard.allowed_hosts and "http://evil.example:*" not in guard.allowed_origins
    unpinned = transport_security(public)
    assert not unpinned.enable_dns_rebinding_protection
    pinned = transport_security(
        load_settings({"AGENT_MEMORY_HTTP_HOST": "0.0.0.0", "AGENT_MEMORY_HTTP_ALLOWED_HOSTS": "memory.lan:8765"})
    )
    assert pinned.enable_dns_rebinding_protection
    assert pinned.allowed_hosts == ["memory.lan:8765"] and "https://memory.lan:8765" in pinned.allowed_origins


def test_a_server_that_cannot_open_its_data_dir_exits_with_an_error_and_never_says_ready(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = clean_env(AGENT_MEMORY_DATA_DIR=str(blocker / "data"))
    command = [console_script(), "serve", "--transport", "http", "--port", "0"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "the HTTP server failed to start" in done.stderr and "serving MCP at" not in done.stderr
