"""Each client config example, launched the way that client launches it (no GUI here: the file is the contract)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

from tests.conftest import call
from tests.serving import clean_env, console_script, http_server, transport

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
STDIO = [
    ("claude_desktop_config.example.json", "mcpServers"),
    ("examples/vscode/mcp.json", "servers"),
    ("examples/cursor/mcp.json", "mcpServers"),
]
HTTP = [("examples/vscode/mcp-http.json", "servers"), ("examples/cursor/mcp-http.json", "mcpServers")]
TOKEN = secrets.token_urlsafe(24)
EXAMPLE_URL = "http://127.0.0.1:8765/mcp"


def _entry(name: str, key: str, values: dict[str, str]) -> dict[str, Any]:
    """Read the example's agent-memory entry with its placeholders and client variables filled in."""
    text = (ROOT / name).read_text()
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    assert "${" not in text and "/absolute/path" not in text, f"{name} has a placeholder this test does not fill"
    entry: dict[str, Any] = json.loads(text)[key]["agent-memory"]
    return entry


async def _use(server: Any) -> dict[str, Any]:
    with anyio.fail_after(120):
        async with Client(server, mode="legacy") as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"remember", "recall", "load_recent", "summarize_history", "forget"} <= tools
            await call(client, "remember", content="The example config works.")
            return await call(client, "load_recent")


@pytest.mark.parametrize(("name", "key"), STDIO)
async def test_stdio_example_starts_the_server_as_the_client_would(
    name: str, key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Clients pass the server a small default environment (HOME, PATH ...) plus the entry's env.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    entry = _entry(
        name,
        key,
        {
            "/absolute/path/to/agent-memory/.venv/bin/agent-memory": console_script(),
            "/absolute/path/to/your/memory-data": str(tmp_path / "data"),
            "${workspaceFolderBasename}": "my-project",  # VS Code fills this in per workspace
        },
    )
    assert entry.get("type", "stdio") == "stdio"
    # Started outside any project (as Claude Desktop does), the configured namespace applies.
    params = StdioServerParameters(command=entry["command"], args=entry["args"], env=entry.get("env"), cwd=tmp_path)
    recent = await _use(params)
    expected = entry.get("env", {}).get("AGENT_MEMORY_NAMESPACE", "default")
    assert [m["namespace"] for m in recent["messages"]] == [expected]


@pytest.mark.parametrize(("name", "key"), HTTP)
async def test_http_example_reaches_a_running_server_with_its_token(name: str, key: str, tmp_path: Path) -> None:
    env = clean_env(AGENT_MEMORY_DATA_DIR=str(tmp_path / "data"), AGENT_MEMORY_HTTP_TOKENS=f"{TOKEN}:me")
    with http_server(env=env) as (url, _):
        entry = _entry(
            name,
            key,
            {EXAMPLE_URL: url, "${input:agent-memory-token}": TOKEN, "${env:AGENT_MEMORY_TOKEN}": TOKEN},
        )
        assert entry.get("type", "http") == "http"
        recent = await _use(transport(entry["url"], entry["headers"]))
        assert len(recent["messages"]) == 1
