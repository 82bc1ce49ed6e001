"""Drive the installed `agent-memory serve` over real stdio with the MCP SDK client, as a client would.

Indexing is awaited without touching the server: the bench polls the data dir's SQLite file read-only for rows
still waiting to be indexed (what `agent-memory stats` counts), bounded by a timeout.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

from conv_data import Conversation, content

# Long enough for the model to load on a busy 2-core machine; recall waits on an event, not a sleep.
MODEL_WAIT_SECONDS = "240"


class RememberRefused(Exception):
    """The server refused a turn (empty or over the content limit)."""


def console_script() -> str:
    """Return the installed `agent-memory` console script of this environment."""
    script = shutil.which("agent-memory", path=os.path.dirname(sys.executable)) or shutil.which("agent-memory")
    if not script:
        raise SystemExit("the agent-memory console script is not installed in this environment")
    return script


@asynccontextmanager
async def server(data_dir: Path, mode: str = "hybrid") -> AsyncIterator[Client]:
    """Spawn a server on a data dir with a recall mode and yield a connected client."""
    params = StdioServerParameters(
        command=console_script(),
        args=["serve"],
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "AGENT_MEMORY_DATA_DIR": str(data_dir),
            "AGENT_MEMORY_RECALL_MODE": mode,
            "AGENT_MEMORY_MODEL_WAIT_SECONDS": MODEL_WAIT_SECONDS,
            "HF_HUB_OFFLINE": "1",
        },
    )
    async with Client(params, mode="auto") as client:
        yield client


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool; raise RememberRefused on a tool error."""
    result = await client.call_tool(tool, arguments)
    if result.is_error or result.structured_content is None:
        raise RememberRefused(str(result.content)[:200])
    return result.structured_content


async def ingest(client: Client, conversation: Conversation) -> tuple[dict[str, list[str]], int]:
    """Store every turn with one `remember` call; return memory id -> turn ids, and how many were refused."""
    owners: dict[str, list[str]] = {}
    refused = 0
    for session in conversation.sessions:
        for turn in session.turns:
            try:
                stored = await call(
                    client,
                    "remember",
                    content=content(turn, session.date),
                    role=turn.role,
                    session_id=session.session_id,
                    created_at=session.date.isoformat(),
                )
            except RememberRefused:
                refused += 1
                continue
            # The same content twice returns the first id: both turns are then found by that memory.
            owners.setdefault(stored["id"], []).append(turn.turn_id)
    return owners, refused


def pending(data_dir: Path) -> int:
    """Return how many memories still wait for the vector index (read-only look at the SQLite file)."""
    db = sqlite3.connect(f"file:{data_dir / 'memory.sqlite3'}?mode=ro", uri=True, timeout=30)
    try:
        return int(db.execute("SELECT count(*) FROM memories WHERE indexed = 0").fetchone()[0])
    finally:
        db.close()


async def wait_indexed(data_dir: Path, timeout: float) -> float:
    """Wait (bounded) until nothing is pending; return when it happened (time.monotonic)."""
    with anyio.fail_after(timeout):
        while pending(data_dir):  # noqa: ASYNC110 - the state lives in another process's SQLite file
            await anyio.sleep(0.25)
    return time.monotonic()


async def recall(client: Client, query: str, limit: int) -> tuple[list[str], float, dict[str, Any]]:
    """Recall and return the hit ids, the round trip in milliseconds and the raw result."""
    start = time.perf_counter()
    found = await call(client, "recall", query=query, limit=limit)
    elapsed = (time.perf_counter() - start) * 1000
    return [h["id"] for h in found["hits"]], elapsed, found
