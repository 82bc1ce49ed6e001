"""Shared fixtures: settings in a temp dir, small real embedders, and an MCP client factory."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from mcp.client import Client

from agent_memory.config import Settings
from agent_memory.mcp.server import build_server

MODES = ["legacy", "auto"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class HashEmbedder:
    """A deterministic bag-of-words embedder: fast, no model, shared words give similar vectors."""

    dim = 64

    @property
    def name(self) -> str:
        return "hash-bow"

    def load(self) -> int:
        return self.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, int(hashlib.md5(word.strip(".,!?").encode()).hexdigest(), 16) % self.dim] += 1.0
            out[row, 0] += 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)


class GatedEmbedder(HashEmbedder):
    """A HashEmbedder whose load blocks until the test opens the gate (a model still loading)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.gate = threading.Event()

    def load(self) -> int:
        self.started.set()
        if not self.gate.wait(timeout=60):
            raise TimeoutError("test never opened the gate")
        return self.dim


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # model_wait_seconds makes recall wait (on events, bounded) for the in-process model to be ready.
    return Settings(data_dir=tmp_path / "data", model_wait_seconds=30)


@asynccontextmanager
async def connect(settings: Settings, mode: str = "auto", embedder: Any = None, **kwargs: Any) -> AsyncIterator[Client]:
    """Connect an in-process MCP client to a fresh server."""
    server = build_server(settings, embedder=embedder or HashEmbedder())
    async with Client(server, mode=mode, **kwargs) as client:
        yield client


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed and return its structured result."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def eventually(condition: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    """Wait until a condition holds (state of another task or process, no event to wait on), bounded."""
    with anyio.fail_after(timeout):
        while not await condition():  # noqa: ASYNC110 - polled: the state lives in SQLite or another process
            await anyio.sleep(0.02)
