"""Keyword search on Postgres full-text search: ranked by ts_rank_cd, its cost bounded on common words.

As on SQLite (store/keyword.py): ranking scores every row a query matches, so a word most memories contain would
rank them all. A term matching more than COMMON_ROWS rows is common: its matches are ranked among the newest
COMMON_ROWS of them, while every match of the rarer terms is still ranked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent_memory.models import Memory
from agent_memory.store.keyword import COMMON_ROWS
from agent_memory.store.postgres.pool import Database
from agent_memory.store.postgres.sql import (
    COLUMNS,
    RANK_NORMALISATION,
    RANK_WEIGHTS,
    WIDTH,
    memory_from_row,
    tsquery,
    where,
)
from agent_memory.store.rows import Filters


async def search(
    db: Database, user: str, terms: Sequence[str], filters: Filters, limit: int
) -> list[tuple[Memory, float]]:
    """Return memories matching any of the terms, best first, ranked by ts_rank_cd (higher is better)."""
    if not terms:
        return []
    query, query_params = tsquery(terms)
    clause, params = where(filters, user)
    common = [t for t in terms if await _common(db, t)]
    rank = f"ts_rank_cd({RANK_WEIGHTS}, m.search, {query}, {RANK_NORMALISATION}) AS score"
    if not common:
        # The query inline (twice), not joined from a subquery: only then does the planner use the GIN index.
        sql = f"SELECT {COLUMNS}, {rank} FROM memories m WHERE m.search @@ {query} AND {clause}"
        args: list[Any] = [*query_params, *query_params, *params]
    else:
        newest, newest_params = tsquery(common)
        parts = [f"(SELECT m.pos FROM memories m WHERE m.search @@ {newest} AND {clause} ORDER BY m.pos DESC LIMIT %s)"]
        part_params: list[Any] = [*newest_params, *params, COMMON_ROWS]
        rare = [t for t in terms if t not in common]
        if rare:
            older, older_params = tsquery(rare)
            parts.append(f"(SELECT m.pos FROM memories m WHERE m.search @@ {older} AND {clause})")
            part_params += [*older_params, *params]
        chosen = " UNION ".join(parts)
        sql = f"SELECT {COLUMNS}, {rank} FROM memories m WHERE m.pos IN ({chosen})"
        args = [*query_params, *part_params]
    rows = await db.all(f"{sql} ORDER BY score DESC, m.pos LIMIT %s", [*args, limit])
    return [(memory_from_row(r), float(r[WIDTH])) for r in rows]


async def _common(db: Database, term: str) -> bool:
    """Return whether a term matches more than COMMON_ROWS memories (stops counting past that)."""
    probe, probe_params = tsquery([term])
    sql = f"SELECT count(*) FROM (SELECT 1 FROM memories m WHERE m.search @@ {probe} LIMIT %s) AS found"
    return int(await db.scalar(sql, [*probe_params, COMMON_ROWS + 1])) > COMMON_ROWS
