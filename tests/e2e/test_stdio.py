"""End to end over real stdio with the installed console script and the real MiniLM model."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

from tests.conftest import call

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


def _server(data_dir: Path, **env: str) -> StdioServerParameters:
    script = shutil.which("agent-memory", path=os.path.dirname(sys.executable)) or shutil.which("agent-memory")
    assert script, "the agent-memory console script is not installed"
    return StdioServerParameters(
        command=script,
        args=["serve"],
        env={"AGENT_MEMORY_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", **env},
    )


async def _session(params: StdioServerParameters, mode: str, steps: Any) -> Any:
    with anyio.fail_after(300):
        async with Client(params, mode=mode) as client:
            return await steps(client)


async def test_a_new_process_recalls_what_an_earlier_process_remembered(tmp_path: Path) -> None:
    data = tmp_path / "data"

    async def first(client: Client) -> dict[str, Any]:
        return await call(client, "remember", content="My name is Dana and I prefer dark mode.")

    stored = await _session(_server(data), "legacy", first)
    assert stored["duplicate"] is False

    async def second(client: Client) -> tuple[dict[str, Any], dict[str, Any]]:
        for n, text in enumerate(
            [
                "The quarterly report is due on March 3.",
                "We use PostgreSQL 16 in production.",
                "Lunch with Sam on Thursday at noon.",
                "The office wifi network is called Orchard.",
            ]
        ):
            await call(client, "remember", content=text, session_id=f"other-{n}")
        found = await call(client, "recall", query="What UI preference did I mention?")
        recent = await call(client, "load_recent")
        return found, recent

    # The model loads in the background; the opt-in wait makes recall wait for it (on an event, bounded).
    found, recent = await _session(_server(data, AGENT_MEMORY_MODEL_WAIT_SECONDS="240"), "auto", second)
    assert found["mode"] == "hybrid" and found["degraded"] is False
    assert found["hits"][0]["id"] == stored["id"]
    assert recent["messages"][0]["id"] == stored["id"]


async def test_stdio_server_answers_bad_input_and_keeps_serving(tmp_path: Path) -> None:
    async def steps(client: Client) -> dict[str, Any]:
        bad = await client.call_tool("recall", {"query": "x", "limit": 500})
        assert bad.is_error
        return await call(client, "load_recent")

    recent = await _session(_server(tmp_path / "data"), "legacy", steps)
    assert recent["messages"] == []
