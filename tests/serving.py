"""Run the installed console script as an HTTP server on a free port, for tests that need a real process."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx2
from mcp.client.streamable_http import streamable_http_client

READY = "agent-memory: serving MCP at "


def console_script() -> str:
    """Return the agent-memory console script of the running interpreter's environment."""
    script = shutil.which("agent-memory", path=os.path.dirname(sys.executable)) or shutil.which("agent-memory")
    assert script, "the agent-memory console script is not installed"
    return script


def clean_env(**extra: str) -> dict[str, str]:
    """Return this environment without agent-memory settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_MEMORY_")}
    return {**env, "HF_HUB_OFFLINE": "1", **extra}


@contextmanager
def http_server(
    args: Sequence[str] = (), env: dict[str, str] | None = None, timeout: float = 120
) -> Iterator[tuple[str, list[str]]]:
    """Start `agent-memory serve --transport http --port 0`; yield its URL and its stderr lines; always stop it."""
    with http_process(args, env, timeout) as (url, seen, _):
        yield url, seen


@contextmanager
def http_process(
    args: Sequence[str] = (), env: dict[str, str] | None = None, timeout: float = 120
) -> Iterator[tuple[str, list[str], subprocess.Popen[bytes]]]:
    """Like http_server, and yield the process too (to kill it); stopping an already dead one is fine."""
    command = [console_script(), "serve", "--transport", "http", "--port", "0", *args]
    proc = subprocess.Popen(
        command, env=env or clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    lines: queue.Queue[str | None] = queue.Queue()
    seen: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            seen.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if line is None:
                raise RuntimeError(f"server exited with {proc.wait()} before it was ready: {seen}")
            if line.startswith(READY):
                break
        yield line.removeprefix(READY), seen, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header for a bearer token."""
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def transport(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[Any]:
    """Open a streamable HTTP client transport that sends `headers` with every request."""
    async with (
        httpx2.AsyncClient(headers=headers or {}, timeout=httpx2.Timeout(30, read=300)) as client,
        streamable_http_client(url, http_client=client) as streams,
    ):
        yield streams
