"""The Postgres store's summaries and the web page's read side (SummaryStore and BrowseStore)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from agent_memory.models import Memory, StoredSummary
from agent_memory.store.postgres.pool import Database, check_text
from agent_memory.store.postgres.sql import COLUMNS, WIDTH, memory_from_row, where
from agent_memory.store.rows import Filters, SummaryKey


class PgSummaries:
    """Stored summaries with the memory ids each covers (a JSONB array, searched by its GIN index)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def count(self) -> int:
        """Count stored summaries."""
        return await self._db.scalar("SELECT COUNT(*) FROM summaries")

    async def latest(self, user: str, namespace: str, session_key: str, focus: str) -> list[StoredSummary]:
        """Return the stored summaries for this key, newest first (a few)."""
        rows = await self._db.all(
            "SELECT text, backend, covered_ids FROM summaries WHERE owner = %s AND namespace = %s"
            " AND session_key = %s AND focus = %s ORDER BY pos DESC LIMIT 5",
            (user, namespace, session_key, focus),
        )
        return [StoredSummary(text=r[0], backend=r[1], covered_ids=list(r[2])) for r in rows]

    async def drop_covering(self, user: str, id: str) -> None:
        """Delete stored summaries whose text may quote a forgotten memory."""
        check_text([user, id])
        async with self._db.transaction() as conn:
            await conn.execute(
                "DELETE FROM summaries WHERE owner = %s AND covered_ids @> jsonb_build_array(%s::text)", (user, id)
            )

    async def save(self, user: str, namespace: str, session_key: str, focus: str, summary: StoredSummary) -> None:
        """Store a summary with the ids it covers."""
        values = (user, namespace, session_key, focus, summary.text, summary.backend)
        check_text([*values, *summary.covered_ids])
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO summaries (owner, namespace, session_key, focus, text, backend, covered_ids, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s)",
                (*values, json.dumps(summary.covered_ids), datetime.now(UTC).isoformat()),
            )

    async def export_page(self, after: int, limit: int) -> list[tuple[int, SummaryKey, StoredSummary]]:
        """Return (position, key, summary) after `after`, oldest first (for copying a store)."""
        rows = await self._db.all(
            "SELECT pos, owner, namespace, session_key, focus, text, backend, covered_ids FROM summaries"
            " WHERE pos > %s ORDER BY pos LIMIT %s",
            (after, limit),
        )
        return [
            (
                int(r[0]),
                SummaryKey(r[1], r[2], r[3], r[4]),
                StoredSummary(text=r[5], backend=r[6], covered_ids=list(r[7])),
            )
            for r in rows
        ]


class PgBrowse:
    """BrowseStore on Postgres: pages, counts per day and session, one memory's details."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def _where(user: str, filters: Filters, roles: Sequence[str]) -> tuple[str, list[Any]]:
        clause, params = where(filters, user)
        if roles:
            clause += " AND m.role = ANY(%s::text[])"
            params.append(list(roles))
        return clause, params

    async def page(
        self, user: str, filters: Filters, roles: Sequence[str], before: tuple[float, int] | None, limit: int
    ) -> list[tuple[Memory, float, int]]:
        """Return (memory, created_ts, position) newest first, strictly before the cursor (created_ts, position)."""
        clause, params = self._where(user, filters, roles)
        if before is not None:
            # Row values keep the cursor exact when many memories share one timestamp.
            clause += " AND (m.created_ts, m.pos) < (%s, %s)"
            params.extend(before)
        sql = (
            f"SELECT {COLUMNS}, m.created_ts, m.pos FROM memories m WHERE {clause}"
            " ORDER BY m.created_ts DESC, m.pos DESC LIMIT %s"
        )
        rows = await self._db.all(sql, [*params, limit])
        return [(memory_from_row(r), float(r[WIDTH]), int(r[WIDTH + 1])) for r in rows]

    async def count(self, user: str, filters: Filters, roles: Sequence[str], cap: int) -> int:
        """Count the memories that pass the filters and roles, stopping at `cap`."""
        clause, params = self._where(user, filters, roles)
        sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM memories m WHERE {clause} LIMIT %s) capped"
        return await self._db.scalar(sql, [*params, cap])

    async def per_day(self, user: str, filters: Filters, roles: Sequence[str], newest: int) -> list[tuple[float, int]]:
        """Return (UTC day start, count) over the `newest` memories that pass the filters, newest day first."""
        clause, params = self._where(user, filters, roles)
        sql = (
            "SELECT floor(ts / 86400) * 86400 AS day, COUNT(*) FROM"
            f" (SELECT m.created_ts AS ts FROM memories m WHERE {clause} ORDER BY m.created_ts DESC LIMIT %s) recent"
            " GROUP BY day ORDER BY day DESC"
        )
        rows = await self._db.all(sql, [*params, newest])
        return [(float(r[0]), int(r[1])) for r in rows]

    async def sessions(self, user: str, namespace: str, limit: int) -> list[tuple[str, int, str]]:
        """Return (session, count, newest created_at) of a namespace, most recently active first."""
        rows = await self._db.all(
            "SELECT session_id, COUNT(*), MAX(created_at), MAX(created_ts) AS last FROM memories"
            " WHERE owner = %s AND namespace = %s GROUP BY session_id ORDER BY last DESC LIMIT %s",
            (user, namespace, limit),
        )
        return [(str(r[0]), int(r[1]), str(r[2])) for r in rows]

    async def namespace_counts(self, user: str) -> list[tuple[str, int]]:
        """Return (namespace, count) of the user's namespaces, alphabetically."""
        rows = await self._db.all(
            "SELECT namespace, COUNT(*) FROM memories WHERE owner = %s GROUP BY namespace ORDER BY namespace", (user,)
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    async def detail(self, user: str, id: str) -> tuple[Memory, int] | None:
        """Return one of the user's memories in any namespace with its indexed state (1, 0, or -1 set aside)."""
        row = await self._db.one(
            f"SELECT {COLUMNS}, m.indexed FROM memories m WHERE m.id = %s AND m.owner = %s", (id, user)
        )
        return None if row is None else (memory_from_row(row), int(row[WIDTH]))

    async def covering(self, user: str, id: str) -> list[tuple[str, str, str]]:
        """Return (created_at, backend, text) of the stored summaries that cover a memory, newest first."""
        rows = await self._db.all(
            "SELECT created_at, backend, text FROM summaries WHERE owner = %s"
            " AND covered_ids @> jsonb_build_array(%s::text) ORDER BY pos DESC LIMIT 20",
            (user, id),
        )
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]
