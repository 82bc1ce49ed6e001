"""A raw JSON-RPC driver for `agent-memory serve` over real stdio: many requests in flight, and a pid to kill."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import lancedb

HANDSHAKE_VERSION = "2025-11-25"


def console_script() -> str:
    """Return the installed `agent-memory` console script of this environment."""
    script = shutil.which("agent-memory", path=os.path.dirname(sys.executable)) or shutil.which("agent-memory")
    assert script, "the agent-memory console script is not installed"
    return script


class ToolFailed(Exception):
    """A tool call came back with isError, or the request itself failed."""


class StdioServer:
    """One `agent-memory serve` process spoken to with newline-delimited JSON-RPC."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self.process = process
        self.log = log
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, data_dir: Path, log: Path, **env: str) -> StdioServer:
        """Spawn the server and complete the (legacy) initialize handshake."""
        # The child keeps its own copy of the log's descriptor: this process closes its copy at once.
        with log.open("ab") as stderr:
            process = await asyncio.create_subprocess_exec(
                console_script(),
                "serve",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                env={**os.environ, "AGENT_MEMORY_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", **env},
                limit=64 * 1024 * 1024,  # one JSON-RPC message per line; recall results can be large
            )
        server = cls(process, log)
        await server.request(
            "initialize",
            {
                "protocolVersion": HANDSHAKE_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "agent-memory-tests", "version": "0"},
            },
        )
        await server._send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return server

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send a request and wait for its result."""
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        await self._send({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        reply = await future
        if "error" in reply:
            raise ToolFailed(str(reply["error"]))
        result: dict[str, Any] = reply["result"]
        return result

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        """Call a tool that must succeed; return its structured result."""
        result = await self.request("tools/call", {"name": tool, "arguments": arguments})
        if result.get("isError"):
            raise ToolFailed(json.dumps(result.get("content"))[:500])
        structured: dict[str, Any] = result["structuredContent"]
        return structured

    def kill(self) -> None:
        """SIGKILL the server: no clean-up runs, whatever it was writing stays half-written."""
        self.process.send_signal(signal.SIGKILL)

    async def close(self) -> int:
        """Close stdin (the client went away) and wait for the server to exit."""
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        code = await asyncio.wait_for(self.process.wait(), 60)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        return code

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        await self.process.stdin.drain()

    async def _read(self) -> None:
        assert self.process.stdout is not None
        try:
            while line := await self.process.stdout.readline():
                message = json.loads(line)
                future = self._waiting.pop(message.get("id"), None) if "method" not in message else None
                if future is not None and not future.done():
                    future.set_result(message)
        finally:
            gone = ConnectionError(f"the server exited; its log: {self.log}")
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(gone)
            self._waiting.clear()


def _query(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    """Run one read straight against the data dir's SQLite file (as another process would)."""
    db = sqlite3.connect(data_dir / "memory.sqlite3")
    try:
        return list(db.execute(sql))
    finally:
        db.close()


def sqlite_ids(data_dir: Path) -> list[str]:
    """Return every memory id in SQLite."""
    return [str(r[0]) for r in _query(data_dir, "SELECT id FROM memories")]


def pending_count(data_dir: Path) -> int:
    """Return how many memories wait for the vector index."""
    return int(_query(data_dir, "SELECT COUNT(*) FROM memories WHERE indexed = 0")[0][0])


def integrity(data_dir: Path) -> str:
    """Return SQLite's integrity check verdict ('ok' when the file is sound)."""
    return str(_query(data_dir, "PRAGMA integrity_check")[0][0])


def vector_ids(data_dir: Path) -> list[str]:
    """Return the memory id of every row of every vector table (a memory split in chunks counts once per table)."""
    db = lancedb.connect(str(data_dir / "vectors.lance"))
    ids: list[str] = []
    for name in db.list_tables().tables:
        table = db.open_table(name).to_arrow()
        if "key" in table.column_names:  # one row per window of a memory: each key once, each memory once
            keys = table.column("key").to_pylist()
            assert len(set(keys)) == len(keys), f"a window twice in {name}"
            ids += sorted(set(table.column("id").to_pylist()))
        else:
            ids += table.column("id").to_pylist()
    return [str(i) for i in ids]
