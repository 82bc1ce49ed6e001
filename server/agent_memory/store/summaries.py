"""Stored summaries: summarize_history's output with the ids it covers, reused for incremental summaries."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

import aiosqlite

from agent_memory.models import StoredSummary
from agent_memory.store.rows import SummaryKey


class Summaries:
    """The summaries table, on the buffer's connection and its write transactions."""

    def __init__(
        self, db: aiosqlite.Connection, transaction: Callable[[], AbstractAsyncContextManager[aiosqlite.Connection]]
    ) -> None:
        self._db = db
        self._transaction = transaction

    async def count(self) -> int:
        """Count stored summaries."""
        async with self._db.execute("SELECT COUNT(*) FROM summaries") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def latest(self, user: str, namespace: str, session_key: str, focus: str) -> list[StoredSummary]:
        """Return the stored summaries for this key, newest first (a few)."""
        async with self._db.execute(
            "SELECT text, backend, covered_ids FROM summaries WHERE user = ? AND namespace = ?"
            " AND session_key = ? AND focus = ? ORDER BY rowid DESC LIMIT 5",
            (user, namespace, session_key, focus),
        ) as cur:
            rows = await cur.fetchall()
        return [StoredSummary(text=r[0], backend=r[1], covered_ids=json.loads(r[2])) for r in rows]

    async def drop_covering(self, user: str, id: str) -> None:
        """Delete stored summaries whose text may quote a forgotten memory."""
        async with self._transaction() as db:
            await db.execute(
                "DELETE FROM summaries WHERE user = ? AND EXISTS"
                " (SELECT 1 FROM json_each(covered_ids) WHERE value = ?)",
                (user, id),
            )

    async def save(self, user: str, namespace: str, session_key: str, focus: str, summary: StoredSummary) -> None:
        """Store a summary with the ids it covers."""
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO summaries (user, namespace, session_key, focus, text, backend, covered_ids, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    user,
                    namespace,
                    session_key,
                    focus,
                    summary.text,
                    summary.backend,
                    json.dumps(summary.covered_ids),
                    datetime.now(UTC).isoformat(),
                ),
            )

    async def export_page(self, after: int, limit: int) -> list[tuple[int, SummaryKey, StoredSummary]]:
        """Return (rowid, key, summary) after `after`, oldest first (for copying a store)."""
        async with self._db.execute(
            "SELECT rowid, user, namespace, session_key, focus, text, backend, covered_ids FROM summaries"
            " WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (after, limit),
        ) as cur:
            rows = await cur.fetchall()
        return [
            (
                int(r[0]),
                SummaryKey(r[1], r[2], r[3], r[4]),
                StoredSummary(text=r[5], backend=r[6], covered_ids=json.loads(r[7])),
            )
            for r in rows
        ]
