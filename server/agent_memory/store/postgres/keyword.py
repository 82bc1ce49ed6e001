"""Keyword search on Postgres full-text search: BM25-like ranking, its cost bounded on common words.

Postgres's ranking functions know nothing of how rare a word is, and `ts_rank_cd` counts every repeat of a word
in full: a memory repeating a word most memories hold outranked the one memory holding the query's rare word.
Each term is ranked on its own with `ts_rank` (a word's repeats add less and less, as BM25's term frequency
saturates) and weighted by its inverse document frequency, as BM25 does on SQLite (FTS5), so rare words decide;
normalisation 1 (divide by 1 + log of the length) stands in for BM25's length normalisation.

As on SQLite (store/keyword.py): ranking scores every row a query matches, so a word most memories contain would
rank them all. A term matching more than COMMON_ROWS rows is common: its matches are ranked among the newest
COMMON_ROWS of them, while every match of the rarer terms is still ranked.
"""

from __future__ import annotations

import math
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

# Below this many memories (by the planner's estimate) the total is counted exactly: cheap, and fresh tables
# have no estimate yet.
EXACT_TOTAL = 10_000


async def search(
    db: Database, user: str, terms: Sequence[str], filters: Filters, limit: int
) -> list[tuple[Memory, float]]:
    """Return memories matching any of the terms, best first, with a BM25-like score (higher is better)."""
    matches = {t: await _matches(db, t) for t in dict.fromkeys(terms)}
    terms = [t for t, n in matches.items() if n]  # a term found nowhere (or only a stopword) adds nothing
    if not terms:
        return []
    query, query_params = tsquery(terms)
    clause, params = where(filters, user)
    common = [t for t in terms if matches[t] > COMMON_ROWS]
    rank, rank_params = _rank(terms, matches, await _total(db))
    if not common:
        # The query inline, not joined from a subquery: only then does the planner use the GIN index.
        sql = f"SELECT {COLUMNS}, {rank} FROM memories m WHERE m.search @@ {query} AND {clause}"
        args: list[Any] = [*rank_params, *query_params, *params]
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
        args = [*rank_params, *part_params]
    rows = await db.all(f"{sql} ORDER BY score DESC, m.pos LIMIT %s", [*args, limit])
    return [(memory_from_row(r), float(r[WIDTH])) for r in rows]


def _rank(terms: Sequence[str], matches: dict[str, int], total: int) -> tuple[str, list[Any]]:
    """Return the score expression (each term's ts_rank weighted by its BM25 idf) and its parameters."""
    parts, params = [], []
    for term in terms:
        found = matches[term]  # past COMMON_ROWS only a lower bound: a common word's idf is small either way
        idf = math.log(1 + (max(total, found) - found + 0.5) / (found + 0.5))
        parts.append(f"%s * ts_rank({RANK_WEIGHTS}, m.search, plainto_tsquery('english', %s), {RANK_NORMALISATION})")
        params += [idf, term]
    return f"({' + '.join(parts)}) AS score", params


async def _matches(db: Database, term: str) -> int:
    """Return how many memories a term matches, counting no further than past COMMON_ROWS."""
    probe, probe_params = tsquery([term])
    sql = f"SELECT count(*) FROM (SELECT 1 FROM memories m WHERE m.search @@ {probe} LIMIT %s) AS found"
    return await db.scalar(sql, [*probe_params, COMMON_ROWS + 1])


async def _total(db: Database) -> int:
    """Return how many memories the database holds: the planner's estimate on a large table, else a count."""
    estimate = await db.scalar("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'memories'::regclass")
    return estimate if estimate > EXACT_TOTAL else await db.scalar("SELECT count(*) FROM memories")
