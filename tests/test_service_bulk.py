"""remember_many: the bulk write path imports use, through the same checks as remember."""

from __future__ import annotations

import pytest

from agent_memory.config import Settings
from agent_memory.models import NewMemory
from agent_memory.service import MemoryService
from tests.conftest import HashEmbedder

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]


async def test_remember_many_stores_valid_items_reports_bad_ones_and_indexes_them(settings: Settings) -> None:
    service = await MemoryService.open(settings, HashEmbedder())
    try:
        result = await service.remember_many(
            [
                NewMemory(content="We deploy on Fridays", role="fact", tags=["Ops"]),
                NewMemory(content="   "),
                NewMemory(content="Kept id and time", id="abc123", created_at="2024-05-01T10:00:00Z", role="bogus"),
                NewMemory(content="Kept id and time", id="abc123", created_at="2024-05-01T10:00:00Z"),
                NewMemory(content="We deploy on Fridays", role="fact"),
            ]
        )
        assert (result.stored, result.duplicates, result.failed) == (2, 1, 2)
        assert [i.index for i in result.items] == [0, 1, 2, 3, 4]
        assert result.items[1].error and "empty" in result.items[1].error
        assert result.items[2].error and "role" in result.items[2].error
        assert result.items[3].id == "abc123" and result.items[3].created_at == "2024-05-01T10:00:00Z"
        assert result.items[4].duplicate and result.items[4].id == result.items[0].id
        assert await service.wait_indexed(30) is None
        found = await service.recall("when do we deploy")
        assert found.mode == "hybrid" and found.hits[0].id == result.items[0].id and found.hits[0].tags == ["ops"]
    finally:
        await service.close()


async def test_remember_many_twice_changes_nothing(settings: Settings) -> None:
    items = [NewMemory(content=f"note {n}", id=f"id-{n}", session_id="s1") for n in range(50)]
    service = await MemoryService.open(settings, HashEmbedder())
    try:
        first = await service.remember_many(items)
        again = await service.remember_many(items)
        recent = await service.load_recent(limit=200)
    finally:
        await service.close()
    assert first.stored == 50 and again.stored == 0 and again.duplicates == 50
    assert [m.id for m in recent.messages] == [f"id-{n}" for n in range(50)]


async def test_a_kept_id_already_used_elsewhere_gets_a_fresh_id(settings: Settings) -> None:
    service = await MemoryService.open(settings, HashEmbedder())
    try:
        await service.remember_many([NewMemory(content="Shared note", id="same")])
        moved = await service.remember_many([NewMemory(content="Shared note", id="same", namespace="other")])
        again = await service.remember_many([NewMemory(content="Shared note", id="same", namespace="other")])
    finally:
        await service.close()
    assert moved.stored == 1 and moved.items[0].id not in (None, "same")
    assert again.duplicates == 1 and again.items[0].id == moved.items[0].id


async def test_scoped_service_writes_for_another_user_only(settings: Settings) -> None:
    service = await MemoryService.open(settings, HashEmbedder())
    try:
        await service.scoped("alice").remember_many([NewMemory(content="Alice likes tea")])
        mine = await service.load_recent()
        hers = await service.scoped("alice").load_recent()
    finally:
        await service.close()
    assert mine.messages == [] and [m.content for m in hers.messages] == ["Alice likes tea"]
