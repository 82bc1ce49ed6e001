"""The two-step write: SQLite is the truth, and the vector index always catches up with it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from agent_memory.config import Settings
from agent_memory.index.lance import LanceVectorIndex
from agent_memory.index.protocol import VectorRow, VectorScope
from agent_memory.service import MemoryService
from agent_memory.store.sqlite import SQLiteStore
from tests.conftest import GatedEmbedder, HashEmbedder, open_ready

pytestmark = pytest.mark.anyio


async def _own_store(settings: Settings) -> SQLiteStore:
    """Open the store the test hands to the service, to act on it behind the service's back."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return await SQLiteStore.open(settings.sqlite_path)


async def test_row_committed_but_not_indexed_is_indexed_at_next_start(settings: Settings) -> None:
    embedder = GatedEmbedder()  # the model never becomes ready in this process: it "dies" before indexing
    first = await MemoryService.open(settings, embedder)
    stored = await first.remember("The wifi password is on the fridge")
    assert await first.count_pending() == 1
    await first.close()
    embedder.gate.set()

    second = await open_ready(settings)
    try:
        assert await second.count_pending() == 0
        assert (await second.index_status()).memories == 1
        found = await second.recall("where is the wifi password")
        assert found.mode == "hybrid" and found.hits[0].id == stored.id
    finally:
        await second.close()


async def test_row_in_index_but_not_marked_is_not_duplicated(settings: Settings) -> None:
    store = await _own_store(settings)
    service = await open_ready(settings, store=store)
    stored = await service.remember("Dentist appointment on Tuesday")
    assert await service.wait_indexed(30) is None
    assert (await service.index_status()).memories == 1
    # Simulate a crash after the LanceDB upsert and before the SQLite flag: the row is pending again.
    await store.mark_all_pending()
    await service.close()

    again = await open_ready(settings)
    try:
        assert (await again.index_status()).memories == 1
        assert (await again.recall("dentist")).hits[0].id == stored.id
    finally:
        await again.close()


async def test_deleted_vector_index_is_rebuilt_from_sqlite(settings: Settings) -> None:
    service = await open_ready(settings)
    ids = [(await service.remember(f"note {n} about the garden")).id for n in range(5)]
    assert await service.settle(30)  # background upkeep must not write into the directory we delete
    await service.close()
    shutil.rmtree(settings.vector_dir)

    rebuilt = await open_ready(settings)
    try:
        assert (await rebuilt.index_status()).memories == 5
        hits = (await rebuilt.recall("garden", limit=10)).hits
        assert sorted(h.id for h in hits) == sorted(ids)
    finally:
        await rebuilt.close()


async def test_forgotten_memory_left_in_the_index_is_never_returned(settings: Settings) -> None:
    store = await _own_store(settings)
    service = await open_ready(settings, store=store)
    try:
        stored = await service.remember("secret plan alpha")
        assert await service.wait_indexed(30) is None
        await store.delete(settings.user, stored.id)  # as if the index delete never happened
        assert (await service.index_status()).memories == 1
        assert (await service.recall("secret plan alpha")).hits == []
    finally:
        await service.close()


async def test_vector_upsert_is_idempotent(tmp_path: Path) -> None:
    index = LanceVectorIndex(tmp_path / "v", "t", 4)
    row = VectorRow("a", "u", "n", "s", 1.0, np.array([1, 0, 0, 0], dtype=np.float32))
    index.upsert([row])
    index.upsert([row])
    assert index.count() == 1
    hits = index.search(row.vector, VectorScope("u", "n"), 5)
    assert [h.id for h in hits] == ["a"] and hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert index.search(row.vector, VectorScope("v", "n"), 5) == []


async def test_data_dir_and_database_are_private_to_the_user(settings: Settings) -> None:
    service = await MemoryService.open(settings, HashEmbedder())
    await service.close()
    assert settings.data_dir.stat().st_mode & 0o777 == 0o700
    assert settings.sqlite_path.stat().st_mode & 0o777 == 0o600
