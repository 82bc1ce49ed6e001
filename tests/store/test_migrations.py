"""Schema migrations: a blank file gets the whole schema once, and older files keep their memories."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from agent_memory.recall.terms import search_terms
from agent_memory.store.migrations import MIGRATIONS, statements
from agent_memory.store.rows import Filters, NewRow
from agent_memory.store.sqlite import SQLiteStore, inspect_file

pytestmark = pytest.mark.anyio

NOW = datetime(2024, 5, 1, tzinfo=UTC)
TABLES = {"memories", "memories_fts", "summaries", "kv", "schema_migrations"}
TRIGGERS = {"memories_ai", "memories_ad"}
INDEXES = {"memories_dedupe", "memories_scope_time", "memories_session_time", "memories_unindexed", "summaries_key"}


def schema(path: Path) -> dict[str, set[str]]:
    """Return the names of the file's tables, triggers and indexes by kind."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT type, name FROM sqlite_master").fetchall()
    found: dict[str, set[str]] = {}
    for kind, name in rows:
        found.setdefault(kind, set()).add(name)
    return found


def versions(path: Path) -> list[int]:
    """Return the recorded migration versions in order."""
    with sqlite3.connect(path) as db:
        return [int(r[0]) for r in db.execute("SELECT version FROM schema_migrations ORDER BY version")]


def version_1_database(path: Path) -> None:
    """Write a database as version 1 of the schema left it, holding one memory."""
    db = sqlite3.connect(path)
    try:
        db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        db.executescript(MIGRATIONS[0])
        db.execute("INSERT INTO schema_migrations VALUES (1, '2024-01-01T00:00:00+00:00')")
        db.execute(
            "INSERT INTO memories (id, user, namespace, session_id, role, content, content_hash, tags, metadata,"
            " created_at, created_ts) VALUES ('old-1', 'alex', 'default', 's1', 'fact',"
            " 'Prefers dark mode in every editor', 'hash-1', '[\"ui\"]', '{\"k\": 1}', '2024-01-02T00:00:00Z',"
            " 1704153600.0)"
        )
        db.commit()
    finally:
        db.close()


async def test_a_blank_database_gets_every_table_trigger_and_index_and_records_each_migration(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    await (await SQLiteStore.open(path)).close()
    found = schema(path)
    assert found["table"] >= TABLES
    assert found["trigger"] >= TRIGGERS
    assert found["index"] >= INDEXES
    assert versions(path) == list(range(1, len(MIGRATIONS) + 1))


async def test_reopening_a_current_database_applies_nothing_again(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    await (await SQLiteStore.open(path)).close()
    with sqlite3.connect(path) as db:
        first = db.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
    await (await SQLiteStore.open(path)).close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version, applied_at FROM schema_migrations").fetchall() == first


async def test_a_version_1_database_keeps_its_memories_and_finds_them_by_keyword(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    version_1_database(path)
    buffer = await SQLiteStore.open(path)
    try:
        match = search_terms("dark mode")
        hits = await buffer.keyword_search("alex", match, Filters(namespace="default"), 5)
        assert [(m.id, m.content, m.tags, m.metadata) for m, _ in hits] == [
            ("old-1", "Prefers dark mode in every editor", ["ui"], {"k": 1})
        ]
        assert await buffer.keyword_search("someone-else", match, Filters(namespace="default"), 5) == []
    finally:
        await buffer.close()
    assert versions(path) == list(range(1, len(MIGRATIONS) + 1))
    assert inspect_file(path)["memories"] == 1


async def test_two_connections_opening_a_blank_database_at_once_apply_each_migration_once(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    opened: list[SQLiteStore] = []

    async def open_one() -> None:
        opened.append(await SQLiteStore.open(path))

    with anyio.fail_after(120):
        async with anyio.create_task_group() as group:
            for _ in range(2):
                group.start_soon(open_one)
    for buffer in opened:
        await buffer.close()
    assert len(opened) == 2
    assert versions(path) == list(range(1, len(MIGRATIONS) + 1))
    assert schema(path)["trigger"] >= TRIGGERS


async def test_a_database_from_a_newer_version_opens_and_keeps_its_version_record(tmp_path: Path) -> None:
    # Today an unknown newer version is neither refused nor reported: the known schema is used as it is.
    path = tmp_path / "memory.sqlite3"
    buffer = await SQLiteStore.open(path)
    await buffer.insert_many([NewRow("m1", "alex", "default", "s1", "fact", "Owns a red bicycle", "h1", [], {}, NOW)])
    await buffer.close()
    newer = len(MIGRATIONS) + 1
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO schema_migrations VALUES (?, '2099-01-01T00:00:00+00:00')", (newer,))
    buffer = await SQLiteStore.open(path)
    try:
        match = search_terms("bicycle")
        hits = await buffer.keyword_search("alex", match, Filters(namespace="default"), 5)
        assert [m.id for m, _ in hits] == ["m1"]
    finally:
        await buffer.close()
    assert versions(path) == [*range(1, newer + 1)]
    assert inspect_file(path)["schema_version"] == newer


def test_statements_keep_a_trigger_body_whole() -> None:
    parts = statements(MIGRATIONS[0])
    triggers = [p for p in parts if p.lstrip().startswith("CREATE TRIGGER")]
    assert len(triggers) == 2
    assert all(t.rstrip().endswith("END;") for t in triggers)
    assert all(sqlite3.complete_statement(p) for p in parts)


def test_statements_keep_a_trailing_statement_without_a_semicolon() -> None:
    assert statements("CREATE TABLE a (x);\nCREATE TABLE b (y)") == ["CREATE TABLE a (x);", "CREATE TABLE b (y)"]
