"""The SQLite store: query plans that keep lookups fast as the store grows."""

from __future__ import annotations

import contextlib
import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent_memory.store.keyword import in_scope_query
from agent_memory.store.rows import Filters, NewRow, by_ids_query
from agent_memory.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

# A plain scope, and one with every filter: lookups by id must not scan either.
SCOPES = [
    Filters(namespace="default"),
    Filters(namespace="work", session_id="s1", tags=("a",), since_ts=0.0, until_ts=1e10),
]


async def _plan(tmp_path: Path, sql: str, params: list[object]) -> str:
    """Return SQLite's query plan for the SQL on a new store's schema, its steps joined by " | "."""
    path = tmp_path / "memory.sqlite3"
    await (await SQLiteStore.open(path)).close()
    with sqlite3.connect(path) as db:
        return " | ".join(str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))


@pytest.mark.parametrize("filters", SCOPES)
async def test_lookup_by_ids_uses_the_id_index_not_a_scope_scan(tmp_path: Path, filters: Filters) -> None:
    plan = await _plan(tmp_path, *by_ids_query("default", ["a", "b", "c"], filters))
    # The unique index on id: three probes, whatever the size of the user's scope.
    assert "SEARCH m USING INDEX sqlite_autoindex_memories_1 (id=?)" in plan, plan
    assert "memories_scope_time" not in plan and "memories_session_time" not in plan, plan


@pytest.mark.parametrize("filters", SCOPES)
async def test_keyword_search_checks_the_scope_of_its_ranked_rows_by_rowid(tmp_path: Path, filters: Filters) -> None:
    plan = await _plan(tmp_path, *in_scope_query("default", list(range(1, 401)), filters))
    # Four hundred rowid probes, whatever the size of the user's scope (its index would scan the whole scope).
    assert "SEARCH m USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
    assert "memories_scope_time" not in plan and "memories_session_time" not in plan, plan


def _row(n: int, user: str, namespace: str, content: str) -> NewRow:
    now = datetime.now(UTC)
    return NewRow(f"{user}-{n}", user, namespace, "s", "user", content, f"{user}-{namespace}-{n}", [], {}, now)


def _reference(path: Path, user: str, terms: list[str], filters: Filters, limit: int) -> list[float]:
    """The keyword search done the plain way, rank every match of any term in scope: its scores, best first."""
    where, params = filters.sql(user)
    match = " OR ".join(f'"{term}"' for term in terms)
    sql = (
        "SELECT -memories_fts.rank FROM memories_fts JOIN memories m ON m.rowid = memories_fts.rowid"
        f" WHERE memories_fts MATCH ? AND {where} ORDER BY memories_fts.rank LIMIT ?"
    )
    with contextlib.closing(sqlite3.connect(path)) as db:  # a reader of its own, beside the store's connection
        return [round(float(r[0]), 9) for r in db.execute(sql, [match, *params, limit])]


async def test_keyword_search_finds_the_best_in_scope_matches_however_many_better_ones_are_out_of_scope(
    tmp_path: Path,
) -> None:
    rng = random.Random(3)
    words = ["apple", "pear", "plum", "fig", "kiwi", "lime", "sloe", "date"]
    path = tmp_path / "memory.sqlite3"
    store = await SQLiteStore.open(path)
    try:
        rows = []
        for n in range(600):
            # The crowd ("other") says "apple" more often than "u" does: the best matches are mostly theirs.
            user = "u" if n % 10 == 0 else "other"
            namespace = "work" if n % 20 == 0 else "default"
            text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 12)))
            rows.append(_row(n, user, namespace, text + (" apple" * 3 if user == "other" else "")))
        await store.insert_many(rows)
        for user, namespace, terms in [
            ("u", "default", ["apple"]),
            ("u", "work", ["apple", "plum"]),
            ("other", "default", ["apple", "fig"]),
            ("u", "default", ["sloe", "date", "kiwi"]),
        ]:
            filters = Filters(namespace=namespace)
            for limit in (1, 5, 30):
                found = await store.keyword_search(user, terms, filters, limit)
                # Scores, not ids: equal scores may come in either order.
                assert [round(score, 9) for _, score in found] == _reference(path, user, terms, filters, limit)
                assert found and all(m.namespace == namespace for m, _ in found)
    finally:
        await store.close()
