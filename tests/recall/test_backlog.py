"""Recall never waits for memories still being embedded: it answers at once and says how many there are."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from agent_memory.config import Settings
from agent_memory.index.protocol import VectorIndex, VectorRow
from agent_memory.recall.searches import INLINE_CHARS, INLINE_PENDING
from tests.conftest import HashEmbedder, open_ready

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]


class _StalledIndex:
    """A vector index whose writes wait for a gate: a backlog that cannot drain until the test says so."""

    def __init__(self, inner: VectorIndex) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.writing = threading.Event()

    def upsert(self, rows: Sequence[VectorRow]) -> None:
        self.writing.set()
        if not self.gate.wait(timeout=60):
            raise TimeoutError("the test never opened the gate")
        self.inner.upsert(rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_recall_answers_at_once_while_a_backlog_waits_and_finds_it_by_keyword(settings: Settings) -> None:
    service = await open_ready(settings.with_overrides(model_wait_seconds=0))
    stalled = _StalledIndex(service._indexer.vectors)  # type: ignore[arg-type]
    service._indexer.vectors = stalled  # type: ignore[assignment]
    try:
        await service.remember("The car is parked on level 4, spot 17 of the airport garage")
        for n in range(INLINE_PENDING + 3):
            await service.remember(f"note {n} about the quarterly budget review")
        assert await anyio.to_thread.run_sync(stalled.writing.wait, 30)
        with anyio.fail_after(1.5):  # less than the 2 s recall used to wait for a backlog
            found = await service.recall("where is the car parked", limit=3)
        assert found.hits[0].content.startswith("The car is parked")
        assert found.mode == "hybrid" and not found.degraded
        waiting = INLINE_PENDING + 4
        assert found.unindexed == waiting
        assert found.note is not None and f"{waiting} memories in scope are still being embedded" in found.note
        # Another scope's backlog is not this one's.
        elsewhere = await service.recall("where is the car parked", namespace="work")
        assert elsewhere.unindexed == 0 and not elsewhere.hits
    finally:
        stalled.gate.set()
    try:
        assert await service.wait_indexed(30) is None
        settled = await service.recall("where is the car parked", limit=3)
        assert settled.unindexed == 0 and settled.note is None
    finally:
        await service.close()


async def test_the_few_newest_memories_are_found_by_meaning_before_they_are_indexed(settings: Settings) -> None:
    service = await open_ready(settings.with_overrides(model_wait_seconds=0))
    stalled = _StalledIndex(service._indexer.vectors)  # type: ignore[arg-type]
    service._indexer.vectors = stalled  # type: ignore[assignment]
    try:
        await service.remember("an old note about tomatoes in the garden")
        fresh = await service.remember("The spare key hangs behind the kitchen door")
        with anyio.fail_after(1.5):
            # Vector search alone: only the inline embedding of what waits can find it.
            found = await service.recall("spare key kitchen door", limit=2, mode="vector")
        assert found.hits and found.hits[0].id == fresh.id
        assert found.unindexed == 0 and found.note is None
        # A long one is left to keyword search: embedding it would cost the recall more than its own searches.
        long = await service.remember(
            "The spare key is at the neighbours' house. " + "And more. " * (INLINE_CHARS // 10)
        )
        found = await service.recall("spare key kitchen door", limit=2, mode="vector")
        assert long.id not in {h.id for h in found.hits} and found.unindexed == 1
        assert found.hits[0].id == fresh.id
    finally:
        stalled.gate.set()
        await service.close()


async def test_a_fresh_exact_match_is_not_outranked_for_lacking_a_vector(settings: Settings) -> None:
    service = await open_ready(settings.with_overrides(model_wait_seconds=0))
    try:
        for n in range(20):
            await service.remember(f"what is the plan for the code review number {n}")
        assert await service.wait_indexed(30) is None
        stalled = _StalledIndex(service._indexer.vectors)  # type: ignore[arg-type]
        service._indexer.vectors = stalled  # type: ignore[assignment]
        try:
            fresh = await service.remember("The vault code word is zxqvbn")
            for n in range(INLINE_PENDING + 2):  # a backlog too large to embed with the query
                await service.remember(f"budget line {n}")
            found = await service.recall("what is the code word zxqvbn", limit=1)
            assert found.unindexed == INLINE_PENDING + 3
            assert [h.id for h in found.hits] == [fresh.id]
        finally:
            stalled.gate.set()
    finally:
        await service.close()


class _LaneEmbedder(HashEmbedder):
    """A HashEmbedder whose queries go beside an indexing slice (the query lane), as the bundled model's do."""

    embeds_concurrently = True


async def test_recall_embeds_the_newest_beside_a_busy_model(settings: Settings) -> None:
    service = await open_ready(settings.with_overrides(model_wait_seconds=0), _LaneEmbedder())
    model = service._indexer._model
    try:
        assert model._lock.acquire(timeout=10)  # an indexing slice holding the model
        try:
            fresh = await service.remember("The spare key hangs behind the kitchen door")
            with anyio.fail_after(5):  # waiting for the model would outlast this
                # Vector search alone: only the inline embedding of what waits can find it.
                found = await service.recall("spare key kitchen door", limit=2, mode="vector")
        finally:
            model._lock.release()
        assert found.hits[0].id == fresh.id
        assert found.unindexed == 0
    finally:
        await service.close()
