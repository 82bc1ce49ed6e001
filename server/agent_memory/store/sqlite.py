"""SQLite through aiosqlite: the source of truth for memories and summaries, plus keyword search."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from agent_memory.errors import BackendError
from agent_memory.models import Memory
from agent_memory.store.migrations import MIGRATIONS, statements
from agent_memory.store.protocol import VECTOR_TABLE_KEY
from agent_memory.store.rows import COLUMNS, Filters, Inserted, NewRow, PendingRow, by_ids_query, memory_from_row
from agent_memory.store.summaries import Summaries

logger = logging.getLogger(__name__)

# SQLite waits this long for another process's write lock before reporting busy (PRAGMA busy_timeout) ...
BUSY_TIMEOUT_SECONDS = 30.0
# ... and a write keeps trying for this long before the caller hears of it. SQLite skips the busy handler when
# waiting could deadlock (this connection still reading an older snapshot), so attempts are also spaced out here.
WRITE_WAIT_SECONDS = 60.0

# `indexed` of a memory the model failed to embed on its own (0: pending, 1: in the vector index).
UNEMBEDDABLE = -1
# Keyword search ranks this many times the wanted rows before checking their scope (see keyword_search).
KEYWORD_HEAD_FACTOR = 4


class SQLiteStore:
    """The SQLite store; one connection per process, opened once."""

    def __init__(self, db: aiosqlite.Connection, write_wait_seconds: float = WRITE_WAIT_SECONDS) -> None:
        self._db = db
        self._write_wait = write_wait_seconds
        # One connection serves every task of this process: write transactions take turns.
        self._write_lock = asyncio.Lock()
        self._summaries = Summaries(db, self._transaction)

    @property
    def summaries(self) -> Summaries:
        """Return the summaries table, on this connection."""
        return self._summaries

    @classmethod
    async def open(
        cls, path: Path, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS, write_wait_seconds: float = WRITE_WAIT_SECONDS
    ) -> SQLiteStore:
        """Open (creating if needed) the database and apply pending migrations.

        `busy_timeout` is how long one statement waits for another process's lock; `write_wait_seconds` how long
        a write keeps trying before the caller hears of it.
        """
        # Autocommit mode: every write runs in an explicit BEGIN IMMEDIATE transaction (see _transaction).
        db = await aiosqlite.connect(path, timeout=busy_timeout, isolation_level=None)
        await db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        await db.execute("PRAGMA foreign_keys=ON")
        store = cls(db, write_wait_seconds)
        await store._migrate()
        return store

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run a write transaction that holds the write lock from its first statement.

        BEGIN IMMEDIATE takes the lock up front (waiting up to the busy timeout for other processes), so a
        transaction never fails half-way on a lock upgrade; a database still busy after several waits
        becomes a BackendError that says so, never a raw "database is locked".
        """
        async with self._write_lock:
            deadline = time.monotonic() + self._write_wait
            delay = 0.005
            while True:
                try:
                    await self._db.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as exc:
                    if not _busy(exc):
                        raise
                    if time.monotonic() >= deadline:
                        raise BackendError(
                            f"The memory database stayed locked by another process for {self._write_wait:g}"
                            " seconds; nothing was written. Try again."
                        ) from None
                    logger.debug("database busy, retrying in %.3f s: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
            try:
                yield self._db
            except BaseException:
                if self._db.in_transaction:  # SQLite may already have rolled back (e.g. disk full)
                    await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def close(self) -> None:
        """Close the connection."""
        await self._db.close()

    async def _migrate(self) -> None:
        await self._db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        async with self._db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row else 0
        for version, script in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            # One immediate transaction: two processes starting together do not both apply a migration,
            # and a failed or cancelled migration leaves the schema as it was.
            async with self._transaction() as db:
                async with db.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)) as cur:
                    done = await cur.fetchone()
                if not done:
                    for statement in statements(script):
                        await db.execute(statement)
                    await db.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?)", (version, datetime.now(UTC).isoformat())
                    )
            logger.info("applied migration %d", version)

    async def insert_many(self, rows: Sequence[NewRow]) -> list[Inserted]:
        """Insert rows in one transaction, skipping content already stored; return (id, created_at, duplicate)."""
        # One immediate transaction: nothing of a failed batch is acknowledged.
        async with self._transaction():
            return [await self._insert_one(row) for row in rows]

    async def _insert_one(self, row: NewRow) -> Inserted:
        stamp = row.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
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
            row.created_at.timestamp(),
        ]
        for _ in range(2):
            cur = await self._db.execute(
                "INSERT INTO memories (id, user, namespace, session_id, role, content, content_hash, tags, metadata,"
                " created_at, created_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                values,
            )
            if cur.rowcount == 1:
                return Inserted(str(values[0]), stamp, False)
            async with self._db.execute(
                "SELECT id, created_at FROM memories WHERE user = ? AND namespace = ? AND content_hash = ?",
                (row.user, row.namespace, row.content_hash),
            ) as found:
                existing = await found.fetchone()
            if existing is not None:
                return Inserted(str(existing[0]), str(existing[1]), True)
            # A kept id (import) already names another memory, e.g. the same file imported into a second
            # namespace: store this one under a fresh id.
            values[0] = uuid.uuid4().hex
        raise sqlite3.IntegrityError(f"could not insert memory {row.id!r}")

    async def delete(self, user: str, id: str, namespace: str | None = None) -> bool:
        """Delete one memory of this user (and namespace, when given); return whether it existed."""
        sql, params = "DELETE FROM memories WHERE user = ? AND id = ?", [user, id]
        if namespace is not None:
            sql, params = sql + " AND namespace = ?", [*params, namespace]
        async with self._transaction() as db:
            cur = await db.execute(sql, params)
        return cur.rowcount == 1

    async def keyword_search(
        self, user: str, terms: Sequence[str], filters: Filters, limit: int
    ) -> list[tuple[Memory, float]]:
        """Return memories matching any of the terms, best first, with their BM25 score (higher is better)."""
        if not terms:
            return []
        match = fts_match(terms)
        where, params = filters.sql(user)
        # Rank the matches first and join only the best: joining every match to check the scope costs more
        # than ranking them (at 100k memories a common word matches thousands). When the best `head` hold
        # fewer than `limit` rows in scope, the scope is narrow: rank within it instead.
        head = limit * KEYWORD_HEAD_FACTOR
        sql = (
            f"SELECT {COLUMNS}, -f.rank AS score FROM"
            " (SELECT rowid, rank FROM memories_fts WHERE memories_fts MATCH ? ORDER BY rank LIMIT ?) f"
            f" JOIN memories m ON m.rowid = f.rowid WHERE {where} ORDER BY f.rank LIMIT ?"
        )
        async with self._db.execute(sql, [match, head, *params, limit]) as cur:
            rows = list(await cur.fetchall())
        if len(rows) < limit:
            sql = (
                f"SELECT {COLUMNS}, -bm25(memories_fts) AS score FROM memories_fts"
                " JOIN memories m ON m.rowid = memories_fts.rowid"
                f" WHERE memories_fts MATCH ? AND {where} ORDER BY bm25(memories_fts) LIMIT ?"
            )
            async with self._db.execute(sql, [match, *params, limit]) as cur:
                rows = list(await cur.fetchall())
        return [(memory_from_row(r), float(r[8])) for r in rows]

    async def by_ids(self, user: str, ids: Sequence[str], filters: Filters) -> dict[str, Memory]:
        """Return the memories among `ids` that pass the filters, keyed by id."""
        if not ids:
            return {}
        sql, params = by_ids_query(user, ids, filters)
        async with self._db.execute(sql, params) as cur:
            rows = await cur.fetchall()
        return {r[0]: memory_from_row(r) for r in rows}

    async def count_matching(self, user: str, filters: Filters) -> int:
        """Count the memories that pass the filters (a time window is an index range scan)."""
        where, params = filters.sql(user)
        async with self._db.execute(f"SELECT COUNT(*) FROM memories m WHERE {where}", params) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

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
        return [(int(r[8]), str(r[9]), memory_from_row(r)) for r in rows]

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

    async def get_value(self, key: str) -> str | None:
        """Return a stored bookkeeping value."""
        async with self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else None

    async def set_value(self, key: str, value: str) -> None:
        """Store a bookkeeping value."""
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO kv VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value)
            )


def fts_match(terms: Sequence[str]) -> str:
    """Return an FTS5 MATCH expression that matches any of the terms."""
    # Quoting makes every term a literal string: FTS5 operators in user text lose their meaning.
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Return whether SQLite gave up waiting for another connection's lock."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def inspect_file(path: Path) -> dict[str, Any]:
    """Check a database file read-only (for `doctor`); raise sqlite3.DatabaseError when it is damaged."""
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    try:
        problems = [str(r[0]) for r in db.execute("PRAGMA integrity_check").fetchall()]
        version = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
        memories, pending, skipped = db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(indexed = 0), 0), COALESCE(SUM(indexed = {UNEMBEDDABLE}), 0) FROM memories"
        ).fetchone()
        table = db.execute("SELECT value FROM kv WHERE key = ?", (VECTOR_TABLE_KEY,)).fetchone()
    finally:
        db.close()
    return {
        "problems": [p for p in problems if p != "ok"],
        "schema_version": int(version),
        "memories": int(memories),
        "pending": int(pending),
        "unembeddable": int(skipped),
        "vector_table": str(table[0]) if table else None,
    }
