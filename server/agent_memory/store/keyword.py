"""Keyword search over SQLite's FTS5 index: BM25-ranked, its cost bounded on words most memories contain.

FTS5 scores every row a query matches before it can return the best, so a word found in half of a large store
would cost a BM25 evaluation per row. A term matching more than COMMON_ROWS rows is common: its matches are
ranked only among the newest COMMON_ROWS of them, while every match of the query's rarer terms is still ranked.
A common word weighs little in BM25 (its inverse document frequency is low), so the rarer terms decide what an
older memory is worth.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiosqlite

from agent_memory.models import Memory
from agent_memory.store.rows import COLUMNS, WIDTH, Filters, memory_from_row

# Keyword search ranks this many times the wanted rows before checking their scope (see `search`).
KEYWORD_HEAD_FACTOR = 4
# Past this many matching rows a term is common, and its matches are ranked among the newest this many.
COMMON_ROWS = 2000

_NTH_NEWEST = "SELECT rowid FROM memories_fts WHERE memories_fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?"


def fts_match(terms: Sequence[str]) -> str:
    """Return an FTS5 MATCH expression that matches any of the terms."""
    # Quoting makes every term a literal string: FTS5 operators in user text lose their meaning.
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


async def search(
    db: aiosqlite.Connection, user: str, terms: Sequence[str], filters: Filters, limit: int
) -> list[tuple[Memory, float]]:
    """Return memories matching any of the terms, best first, with their BM25 score (higher is better)."""
    if not terms:
        return []
    where, params = filters.sql(user)
    floor = await _floor(db, terms)
    # Rank the matches first and join only the best: joining every match to check the scope costs more than
    # ranking them. When the best `head` hold fewer than `limit` rows in scope, the scope is narrow: rank
    # within it instead.
    head = limit * KEYWORD_HEAD_FACTOR
    best = f"SELECT memories_fts.rowid, memories_fts.rank FROM memories_fts WHERE {{match}} LIMIT {head}"
    rows = await _ranked(db, terms, floor, best, [])
    chosen = await _in_scope(db, rows, user, filters, limit)
    if len(chosen) < limit:
        scoped = (
            "SELECT memories_fts.rowid, memories_fts.rank FROM memories_fts JOIN memories m"
            f" ON m.rowid = memories_fts.rowid WHERE {{match}} AND {where} LIMIT {limit}"
        )
        rows = await _ranked(db, terms, floor, scoped, list(params))
        chosen = await _in_scope(db, rows, user, filters, limit)
    return chosen


async def _floor(db: aiosqlite.Connection, terms: Sequence[str]) -> tuple[int, list[str]] | None:
    """Return the lowest rowid among the newest COMMON_ROWS matches of the common terms, and the rare terms."""
    # Every term probed in one statement: a query per term cost more in round trips to the database's thread than
    # in the probes themselves.
    probes = ", ".join(f"({_NTH_NEWEST})" for _ in terms)
    found = await db.execute_fetchall(f"SELECT {probes}", [p for t in terms for p in (fts_match([t]), COMMON_ROWS)])
    common = [term for term, nth in zip(terms, next(iter(found)), strict=True) if nth is not None]
    if not common:
        return None
    # One common term already has more matches: the row exists.
    (lowest,) = await db.execute_fetchall(_NTH_NEWEST, (fts_match(common), COMMON_ROWS - 1))
    return int(lowest[0]), [t for t in terms if t not in common]


async def _ranked(
    db: aiosqlite.Connection,
    terms: Sequence[str],
    floor: tuple[int, list[str]] | None,
    template: str,
    params: list[object],
) -> list[tuple[int, float]]:
    """Return (rowid, rank) of the best matches the template selects, best (lowest rank) first."""
    order = " ORDER BY memories_fts.rank"
    if floor is None:
        sql = template.replace("{match}", "memories_fts MATCH ?").replace(" LIMIT", order + " LIMIT")
        return await _rows(db, sql, [fts_match(terms), *params])
    lowest, rare = floor
    recent_sql = template.replace("{match}", "memories_fts MATCH ? AND memories_fts.rowid >= ?")
    best = dict(await _rows(db, recent_sql.replace(" LIMIT", order + " LIMIT"), [fts_match(terms), lowest, *params]))
    if rare:
        older = template.replace("{match}", "memories_fts MATCH ?").replace(" LIMIT", order + " LIMIT")
        for rowid, rank in await _rows(db, older, [fts_match(rare), *params]):
            best[rowid] = min(rank, best.get(rowid, rank))
    return sorted(best.items(), key=lambda pair: pair[1])


async def _rows(db: aiosqlite.Connection, sql: str, params: Sequence[object]) -> list[tuple[int, float]]:
    return [(int(r[0]), float(r[1])) for r in await db.execute_fetchall(sql, params)]


def in_scope_query(user: str, rowids: Sequence[int], filters: Filters) -> tuple[str, list[object]]:
    """Return the SELECT of the rowids among `rowids` that pass the filters, and its parameters."""
    # Looked up by rowid: a few hundred probes, where the scope's index would scan every row of the scope.
    where, params = filters.sql(user, by_id=True)
    marks = ",".join("?" * len(rowids))
    return f"SELECT m.rowid FROM memories m WHERE m.rowid IN ({marks}) AND {where}", [*rowids, *params]


async def _in_scope(
    db: aiosqlite.Connection, ranked: list[tuple[int, float]], user: str, filters: Filters, limit: int
) -> list[tuple[Memory, float]]:
    """Return the best `limit` ranked rows that pass the scope, as memories with their score, best first."""
    # The scope is checked on row ids alone and only the rows kept are read whole: reading every ranked row's
    # content to keep a quarter of them cost more than the ranking. The best rows are checked first: in the
    # common case (one namespace, nothing replaced) they all pass, and the rest need no lookup at all.
    passing: list[tuple[int, float]] = []
    start, size = 0, limit + limit // 4
    while start < len(ranked) and len(passing) < limit:
        part = ranked[start : start + size]
        sql, params = in_scope_query(user, [rowid for rowid, _ in part], filters)
        ok = {int(r[0]) for r in await db.execute_fetchall(sql, params)}
        passing += [pair for pair in part if pair[0] in ok]
        start, size = start + size, len(ranked)  # a narrower scope than it looked: the rest at once
    kept = dict(passing[:limit])
    if not kept:
        return []
    sql = f"SELECT {COLUMNS}, m.rowid FROM memories m WHERE m.rowid IN ({','.join('?' * len(kept))})"
    found = [(memory_from_row(r), kept[int(r[WIDTH])]) for r in await db.execute_fetchall(sql, list(kept))]
    found.sort(key=lambda pair: pair[1])
    return [(memory, -rank) for memory, rank in found]
