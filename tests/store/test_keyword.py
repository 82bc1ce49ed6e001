"""Keyword search stays bounded on words most memories contain, and still finds an old rare match (both stores)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent_memory.store import keyword
from agent_memory.store.protocol import MemoryStore
from agent_memory.store.rows import Filters, NewRow
from agent_memory.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio


def _row(n: int, content: str, namespace: str = "default") -> NewRow:
    now = datetime.now(UTC)
    return NewRow(f"m{n}", "u", namespace, "s", "user", content, f"h{n}", [], {}, now)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str | None:
    """The Postgres database of this test, or None for SQLite (the server starts outside the event loop)."""
    return str(request.getfixturevalue("pg_url")) if request.param == "postgres" else None


@pytest.fixture
async def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str | None) -> MemoryStore:
    monkeypatch.setattr(keyword, "COMMON_ROWS", 10)
    opened: MemoryStore
    if url is not None:
        from agent_memory.store.postgres import PostgresStore
        from agent_memory.store.postgres import keyword as pg_keyword

        monkeypatch.setattr(pg_keyword, "COMMON_ROWS", 10)
        opened = await PostgresStore.open(url)
    else:
        opened = await SQLiteStore.open(tmp_path / "memory.sqlite3")
    # The oldest memory holds the rare word; 40 later ones share only the common word.
    rows = [_row(0, "the project moved to Porto last spring")]
    rows += [_row(n, f"a note about the project, number {n}") for n in range(1, 41)]
    await opened.insert_many(rows)
    return opened


async def test_a_common_word_is_ranked_only_among_its_newest_matches(store: MemoryStore) -> None:
    try:
        found = await store.keyword_search("u", ["project"], Filters(namespace="default"), 100)
        ids = {m.id for m, _ in found}
        assert ids == {f"m{n}" for n in range(41 - keyword.COMMON_ROWS, 41)}
    finally:
        await store.close()


async def test_an_old_rare_match_is_still_found_first_beside_a_common_word(store: MemoryStore) -> None:
    try:
        found = await store.keyword_search("u", ["porto", "project"], Filters(namespace="default"), 5)
        assert found[0][0].id == "m0"
        assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
    finally:
        await store.close()


async def test_a_narrow_scope_is_ranked_within_itself_under_the_bound(store: MemoryStore) -> None:
    try:
        await store.insert_many([_row(100, "project notes kept apart", namespace="side")])
        found = await store.keyword_search("u", ["project"], Filters(namespace="side"), 5)
        assert [m.id for m, _ in found] == ["m100"]
    finally:
        await store.close()


async def test_words_under_the_bound_rank_every_match(store: MemoryStore) -> None:
    try:
        await store.insert_many([_row(200 + n, f"spring cleaning, round {n}") for n in range(5)])
        found = await store.keyword_search("u", ["spring"], Filters(namespace="default"), 100)
        assert {m.id for m, _ in found} == {"m0", *(f"m{200 + n}" for n in range(5))}
        rare = await store.keyword_search("u", ["porto", "spring"], Filters(namespace="default"), 100)
        assert rare[0][0].id == "m0" and len(rare) == 6
    finally:
        await store.close()


async def test_a_rare_word_outweighs_a_common_word_said_many_times(store: MemoryStore) -> None:
    # Ranked by how rare each word is (BM25's idf), as FTS5 does: repeating a word most memories hold
    # ("note") does not beat the one memory that holds the rarer word of the query ("lisbon").
    try:
        await store.insert_many(
            [
                _row(300, "note: note to self, a note on the note about notes"),
                _row(301, "a short trip to Lisbon in May, with a note or two"),
            ]
        )
        found = await store.keyword_search("u", ["lisbon", "note"], Filters(namespace="default"), 5)
        assert found[0][0].id == "m301"
    finally:
        await store.close()


async def test_the_best_matches_out_of_scope_leave_room_for_those_in_it(store: MemoryStore) -> None:
    # The strongest matches all sit in another namespace: the scope check goes past them, down the ranking, and
    # returns only the namespace's own matches, best first.
    try:
        await store.insert_many([_row(400 + n, f"zephyr zephyr zephyr {n}", namespace="side") for n in range(6)])
        await store.insert_many(
            [_row(500 + n, f"zephyr, said once among many other words, {'more ' * n}") for n in range(4)]
        )
        found = await store.keyword_search("u", ["zephyr"], Filters(namespace="default"), 4)
        assert [m.id for m, _ in found] == [f"m{500 + n}" for n in range(4)]
        assert all(m.namespace == "default" for m, _ in found)
    finally:
        await store.close()
