"""The background indexer, SQLite and LanceDB under failures and concurrent writers."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import anyio
import lancedb
import numpy as np
import pytest

from agent_memory.config import Settings
from agent_memory.errors import BackendError
from agent_memory.index import commit_lock as commits
from agent_memory.index.lance import LanceVectorIndex
from agent_memory.index.protocol import VectorRow, VectorScope
from agent_memory.index.tuning import IndexTuning
from agent_memory.models import NewMemory, SearchState
from agent_memory.service import MemoryService, doctor
from agent_memory.store.rows import NewRow
from agent_memory.store.sqlite import SQLiteStore, inspect_file
from tests.conftest import GatedEmbedder, HashEmbedder, eventually, open_ready

pytestmark = pytest.mark.anyio


class FlakyEmbedder(HashEmbedder):
    """A HashEmbedder that raises while `broken` is set, counting the calls it refused."""

    def __init__(self) -> None:
        self.broken = threading.Event()
        self.refused = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        if self.broken.is_set():
            self.refused += 1
            raise RuntimeError("simulated embedder crash")
        return super().embed(texts)


async def test_indexer_records_a_failing_batch_backs_off_and_recovers_by_itself(settings: Settings) -> None:
    embedder = FlakyEmbedder()
    service = await open_ready(settings, embedder)
    try:
        embedder.broken.set()
        stored = await service.remember("The boiler service is booked for May 4")

        async def failing() -> bool:
            return (await service.index_status()).error is not None

        await eventually(failing)
        status = service.status()
        assert status.state is SearchState.BEHIND and "simulated embedder crash" in (status.message or "")
        found = await service.recall("boiler service")
        assert found.mode == "keyword" and found.degraded
        assert found.note and "simulated embedder crash" in found.note
        assert [h.id for h in found.hits] == [stored.id]  # keyword search still answers
        assert await service.count_pending() == 1

        refused = embedder.refused
        embedder.broken.clear()

        async def recovered() -> bool:
            status = await service.index_status()
            return status.error is None and status.pending == 0

        await eventually(recovered)
        # Backoff, not a tight loop: a handful of attempts while broken.
        assert refused < 10
        assert service.status().ready
        again = await service.recall("boiler service")
        assert again.mode == "hybrid" and again.note is None and again.hits[0].id == stored.id
    finally:
        await service.close()


class PickyEmbedder(HashEmbedder):
    """A HashEmbedder that cannot embed any text containing `poison` (say, one its tokenizer chokes on)."""

    def __init__(self) -> None:
        self.poison = "ZX-POISON"

    def embed(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        if any(self.poison in t for t in texts):
            raise ValueError("simulated tokenizer failure")
        return super().embed(texts)


async def test_a_memory_the_model_cannot_embed_is_set_aside_and_holds_back_nothing(settings: Settings) -> None:
    embedder = PickyEmbedder()
    service = await open_ready(settings, embedder)
    try:
        # Written in one transaction, so the poisoned row shares its batch with the rows after it.
        result = await service.remember_many(
            [NewMemory(content="The ZX-POISON gate code is 4471")]
            + [NewMemory(content=f"Garden note {n}: the tomatoes need water") for n in range(5)]
        )
        poisoned = result.items[0].id
        assert await service.wait_indexed(30) is None  # the rows after the poisoned one were indexed
        assert await service.count_pending() == 0
        found = await service.recall("tomatoes need water")
        assert found.mode == "hybrid" and found.note is None and len(found.hits) == 5
        gate = await service.recall("gate code")
        assert poisoned in [h.id for h in gate.hits]  # still found, by keyword
        assert inspect_file(settings.sqlite_path)["unembeddable"] == 1
        check = next(c for c in doctor(settings, check_model=False) if c.name == "vector index")
        assert check.status == "warn" and "could not be embedded" in check.detail

        embedder.poison = "nothing matches this"  # the model was fixed (say, upgraded): reindex retries it
        assert await service.reindex() == (6, None)
        assert inspect_file(settings.sqlite_path)["unembeddable"] == 0
        assert (await service.index_status()).memories == 6
    finally:
        await service.close()


async def test_a_broken_model_sets_nothing_aside(settings: Settings) -> None:
    embedder = FlakyEmbedder()
    service = await open_ready(settings, embedder)
    try:
        embedder.broken.set()
        await service.remember_many([NewMemory(content=f"note {n} about the boiler") for n in range(3)])

        async def failing() -> bool:
            return (await service.index_status()).error is not None

        await eventually(failing)
        assert await service.count_pending() == 3  # waiting for the model, not set aside
        assert inspect_file(settings.sqlite_path)["unembeddable"] == 0
    finally:
        await service.close()


async def test_rows_committed_by_another_process_are_indexed_without_a_restart(settings: Settings) -> None:
    settings = replace(settings, index_poll_seconds=0.1)
    indexing = await open_ready(settings)
    # A second writer whose model never loads, like a CLI that stores and exits: it never indexes.
    writer = await MemoryService.open(settings, GatedEmbedder())
    try:
        stored = await writer.remember("Parking is on level minus two")

        async def indexed() -> bool:
            return await indexing.count_pending() == 0

        await eventually(indexed)
        assert (await indexing.index_status()).memories == 1
        found = await indexing.recall("where do I park the car", limit=1)
        assert found.mode == "hybrid" and found.hits[0].id == stored.id
    finally:
        await writer.close()
        await indexing.close()


async def test_a_recall_wakes_the_indexer_to_rows_another_process_wrote(settings: Settings) -> None:
    settings = replace(settings, index_poll_seconds=3600)  # only recall's wake-up can find the row
    indexing = await open_ready(settings)
    writer = await MemoryService.open(settings, GatedEmbedder())
    try:
        stored = await writer.remember("Parking is on level minus two")
        first = await indexing.recall("where do I leave the car", limit=1)
        # It answers at once, without the row (no shared word), and says one memory is not searchable yet.
        assert first.mode == "hybrid" and first.unindexed in (0, 1)
        await eventually(lambda: _none_pending(indexing))
        found = await indexing.recall("where do I leave the car", limit=1)
        assert found.hits and found.hits[0].id == stored.id and found.unindexed == 0
    finally:
        await writer.close()
        await indexing.close()


async def _none_pending(service: MemoryService) -> bool:
    return await service.count_pending() == 0


async def test_two_connections_writing_at_once_never_see_a_locked_database(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True)
    first = await SQLiteStore.open(settings.sqlite_path)
    second = await SQLiteStore.open(settings.sqlite_path)
    try:

        async def write(store: SQLiteStore, prefix: str) -> None:
            for n in range(150):
                row = NewRow(
                    f"{prefix}{n}",
                    "u",
                    "n",
                    "s",
                    "user",
                    f"{prefix} note {n}",
                    f"{prefix}{n}",
                    [],
                    {},
                    datetime.now(UTC),
                )
                await store.insert_many([row])
                if n % 10 == 0:
                    await store.mark_indexed([f"{prefix}{n}"])

        async with anyio.create_task_group() as tg:
            for store, prefix in ((first, "a"), (second, "b"), (first, "c"), (second, "d")):
                tg.start_soon(write, store, prefix)
        assert await first.count_pending() + await first.count_indexed() == 600
    finally:
        await first.close()
        await second.close()


async def test_a_database_locked_past_the_bound_gives_a_clear_busy_error(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True)
    store = await SQLiteStore.open(settings.sqlite_path, busy_timeout=0.05, write_wait_seconds=0.5)
    service = await MemoryService.open(settings, GatedEmbedder(), store=store)
    holder = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(BackendError, match="locked by another process") as caught:
            await service.remember("this write cannot get the lock")
        assert "database is locked" not in str(caught.value)
        holder.execute("ROLLBACK")
        stored = await service.remember("this write can")
        assert stored.duplicate is False
    finally:
        holder.close()
        await service.close()


def test_concurrent_vector_writers_with_compaction_lose_and_duplicate_nothing(tmp_path: Any) -> None:
    tuning = IndexTuning(compact_every=5)  # compact often, racing the other writers
    LanceVectorIndex(tmp_path / "v", "t", 4)
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        # Its own connection, as another process has, and the lock file every writer on this data dir shares.
        index = LanceVectorIndex(tmp_path / "v", "t", 4, lock_path=tmp_path / "vectors.lock", tuning=tuning)
        try:
            for n in range(40):
                rows = [
                    VectorRow(f"{prefix}{n}-{k}", "u", "n", "s", float(n), np.random.rand(4).astype(np.float32))
                    for k in range(3)
                ]
                index.upsert(rows)
                index.upsert(rows[:1])  # a repeated batch must not duplicate
                # Every writer indexes the same new rows at once, as two servers catching up do.
                index.upsert([VectorRow(f"shared{n}", "u", "n", "s", float(n), rows[0].vector)])
                if n % 4 == 0:
                    index.delete([f"{prefix}{n}-2"])
                index.search(rows[0].vector, VectorScope("u", "n"), 3)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(p,)) for p in "abc"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    ids = lancedb.connect(tmp_path / "v").open_table("t").to_arrow().column("key").to_pylist()
    expected = {f"{p}{n}-{k}:0" for p in "abc" for n in range(40) for k in range(3) if not (k == 2 and n % 4 == 0)}
    expected |= {f"shared{n}:0" for n in range(40)}
    assert len(ids) == len(set(ids)) and set(ids) == expected


def test_a_lost_commit_race_is_retried_and_a_persistent_failure_becomes_a_backend_error() -> None:
    backoff = {"first_seconds": 0.001, "max_seconds": 0.01}
    calls: list[int] = []
    refreshed: list[int] = []

    def conflicting() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("lance error: Retryable commit conflict for version 7: preempted. Please retry.")
        return "committed"

    assert (
        commits.retry("upsert", conflicting, attempts=8, refresh=lambda: refreshed.append(1), **backoff) == "committed"
    )
    assert len(calls) == 3 and len(refreshed) == 2

    def broken() -> None:
        raise OSError("disk full")

    with pytest.raises(BackendError, match="failed to delete after 4 attempts: disk full"):
        commits.retry("delete", broken, attempts=4, **backoff)
