"""One SQLite connection per process: opened once in WAL mode, write transactions in turn, migrations at start-up."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import aiosqlite

from agent_memory.errors import BackendError
from agent_memory.store.migrations import MIGRATIONS, statements
from agent_memory.store.oauth import OAuthStore, SQLiteOAuth
from agent_memory.store.protocol import VECTOR_TABLE_KEY
from agent_memory.store.summaries import Summaries

logger = logging.getLogger(__name__)

# SQLite waits this long for another process's write lock before reporting busy (PRAGMA busy_timeout) ...
BUSY_TIMEOUT_SECONDS = 30.0
# ... and a write keeps trying for this long before the caller hears of it. SQLite skips the busy handler when
# waiting could deadlock (this connection still reading an older snapshot), so attempts are also spaced out here.
WRITE_WAIT_SECONDS = 60.0
# `indexed` of a memory the model failed to embed on its own (0: pending, 1: in the vector index).
UNEMBEDDABLE = -1


class Connection:
    """The database connection, its write transactions, migrations and small settings."""

    def __init__(self, db: aiosqlite.Connection, write_wait_seconds: float = WRITE_WAIT_SECONDS) -> None:
        self._db = db
        self._write_wait = write_wait_seconds
        # One connection serves every task of this process: write transactions take turns.
        self._write_lock = asyncio.Lock()
        self._summaries = Summaries(db, self._transaction)
        self._oauth = SQLiteOAuth(db, self._transaction)

    @property
    def summaries(self) -> Summaries:
        """Return the summaries table, on this connection."""
        return self._summaries

    @property
    def oauth(self) -> OAuthStore:
        """Return the users, OAuth clients, codes and tokens, on this connection."""
        return self._oauth

    @classmethod
    async def open(
        cls, path: Path, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS, write_wait_seconds: float = WRITE_WAIT_SECONDS
    ) -> Self:
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
