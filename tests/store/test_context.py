"""Keyword search reads a chat turn with the turn before it in its session, and returns the turn itself."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent_memory.config import Settings
from agent_memory.store.migrations import MIGRATIONS, statements
from agent_memory.store.protocol import MemoryStore
from agent_memory.store.rows import Filters, NewRow
from agent_memory.store.sqlite import SQLiteStore
from tests.conftest import open_store

START = datetime(2024, 5, 8, 13, 56, tzinfo=UTC)
SCOPE = Filters(namespace="default")

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]


def _turn(n: int, content: str, *, session: str = "s1", seconds: int | None = None, role: str = "user") -> NewRow:
    when = START + timedelta(seconds=10 * n if seconds is None else seconds)
    turn = role in ("user", "assistant")
    return NewRow(f"t{n}", "u", "default", session, role, content, f"hash-{n}", [], {}, when, in_conversation=turn)


async def _found(store: MemoryStore, word: str) -> list[str]:
    return [m.id for m, _ in await store.keyword_search("u", [word], SCOPE, 10)]


async def test_an_answer_is_found_by_the_question_before_it_and_ranks_below_the_question(settings: Settings) -> None:
    store = await open_store(settings)
    try:
        await store.insert_many([_turn(1, "Kate: What is your favourite movie?"), _turn(2, "Sam: Inception, easily.")])
        assert await _found(store, "movie") == ["t1", "t2"]  # the turn that says it ranks first
        hits = await store.keyword_search("u", ["movie"], SCOPE, 10)
        assert hits[1][0].content == "Sam: Inception, easily."  # the turn itself, never its context
    finally:
        await store.close()


async def test_context_stays_inside_the_session_and_skips_standalone_facts(settings: Settings) -> None:
    store = await open_store(settings)
    try:
        await store.insert_many(
            [
                _turn(1, "Kate: Any plans for the marathon?"),
                _turn(2, "Sam: Training every morning.", session="s2"),
                _turn(3, "The office closes at six.", role="fact"),
            ]
        )
        assert await _found(store, "marathon") == ["t1"]
    finally:
        await store.close()


async def test_a_turn_stored_out_of_order_becomes_the_context_of_the_turn_after_it(settings: Settings) -> None:
    store = await open_store(settings)
    try:
        await store.insert_many([_turn(1, "Kate: Morning!"), _turn(3, "Sam: Definitely the lake.")])
        await store.insert_many([_turn(2, "Kate: Lake or mountains this summer?")])
        assert await _found(store, "mountains") == ["t2", "t3"]
        assert await _found(store, "morning") == ["t1", "t2"]
    finally:
        await store.close()


async def test_a_forgotten_turn_leaves_no_trace_in_the_next_turns_context(settings: Settings) -> None:
    store = await open_store(settings)
    try:
        await store.insert_many(
            [_turn(1, "Kate: Hi"), _turn(2, "Kate: My PIN hint is bluebird."), _turn(3, "Sam: Noted.")]
        )
        assert await _found(store, "bluebird") == ["t2", "t3"]
        assert await store.delete("u", "t2")
        assert await _found(store, "bluebird") == []
        assert await _found(store, "hi") == ["t1", "t3"]  # the turn before the forgotten one is the context now
    finally:
        await store.close()


async def test_a_version_1_database_gets_the_context_of_every_stored_turn(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with sqlite3.connect(path) as db:
        for statement in statements(MIGRATIONS[0]):
            db.execute(statement)
        db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        db.execute("INSERT INTO schema_migrations VALUES (1, '2024-01-01T00:00:00+00:00')")
        for n, text in [(1, "Kate: Where should we eat tonight?"), (2, "Sam: The ramen place.")]:
            db.execute(
                "INSERT INTO memories (id, user, namespace, session_id, role, content, content_hash, created_at,"
                " created_ts) VALUES (?, 'u', 'default', 's1', 'user', ?, ?, '', ?)",
                (f"t{n}", text, f"h{n}", START.timestamp() + n),
            )
    store = await SQLiteStore.open(path)
    try:
        assert await _found(store, "eat") == ["t1", "t2"]
        assert await _found(store, "ramen") == ["t2"]
    finally:
        await store.close()


async def test_memories_of_the_servers_default_session_are_read_alone(settings: Settings) -> None:
    store = await open_store(settings)
    try:
        first = _turn(1, "The staging database runs on port 6543.")
        second = _turn(2, "Lunch on Fridays is at the noodle bar.")
        await store.insert_many([replace(first, in_conversation=False), replace(second, in_conversation=False)])
        assert await _found(store, "staging") == ["t1"]
    finally:
        await store.close()


async def test_neighbours_are_the_two_turns_either_side_in_the_same_session(settings: Settings) -> None:
    store = await open_store(settings)
    try:
        turns = [_turn(n, f"Kate: line {n}") for n in range(1, 6)]
        # Stored out of order, with another session and a standalone fact interleaved: neither is a neighbour.
        await store.insert_many([turns[4], turns[0], _turn(9, "Sam: elsewhere", session="s2"), *turns[1:4]])
        await store.insert_many([_turn(8, "The office closes at six.", role="fact", seconds=25)])
        found = await store.neighbours("u", ["t1", "t3", "t5", "t8", "t9", "missing"])
        assert found["t3"] == ("t1", "t2", "t4", "t5")
        assert found["t1"] == (None, None, "t2", "t3")
        assert found["t5"] == ("t3", "t4", None, None)
        assert found["t9"] == (None, None, None, None)
        assert "t8" not in found and "missing" not in found  # a standalone fact has no neighbours
        assert await store.neighbours("another-user", ["t3"]) == {}
    finally:
        await store.close()
