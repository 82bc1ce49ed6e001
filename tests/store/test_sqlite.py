"""SQLite buffer: query plans that keep lookups fast as the store grows."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent_memory.store.rows import Filters, NewRow, by_ids_query
from agent_memory.store.sqlite import Buffer

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "filters",
    [
        Filters(namespace="default"),
        Filters(namespace="work", session_id="s1", tags=("a",), since_ts=0.0, until_ts=1e10),
    ],
)
async def test_lookup_by_ids_uses_the_id_index_not_a_scope_scan(tmp_path: Path, filters: Filters) -> None:
    path = tmp_path / "memory.sqlite3"
    await (await Buffer.open(path)).close()
    sql, params = by_ids_query("default", ["a", "b", "c"], filters)
    with sqlite3.connect(path) as db:
        plan = " | ".join(str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    # The unique index on id: three probes, whatever the size of the user's scope.
    assert "SEARCH m USING INDEX sqlite_autoindex_memories_1 (id=?)" in plan, plan
    assert "memories_scope_time" not in plan and "memories_session_time" not in plan, plan


def _row(n: int, user: str, namespace: str, content: str) -> NewRow:
    now = datetime.now(UTC)
    return NewRow(f"{user}-{n}", user, namespace, "s", "user", content, f"{user}-{namespace}-{n}", [], {}, now)


async def _reference(buffer: Buffer, user: str, match: str, filters: Filters, limit: int) -> list[float]:
    """The keyword search done the plain way, rank every match in scope: its scores, best first."""
    where, params = filters.sql(user)
    sql = (
        "SELECT -bm25(memories_fts) FROM memories_fts JOIN memories m ON m.rowid = memories_fts.rowid"
        f" WHERE memories_fts MATCH ? AND {where} ORDER BY bm25(memories_fts) LIMIT ?"
    )
    async with buffer._db.execute(sql, [match, *params, limit]) as cur:
        return [round(float(r[0]), 9) for r in await cur.fetchall()]


async def test_keyword_search_finds_the_best_in_scope_matches_however_many_better_ones_are_out_of_scope(
    tmp_path: Path,
) -> None:
    rng = random.Random(3)
    words = ["apple", "pear", "plum", "fig", "kiwi", "lime", "sloe", "date"]
    buffer = await Buffer.open(tmp_path / "memory.sqlite3")
    try:
        rows = []
        for n in range(600):
            # The crowd ("other") says "apple" more often than "u" does: the best matches are mostly theirs.
            user = "u" if n % 10 == 0 else "other"
            namespace = "work" if n % 20 == 0 else "default"
            text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 12)))
            rows.append(_row(n, user, namespace, text + (" apple" * 3 if user == "other" else "")))
        await buffer.insert_many(rows)
        for user, namespace, match in [
            ("u", "default", '"apple"'),
            ("u", "work", '"apple" OR "plum"'),
            ("other", "default", '"apple" OR "fig"'),
            ("u", "default", '"sloe" OR "date" OR "kiwi"'),
        ]:
            filters = Filters(namespace=namespace)
            for limit in (1, 5, 30):
                found = await buffer.keyword_search(user, match, filters, limit)
                # Scores, not ids: equal scores may come in either order.
                assert [round(score, 9) for _, score in found] == await _reference(buffer, user, match, filters, limit)
                assert found and all(m.namespace == namespace for m, _ in found)
    finally:
        await buffer.close()
