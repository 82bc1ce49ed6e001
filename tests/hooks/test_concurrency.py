"""Hooks capturing while two servers write to the same store: nothing is lost and no turn is stored twice."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import anyio
import pytest

from tests.serving import clean_env, console_script
from tests.stdio_rpc import StdioServer

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

PER_SERVER = 60
TRANSCRIPTS = 3
TURNS = 40
# No model for these servers: the test is about writes, and loading one would only compete for the CPU.
NO_MODEL = {"AGENT_MEMORY_MODEL": "/nonexistent/model"}


def write_transcript(path: Path, session: str, cwd: Path) -> None:
    """Write a Claude Code transcript of alternating user and assistant turns."""
    lines = []
    for n in range(TURNS):
        kind = "user" if n % 2 == 0 else "assistant"
        content = f"{session} turn {n}: note about component c{n}"
        message = {"role": kind, "content": content if kind == "user" else [{"type": "text", "text": content}]}
        lines.append(
            {
                "type": kind,
                "uuid": f"{session}-{n}",
                "parentUuid": f"{session}-{n - 1}" if n else None,
                "sessionId": session,
                "cwd": str(cwd),
                "timestamp": f"2025-07-01T10:{n // 60:02d}:{n % 60:02d}.000Z",
                "message": message,
            }
        )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


async def hook(event: str, transcript: Path, session: str, cwd: Path, data: Path) -> int:
    payload = {"session_id": session, "transcript_path": str(transcript), "cwd": str(cwd), "hook_event_name": "Stop"}
    process = await asyncio.create_subprocess_exec(
        console_script(),
        "hook",
        event,
        "--wait",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(AGENT_MEMORY_DATA_DIR=str(data)),
    )
    out, _ = await process.communicate(json.dumps(payload).encode())
    assert out == b""
    return await process.wait()


async def test_hooks_and_two_servers_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cwd = tmp_path / "proj"
    (cwd / ".git").mkdir(parents=True)
    transcripts = []
    for n in range(TRANSCRIPTS):
        path = tmp_path / f"t{n}.jsonl"
        write_transcript(path, f"session-{n}", cwd)
        transcripts.append((path, f"session-{n}"))
    acknowledged: set[str] = set()

    async def client(server: StdioServer, who: str) -> None:
        for n in range(PER_SERVER):
            stored = await server.call("remember", content=f"{who} memory {n}", namespace="proj")
            acknowledged.add(stored["id"])

    with anyio.fail_after(600):
        servers = [await StdioServer.start(data, tmp_path / f"s{n}.log", **NO_MODEL) for n in range(2)]
        try:
            hooks = [hook(e, p, s, cwd, data) for p, s in transcripts for e in ("stop", "pre-compact", "stop")]
            codes = await asyncio.gather(*(client(s, f"server{n}") for n, s in enumerate(servers)), *hooks)
        finally:
            for server in servers:
                await server.close()
    assert [c for c in codes if c is not None] == [0] * (TRANSCRIPTS * 3)
    with sqlite3.connect(data / "memory.sqlite3") as db:
        ids = {row[0] for row in db.execute("SELECT id FROM memories")}
        turns = db.execute("SELECT content, COUNT(*) FROM memories WHERE content LIKE 'session-%' GROUP BY content")
        counts = dict(turns.fetchall())
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert acknowledged <= ids and len(acknowledged) == 2 * PER_SERVER
    assert len(counts) == TRANSCRIPTS * TURNS and set(counts.values()) == {1}
