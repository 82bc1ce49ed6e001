"""SQLite buffer: query plans that keep lookups fast as the store grows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent_memory.store.buffer import Buffer, Filters, by_ids_query

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
