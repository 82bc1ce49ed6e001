"""SQLite through aiosqlite: the source of truth for memories and summaries, plus keyword search."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from agent_memory.models import Memory
from agent_memory.store import chains, keyword
from agent_memory.store.browse import Browse
from agent_memory.store.connection import UNEMBEDDABLE, inspect_file
from agent_memory.store.keyword import fts_match
from agent_memory.store.rows import (
    COLUMNS,
    WIDTH,
    Filters,
    Inserted,
    Neighbours,
    NewRow,
    PendingRow,
    by_ids_query,
    memory_from_row,
)
from agent_memory.store.turns import CONTEXT_OF, NEXT_TURN, neighbours_query

__all__ = ["SQLiteStore", "fts_match", "inspect_file"]


class SQLiteStore(chains.ChainStore):
    """The SQLite store: memories, keyword search (FTS5) and the indexing bookkeeping, on one connection."""

    @property
    def browse(self) -> Browse:
        """Return the web page's read side (pages, counts, details), on this connection."""
        return Browse(self._db)

    async def insert_many(self, rows: Sequence[NewRow]) -> list[Inserted]:
        """Insert rows in one transaction, skipping content already stored; return (id, created_at, duplicate)."""
        # One immediate transaction: nothing of a failed batch is acknowledged.
        async with self._transaction() as db:
            done: list[Inserted] = []
            for row in rows:
                inserted = await self._insert_one(row)
                if row.supersedes:
                    at = datetime.fromisoformat(inserted.created_at)
                    linked = await chains.link(db, row.user, inserted.id, at, row.supersedes)
                    inserted = replace(inserted, superseded=linked)
                done.append(inserted)
            return done

    async def _insert_one(self, row: NewRow) -> Inserted:
        stamp = chains.stamp(row.created_at)
        ts = row.created_at.timestamp()
        context: str | None = None
        if row.in_conversation:
            # Every row already stored at this time precedes this one (rowids grow).
            turn = (row.user, row.namespace, row.session_id, ts, ts, 2**62)
            async with self._db.execute(CONTEXT_OF, turn) as cur:
                previous = await cur.fetchone()
            context = str(previous[0]) if previous else ""
        values = [
            row.id,
            row.user,
            row.namespace,
            row.session_id,
            row.role,
            row.content,
            row.content_hash,
            json.dumps(list(row.tags)),
            json.dumps(row.metadata, ensure_ascii=False),
            stamp,
            ts,
            context,
            *_timed(row.expires_at),
            row.superseded_by,
            *_timed(row.superseded_at if row.superseded_by else None),
        ]
        if row.superseded_by:  # an imported superseded memory stays out of the exact-repeat check
            values[6] = chains.retired_hash(row.content_hash, row.id)
        for _ in range(2):
            cur = await self._db.execute(
                "INSERT INTO memories (id, user, namespace, session_id, role, content, content_hash, tags, metadata,"
                " created_at, created_ts, context, expires_at, expires_ts, superseded_by, superseded_at, superseded_ts)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                values,
            )
            if cur.rowcount == 1:
                if row.in_conversation and cur.lastrowid is not None:
                    # A turn stored out of order is the context of the turn after it.
                    await self._refresh_next_context(row.user, row.namespace, row.session_id, ts, cur.lastrowid)
                return Inserted(str(values[0]), stamp, False)
            async with self._db.execute(
                "SELECT id, created_at FROM memories WHERE user = ? AND namespace = ? AND content_hash = ?",
                (row.user, row.namespace, values[6]),
            ) as found:
                existing = await found.fetchone()
            if existing is not None:
                # Saying it again sets its expiry anew (none: it no longer expires).
                await self._db.execute(
                    "UPDATE memories SET expires_at = ?, expires_ts = ? WHERE id = ? AND expires_ts IS NOT ?",
                    (values[12], values[13], existing[0], values[13]),
                )
                return Inserted(str(existing[0]), str(existing[1]), True)
            # A kept id (import) already names another memory, e.g. the same file imported into a second
            # namespace: store this one under a fresh id.
            values[0] = uuid.uuid4().hex
        raise sqlite3.IntegrityError(f"could not insert memory {row.id!r}")

    async def delete(self, user: str, id: str, namespace: str | None = None) -> bool:
        """Delete one memory of this user (and namespace, when given); return whether it existed.

        The turn after it loses it from its context too: nothing of a forgotten memory stays searchable.
        """
        sql, params = (
            "SELECT rowid, namespace, session_id, created_ts FROM memories WHERE user = ? AND id = ?",
            [user, id],
        )
        if namespace is not None:
            sql, params = sql + " AND namespace = ?", [*params, namespace]
        async with self._transaction() as db:
            async with db.execute(sql, params) as cur:
                found = await cur.fetchone()
            if found is None:
                return False
            rowid, space, session, ts = found
            await chains.unlink(db, user, id)
            await db.execute("DELETE FROM memories WHERE rowid = ?", (rowid,))
            await self._refresh_next_context(user, space, session, ts, rowid)
        return True

    async def _refresh_next_context(self, user: str, namespace: str, session: str, ts: float, rowid: int) -> None:
        """Recompute the context of the chat turn that follows (ts, rowid) in its session, if any."""
        async with self._db.execute(NEXT_TURN, (user, namespace, session, ts, ts, rowid)) as cur:
            following = await cur.fetchone()
        if following is None:
            return
        next_rowid, next_ts = following
        async with self._db.execute(CONTEXT_OF, (user, namespace, session, next_ts, next_ts, next_rowid)) as cur:
            found = await cur.fetchone()
        context = str(found[0]) if found else ""
        await self._db.execute(
            "UPDATE memories SET context = ? WHERE rowid = ? AND context != ?", (context, next_rowid, context)
        )

    async def keyword_search(
        self, user: str, terms: Sequence[str], filters: Filters, limit: int
    ) -> list[tuple[Memory, float]]:
        """Return memories matching any of the terms, best first, with their BM25 score (higher is better)."""
        return await keyword.search(self._db, user, terms, filters, limit)

    async def by_ids(self, user: str, ids: Sequence[str], filters: Filters) -> dict[str, Memory]:
        """Return the memories among `ids` that pass the filters, keyed by id."""
        if not ids:
            return {}
        sql, params = by_ids_query(user, ids, filters)
        # Recall's reads take one round trip to the connection's thread (execute_fetchall), not three (execute,
        # fetch, close): each costs a thread hand-off, and a recall makes about ten reads.
        return {r[0]: memory_from_row(r) for r in await self._db.execute_fetchall(sql, params)}

    async def neighbours(self, user: str, ids: Sequence[str]) -> dict[str, Neighbours]:
        """Return, for each conversation turn among `ids`, the ids of the two turns before and the two after it."""
        if not ids:
            return {}
        sql, params = neighbours_query(user, ids)
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in await self._db.execute_fetchall(sql, params)}

    async def count_matching(self, user: str, filters: Filters, *, unindexed: bool = False) -> int:
        """Count the memories that pass the filters (a time window is an index range scan), or those still pending."""
        # Pending rows are few and have an index of their own: keep the scope's index out of the way then.
        where, params = filters.sql(user, by_id=unindexed)
        where += " AND m.indexed = 0" if unindexed else ""
        ((count,),) = await self._db.execute_fetchall(f"SELECT COUNT(*) FROM memories m WHERE {where}", params)
        return int(count)

    async def unindexed(self, user: str, filters: Filters, limit: int) -> list[Memory]:
        """Return up to `limit` memories in scope not yet in the vector index, newest first."""
        where, params = filters.sql(user, by_id=True)  # the pending rows' own index, not the scope's
        sql = f"SELECT {COLUMNS} FROM memories m WHERE m.indexed = 0 AND {where} ORDER BY m.rowid DESC LIMIT ?"
        return [memory_from_row(r) for r in await self._db.execute_fetchall(sql, [*params, limit])]

    async def recent(self, user: str, filters: Filters, limit: int) -> list[Memory]:
        """Return the newest `limit` memories in scope, oldest first."""
        where, params = filters.sql(user)
        sql = f"SELECT {COLUMNS} FROM memories m WHERE {where} ORDER BY m.created_ts DESC, m.rowid DESC LIMIT ?"
        async with self._db.execute(sql, [*params, limit]) as cur:
            rows = await cur.fetchall()
        return [memory_from_row(r) for r in reversed(list(rows))]

    async def namespaces(self, user: str, prefix: str, limit: int) -> list[str]:
        """Return the user's namespaces that start with `prefix`, alphabetically."""
        async with self._db.execute(
            "SELECT DISTINCT namespace FROM memories WHERE user = ? AND substr(namespace, 1, ?) = ?"
            " ORDER BY namespace LIMIT ?",
            (user, len(prefix), prefix, limit),
        ) as cur:
            rows = await cur.fetchall()
        return [str(r[0]) for r in rows]

    async def pending(self, limit: int) -> list[PendingRow]:
        """Return up to `limit` committed memories not yet in the vector index, oldest first."""
        async with self._db.execute(
            "SELECT id, content, user, namespace, session_id, created_ts FROM memories"
            " WHERE indexed = 0 ORDER BY rowid LIMIT ?",
            (limit,),
        ) as cur:
            rows = await cur.fetchall()
        return [PendingRow(*r) for r in rows]

    async def last_pending(self) -> int | None:
        """Return the newest row waiting for the vector index (its rowid), or None (cheap: a partial index)."""
        async with self._db.execute("SELECT MAX(rowid) FROM memories WHERE indexed = 0") as cur:
            row = await cur.fetchone()
        return None if row is None or row[0] is None else int(row[0])

    async def pending_through(self, position: int) -> bool:
        """Return whether any row up to `position` (a rowid) still waits for the vector index."""
        sql = "SELECT 1 FROM memories WHERE indexed = 0 AND rowid <= ? LIMIT 1"
        async with self._db.execute(sql, (position,)) as cur:
            return await cur.fetchone() is not None

    async def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Return which of these ids are still stored."""
        if not ids:
            return set()
        marks = ",".join("?" * len(ids))
        async with self._db.execute(f"SELECT id FROM memories WHERE id IN ({marks})", list(ids)) as cur:
            return {str(r[0]) for r in await cur.fetchall()}

    async def count_pending(self) -> int:
        """Count memories not yet in the vector index."""
        async with self._db.execute("SELECT COUNT(*) FROM memories WHERE indexed = 0") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def mark_indexed(self, ids: Sequence[str]) -> None:
        """Record that these memories are in the vector index."""
        async with self._transaction() as db:
            await db.executemany("UPDATE memories SET indexed = 1 WHERE id = ?", [(i,) for i in ids])

    async def mark_unembeddable(self, ids: Sequence[str]) -> None:
        """Record that the model cannot embed these memories: keyword search finds them, the indexer skips them."""
        async with self._transaction() as db:
            await db.executemany(f"UPDATE memories SET indexed = {UNEMBEDDABLE} WHERE id = ?", [(i,) for i in ids])

    async def mark_all_pending(self) -> int:
        """Mark every memory as needing indexing (the index was lost or is being rebuilt; skipped rows retried)."""
        async with self._transaction() as db:
            cur = await db.execute("UPDATE memories SET indexed = 0 WHERE indexed != 0")
        return cur.rowcount

    async def count_indexed(self) -> int:
        """Count memories recorded as present in the vector index."""
        async with self._db.execute("SELECT COUNT(*) FROM memories WHERE indexed = 1") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def export_page(
        self, user: str | None, namespace: str | None, after: int, limit: int
    ) -> list[tuple[int, str, Memory]]:
        """Return (rowid, user, memory) after `after` in insertion order, optionally within one user/namespace."""
        clauses: list[str] = ["m.rowid > ?"]
        params: list[Any] = [after]
        for column, value in (("m.user", user), ("m.namespace", namespace)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        sql = (
            f"SELECT {COLUMNS}, m.rowid, m.user FROM memories m WHERE {' AND '.join(clauses)} ORDER BY m.rowid LIMIT ?"
        )
        async with self._db.execute(sql, [*params, limit]) as cur:
            rows = await cur.fetchall()
        return [(int(r[WIDTH]), str(r[WIDTH + 1]), memory_from_row(r)) for r in rows]

    async def count_scope(self, user: str | None, namespace: str | None) -> int:
        """Count memories, optionally within one user and/or namespace."""
        async with self._db.execute(
            "SELECT COUNT(*) FROM memories WHERE (? IS NULL OR user = ?) AND (? IS NULL OR namespace = ?)",
            (user, user, namespace, namespace),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def counts(self) -> list[tuple[str, str, str, int, int]]:
        """Return (user, namespace, role, memories, pending) for every group that has memories."""
        async with self._db.execute(
            "SELECT user, namespace, role, COUNT(*), SUM(indexed = 0) FROM memories"
            " GROUP BY user, namespace, role ORDER BY user, namespace, role"
        ) as cur:
            rows = await cur.fetchall()
        return [(str(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4])) for r in rows]


def _timed(moment: datetime | None) -> tuple[str | None, float | None]:
    """Return a time as stored: ISO text and Unix seconds (None for none)."""
    return (None, None) if moment is None else (chains.stamp(moment), moment.timestamp())
