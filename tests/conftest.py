"""Shared fixtures: settings in a temp dir, small real embedders, an MCP client factory, and the service's parts."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np
import pytest
from mcp.client import Client

from agent_memory.config import Settings
from agent_memory.embedding.embedder import Embedder
from agent_memory.embedding.host import ModelHost
from agent_memory.errors import ConfigError
from agent_memory.index.indexer import Indexer
from agent_memory.index.protocol import VectorScope
from agent_memory.mcp.server import build_server
from agent_memory.models import NewMemory
from agent_memory.recall import score
from agent_memory.service import MemoryService
from agent_memory.store.protocol import MemoryStore
from agent_memory.store.rows import Filters
from agent_memory.store.sqlite import SQLiteStore
from agent_memory.write import prepare
from tests.postgres import backend, database_url, pg_url, postgres_server, pytest_generate_tests

__all__ = ["backend", "database_url", "pg_url", "postgres_server", "pytest_generate_tests"]

if TYPE_CHECKING:
    from agent_memory.index.protocol import Vector, VectorIndex

MODES = ["legacy", "auto"]
# Bound on one in-process MCP request: far above any tool call here, so only a lost answer reaches it.
REQUEST_SECONDS = 120.0


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
            # A load failure the host reports, not an exception escaping its thread into a later test.
            raise ConfigError("test never opened the gate")
        return self.dim


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    # model_wait_seconds makes recall wait (on events, bounded) for the in-process model to be ready.
    # database_url: a fresh Postgres database when the module runs on both backends (tests/postgres.py).
    return Settings(data_dir=tmp_path / "data", model_wait_seconds=30, database_url=database_url)


async def open_store(settings: Settings) -> MemoryStore:
    """Open the store the settings name: Postgres when a database URL is set, else SQLite in the data dir."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.database_url:
        from agent_memory.store.postgres import PostgresStore

        return await PostgresStore.open(settings.database_url)
    return await SQLiteStore.open(settings.sqlite_path)


@asynccontextmanager
async def connect(settings: Settings, mode: str = "auto", embedder: Any = None, **kwargs: Any) -> AsyncIterator[Client]:
    """Connect an in-process MCP client to a fresh server."""
    server = build_server(settings, embedder=embedder or HashEmbedder())
    # A request whose answer never comes fails the test instead of hanging it.
    kwargs.setdefault("read_timeout_seconds", REQUEST_SECONDS)
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


async def open_ready(settings: Settings, embedder: Any = None, *, store: MemoryStore | None = None) -> MemoryService:
    """Open a service and wait (bounded) until its vector index is open and holds every memory."""
    service = await MemoryService.open(settings, embedder or HashEmbedder(), store=store)
    assert await service.wait_index_open(30)
    assert await service.wait_indexed(30) is None
    return service


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[MemoryService]:
    """A service on the test's data dir, its index open and caught up."""
    opened = await open_ready(settings)
    try:
        yield opened
    finally:
        await opened.close()


async def vector_table(service: MemoryService, dim: int) -> VectorIndex:
    """Open the service's vector table on a connection of its own, as another process reads it."""
    from agent_memory.index.backends import open_vector_index

    status = await service.index_status()
    assert status.open and status.table is not None
    return open_vector_index(service.settings, status.table, dim)  # LanceDB, or pgvector on Postgres


def best_memories(
    index: VectorIndex, vector: Vector, limit: int, user: str = "default", namespace: str = "default"
) -> list[tuple[str, float]]:
    """Return (memory id, similarity) of the memories nearest the vector, each by its best window, as recall ranks."""
    hits = index.search(vector, VectorScope(user, namespace), limit * score.OVERSAMPLE)
    return score.best_windows([(h.id, h.similarity, h.windows) for h in hits], limit)


@dataclass
class Parts:
    """A store, a model host and an indexer built by hand: what a service owns, for tests of the parts."""

    settings: Settings
    store: MemoryStore
    model: ModelHost
    indexer: Indexer

    async def remember(self, *items: NewMemory) -> list[str]:
        """Store memories through the service's checks in one transaction, tell the indexer; return their ids."""
        rows = [prepare.new_row(item, self.settings, "session")[0] for item in items]
        inserted = await self.store.insert_many(rows)
        self.indexer.notify()
        return [i.id for i in inserted]

    def filters(self) -> Filters:
        """Return the filters of a recall in the default scope."""
        return prepare.filters(self.settings, None, None, None, None, None)

    async def nearest(self, text: str, limit: int) -> list[str]:
        """Return the ids of the memories whose vectors are nearest the text's, best first."""
        vector = await self.model.embed_query(text)
        rows = await self.indexer.nearest(vector, self.settings.user, self.filters(), limit * score.OVERSAMPLE)
        return [i for i, _ in score.best_windows(rows, limit)]


@asynccontextmanager
async def service_parts(settings: Settings, embedder: Embedder) -> AsyncIterator[Parts]:
    """Open a store, load the model and start an indexer on the settings' data dir."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await open_store(settings)
    model = ModelHost(embedder)
    model.start()
    indexer = Indexer(settings, store, model)
    indexer.start()
    try:
        yield Parts(settings, store, model, indexer)
    finally:
        await indexer.stop()
        await store.close()
