"""The tag index (memory_tags): derived from each memory's tags, kept in step, and what a tag filter walks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent_memory.models import NewMemory
from agent_memory.service import MemoryService
from agent_memory.store.browse import _Query
from agent_memory.store.rows import Filters
from agent_memory.store.sqlite import SQLiteStore
from tests.store.test_migrations import version_1_database

pytestmark = pytest.mark.anyio


def tag_rows(path: Path) -> list[tuple[str, str, str]]:
    """Return (user, memory id, tag) of every tag row, sorted."""
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT t.user, m.id, t.tag FROM memory_tags t JOIN memories m ON m.rowid = t.memory_rowid"
        ).fetchall()
    return sorted((str(u), str(i), str(t)) for u, i, t in rows)


async def test_a_migrated_database_gets_the_tags_of_the_memories_it_already_holds(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    version_1_database(path)
    await (await SQLiteStore.open(path)).close()
    assert tag_rows(path) == [("alex", "old-1", "ui")]


async def test_tag_rows_follow_writes_edits_forgets_and_changed_tags(service: MemoryService) -> None:
    path = service.settings.sqlite_path
    first = await service.remember("the shed key is under the mat", tags=["home", "keys"])
    assert tag_rows(path) == [("default", first.id, "home"), ("default", first.id, "keys")]
    second = await service.edit(first.id, content="the shed key is in the drawer", tags=["home"])
    # The old version keeps its tags (it is in the chain); the filter leaves it out as superseded.
    assert ("default", second.id, "home") in tag_rows(path) and len(tag_rows(path)) == 3
    assert [m.id for m in (await service.browse(tags=["home"])).memories] == [second.id]
    with sqlite3.connect(path) as db:  # a change of the JSON column itself (no code path does it today)
        db.execute("UPDATE memories SET tags = '[\"garden\"]' WHERE id = ?", (second.id,))
    assert ("default", second.id, "garden") in tag_rows(path)
    assert ("default", second.id, "home") not in tag_rows(path)
    await service.forget_many([second.id])
    assert tag_rows(path) == []


async def test_tag_filters_page_count_and_chart_as_the_tags_say(service: MemoryService) -> None:
    items = [
        NewMemory(
            content=f"note {i}",
            role="fact" if i % 2 else "user",
            tags=["a", "b"] if i % 3 == 0 else ["a"],
            created_at=f"2026-03-0{1 + i // 4}T10:00:00Z" if i < 8 else "2026-03-01T10:00:00Z",
        )
        for i in range(12)
    ]
    await service.remember_many(items)
    await service.scoped("someone-else").remember("note for another user", tags=["a"])
    seen, cursor = [], None
    while True:
        page = await service.browse(tags=["a"], limit=5, cursor=cursor)
        assert page.total == 12
        seen += [m.content for m in page.memories]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(f"note {i}" for i in range(12)) and len(seen) == 12
    assert seen[:4] == ["note 7", "note 6", "note 5", "note 4"]
    both = (await service.browse(tags=["b", "a"])).memories
    assert sorted(m.content for m in both) == ["note 0", "note 3", "note 6", "note 9"]
    facts = await service.browse(tags=["b"], roles=["fact"])
    assert sorted(m.content for m in facts.memories) == ["note 3", "note 9"] and facts.total == 2
    since = await service.browse(tags=["a"], since="2026-03-02T00:00:00Z")
    assert sorted(m.content for m in since.memories) == ["note 4", "note 5", "note 6", "note 7"]
    days = await service.day_counts(tags=["a"])
    assert [(d.day, d.count) for d in days] == [("2026-03-02", 4), ("2026-03-01", 8)]
    assert (await service.browse(tags=["nothing"])).memories == []


async def test_a_tag_filter_walks_the_tag_index_not_every_memory(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    version_1_database(path)
    await (await SQLiteStore.open(path)).close()
    q = _Query.of("alex", Filters(namespace="default", tags=("ui", "x")), ("fact",))
    with sqlite3.connect(path) as db:
        for sql in (
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {q.source} WHERE {q.where} LIMIT 10)",
            f"SELECT m.created_ts FROM {q.source} WHERE {q.where} ORDER BY m.created_ts DESC LIMIT 10",
        ):
            plan = [str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", q.params)]
            reads = [step for step in plan if step.startswith(("SEARCH", "SCAN")) and "(subquery" not in step]
            # The tag's rows in index order (no sort), each further tag by the memory's rowid: no memory read at all.
            assert reads == [
                "SEARCH m USING PRIMARY KEY (user=? AND namespace=? AND tag=?)",
                "SEARCH o USING COVERING INDEX memory_tags_memory (memory_rowid=?)",
            ], plan
            assert not any("TEMP B-TREE" in step for step in plan), plan
