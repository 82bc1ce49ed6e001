"""Indexing a burst: the model reads the next batch while the previous one is written, and no batch is lost."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from agent_memory.config import Settings
from agent_memory.index import indexer as indexer_module
from agent_memory.index.protocol import VectorRow
from agent_memory.models import NewMemory
from agent_memory.service import MemoryService
from agent_memory.store.rows import PendingRow
from tests.conftest import eventually, open_ready, open_store

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

TEXTS = ["The spare key is under the blue pot", "Mia's recital is on Friday", "Renew the passport in May"]


async def _remember(service: MemoryService) -> list[str]:
    """Store TEXTS in one transaction: three memories pending together; return their ids."""
    result = await service.remember_many([NewMemory(content=t) for t in TEXTS])
    ids = [item.id for item in result.items if item.id is not None]
    assert len(ids) == len(TEXTS)
    return ids


class HeldWrites:
    """Holds every vector upsert until released, recording what each one writes."""

    def __init__(self, service: MemoryService, monkeypatch: pytest.MonkeyPatch) -> None:
        self.release = threading.Event()
        self.upserts: list[set[str]] = []
        self.embedded: list[str] = []
        indexer = service._indexer
        vectors = indexer.vectors
        assert vectors is not None
        upsert, embed = vectors.upsert, indexer._batches.embed_or_set_aside

        def held(rows: Sequence[VectorRow]) -> None:
            self.upserts.append({r.id for r in rows})
            assert self.release.wait(30), "the test never released the write"
            upsert(rows)

        async def seen(rows: Sequence[PendingRow]) -> tuple[list[PendingRow], list[VectorRow]]:
            self.embedded += [r.id for r in rows]
            return await embed(rows)

        monkeypatch.setattr(vectors, "upsert", held)
        monkeypatch.setattr(indexer._batches, "embed_or_set_aside", seen)
        monkeypatch.setattr(indexer_module, "BATCH_CHARS", 1)  # one memory a batch


async def test_the_next_batch_is_embedded_while_the_previous_one_is_written(
    service: MemoryService, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = HeldWrites(service, monkeypatch)
    ids = await _remember(service)

    async def second_batch_read() -> bool:
        return len(held.embedded) >= 2

    await eventually(second_batch_read)
    assert len(held.upserts) == 1  # the first batch is still on its way...
    assert await service.count_pending() == 3  # ...so nothing is marked yet
    held.release.set()
    assert await service.wait_indexed(30) is None
    assert await service.count_pending() == 0
    # Each memory read once: a batch being written is not picked up again as pending.
    assert sorted(held.embedded) == sorted(ids)
    assert (await service.index_status()).memories == 3


async def test_a_failed_write_is_retried_and_loses_nothing(service: MemoryService) -> None:
    vectors = service._indexer.vectors
    assert vectors is not None
    upsert, calls = vectors.upsert, []

    def fails_once(rows: Sequence[VectorRow]) -> None:
        calls.append(len(rows))
        if len(calls) == 1:
            raise OSError("disk full")
        upsert(rows)

    vectors.upsert = fails_once  # type: ignore[method-assign]
    ids = await _remember(service)
    assert await service.wait_indexed(30) is None
    assert len(calls) >= 2
    assert service._indexer.error is None  # recovered
    assert (await service.index_status()).memories == 3
    found = await service.recall("when is the recital", limit=3)
    assert {h.id for h in found.hits} <= set(ids) and found.mode == "hybrid"


async def test_closing_lets_the_batch_being_written_land(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    service = await open_ready(settings)
    held = HeldWrites(service, monkeypatch)
    await service.remember(TEXTS[0])

    async def writing() -> bool:
        return len(held.upserts) == 1

    await eventually(writing)
    closing = asyncio.create_task(service.close())

    async def indexer_stopped() -> bool:
        task = service._indexer._task
        return task is not None and task.done()

    await eventually(indexer_stopped)  # the indexer's loop is cancelled; its write is still held
    held.release.set()
    await closing
    store = await open_store(settings)
    try:
        assert await store.count_pending() == 0  # written and marked before the service closed
    finally:
        await store.close()
