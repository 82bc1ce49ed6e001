"""The two-step write: SQLite is the truth, and the vector index always catches up with it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from agent_memory.config import Settings
from agent_memory.index.lance import VectorRow
from agent_memory.service import MemoryService
from tests.conftest import GatedEmbedder, HashEmbedder

pytestmark = pytest.mark.anyio


async def _open_ready(settings: Settings) -> MemoryService:
    service = await MemoryService.open(settings, HashEmbedder())
    assert await service.model.wait(30)
    assert await service.indexer.drain(30)
    return service


async def test_row_committed_but_not_indexed_is_indexed_at_next_start(settings: Settings) -> None:
    embedder = GatedEmbedder()  # the model never becomes ready in this process: it "dies" before indexing
    first = await MemoryService.open(settings, embedder)
    stored = await first.remember("The wifi password is on the fridge")
    assert await first.buffer.count_pending() == 1
    await first.close()
    embedder.gate.set()

    second = await _open_ready(settings)
    try:
        assert await second.buffer.count_pending() == 0
        assert second.indexer.vectors is not None and second.indexer.vectors.count() == 1
        found = await second.recall("where is the wifi password")
        assert found.mode == "hybrid" and found.hits[0].id == stored.id
    finally:
        await second.close()


async def test_row_in_index_but_not_marked_is_not_duplicated(settings: Settings) -> None:
    service = await _open_ready(settings)
    stored = await service.remember("Dentist appointment on Tuesday")
    assert await service.indexer.drain(30)
    vectors = service.indexer.vectors
    assert vectors is not None
    # Simulate a crash after the LanceDB upsert and before the SQLite flag: the row is pending again.
    await service.buffer.mark_all_pending()
    await service.close()

    again = await _open_ready(settings)
    try:
        assert again.indexer.vectors is not None and again.indexer.vectors.count() == 1
        assert (await again.recall("dentist")).hits[0].id == stored.id
    finally:
        await again.close()


async def test_deleted_vector_index_is_rebuilt_from_sqlite(settings: Settings) -> None:
    service = await _open_ready(settings)
    ids = [(await service.remember(f"note {n} about the garden")).id for n in range(5)]
    assert await service.indexer.settle(30)  # background upkeep must not write into the directory we delete
    await service.close()
    shutil.rmtree(settings.vector_dir)

    rebuilt = await _open_ready(settings)
    try:
        assert rebuilt.indexer.vectors is not None and rebuilt.indexer.vectors.count() == 5
        hits = (await rebuilt.recall("garden", limit=10)).hits
        assert sorted(h.id for h in hits) == sorted(ids)
    finally:
        await rebuilt.close()


async def test_forgotten_memory_left_in_the_index_is_never_returned(settings: Settings) -> None:
    service = await _open_ready(settings)
    try:
        stored = await service.remember("secret plan alpha")
        assert await service.indexer.drain(30)
        await service.buffer.delete(settings.user, stored.id)  # as if the index delete never happened
        vectors = service.indexer.vectors
        assert vectors is not None and vectors.count() == 1
        assert (await service.recall("secret plan alpha")).hits == []
    finally:
        await service.close()


async def test_vector_upsert_is_idempotent(tmp_path) -> None:
    from agent_memory.index.lance import VectorIndex

    index = VectorIndex(tmp_path / "v", "t", 4)
    row = VectorRow("a", "u", "n", "s", 1.0, np.array([1, 0, 0, 0], dtype=np.float32))
    index.upsert([row])
    index.upsert([row])
    assert index.count() == 1
    hits = index.search(row.vector, user="u", namespace="n", session_id=None, since_ts=None, until_ts=None, limit=5)
    assert hits[0][0] == "a" and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    other = index.search(row.vector, user="v", namespace="n", session_id=None, since_ts=None, until_ts=None, limit=5)
    assert other == []


async def test_data_dir_and_database_are_private_to_the_user(settings: Settings) -> None:
    service = await MemoryService.open(settings, HashEmbedder())
    await service.close()
    assert settings.data_dir.stat().st_mode & 0o777 == 0o700
    assert settings.sqlite_path.stat().st_mode & 0o777 == 0o600
