"""What a person browsing their memory reads: pages of the timeline, counts per day and per session, one memory.

Every value is bound as a parameter; the scope (user, namespace) always comes first in the WHERE clause.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import aiosqlite

from agent_memory.models import Memory
from agent_memory.store.rows import COLUMNS, WIDTH, Filters, memory_from_row


class BrowseStore(Protocol):
    """The read side of the web page: pages, counts and one memory's details."""

    async def page(
        self, user: str, filters: Filters, roles: Sequence[str], before: tuple[float, int] | None, limit: int
    ) -> list[tuple[Memory, float, int]]:
        """Return (memory, created_ts, rowid) newest first, strictly before the cursor (created_ts, rowid)."""
        ...

    async def count(self, user: str, filters: Filters, roles: Sequence[str], cap: int) -> int:
        """Count the memories that pass the filters and roles, stopping at `cap`."""
        ...

    async def per_day(self, user: str, filters: Filters, roles: Sequence[str], newest: int) -> list[tuple[float, int]]:
        """Return (UTC day start, count) over the `newest` memories that pass the filters, newest day first."""
        ...

    async def sessions(self, user: str, namespace: str, limit: int) -> list[tuple[str, int, str]]:
        """Return (session, count, newest created_at) of a namespace, most recently active first."""
        ...

    async def namespace_counts(self, user: str) -> list[tuple[str, int]]:
        """Return (namespace, count) of the user's namespaces, alphabetically."""
        ...

    async def detail(self, user: str, id: str) -> tuple[Memory, int] | None:
        """Return one of the user's memories in any namespace with its indexed state (1, 0, or -1 set aside)."""
        ...

    async def covering(self, user: str, id: str) -> list[tuple[str, str, str]]:
        """Return (created_at, backend, text) of the stored summaries that cover a memory, newest first."""
        ...


class Browse:
    """BrowseStore on SQLite, on the store's one connection."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @staticmethod
    def _where(user: str, filters: Filters, roles: Sequence[str]) -> tuple[str, list[Any]]:
        where, params = filters.sql(user)
        if roles:
            where += f" AND m.role IN ({','.join('?' * len(roles))})"
            params.extend(roles)
        return where, params

    async def page(
        self, user: str, filters: Filters, roles: Sequence[str], before: tuple[float, int] | None, limit: int
    ) -> list[tuple[Memory, float, int]]:
        """Return (memory, created_ts, rowid) newest first, strictly before the cursor (created_ts, rowid)."""
        where, params = self._where(user, filters, roles)
        if before is not None:
            # Row values keep the cursor exact when many memories share one timestamp.
            where += " AND (m.created_ts, m.rowid) < (?, ?)"
            params.extend(before)
        sql = (
            f"SELECT {COLUMNS}, m.created_ts, m.rowid FROM memories m WHERE {where}"
            " ORDER BY m.created_ts DESC, m.rowid DESC LIMIT ?"
        )
        async with self._db.execute(sql, [*params, limit]) as cur:
            rows = await cur.fetchall()
        return [(memory_from_row(r), float(r[WIDTH]), int(r[WIDTH + 1])) for r in rows]

    async def count(self, user: str, filters: Filters, roles: Sequence[str], cap: int) -> int:
        """Count the memories that pass the filters and roles, stopping at `cap`."""
        # A tag or role filter reads every row it counts; the cap bounds a page's cost at any store size.
        where, params = self._where(user, filters, roles)
        sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM memories m WHERE {where} LIMIT ?)"
        async with self._db.execute(sql, [*params, cap]) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def per_day(self, user: str, filters: Filters, roles: Sequence[str], newest: int) -> list[tuple[float, int]]:
        """Return (UTC day start, count) over the `newest` memories that pass the filters, newest day first."""
        where, params = self._where(user, filters, roles)
        # Newest first through the (user, namespace, created_ts) index, stopping after `newest` matches.
        sql = (
            "SELECT CAST(ts / 86400 AS INTEGER) * 86400 AS day, COUNT(*) FROM"
            f" (SELECT m.created_ts AS ts FROM memories m WHERE {where} ORDER BY m.created_ts DESC LIMIT ?)"
            " GROUP BY day ORDER BY day DESC"
        )
        async with self._db.execute(sql, [*params, newest]) as cur:
            rows = await cur.fetchall()
        return [(float(r[0]), int(r[1])) for r in rows]

    async def sessions(self, user: str, namespace: str, limit: int) -> list[tuple[str, int, str]]:
        """Return (session, count, newest created_at) of a namespace, most recently active first."""
        sql = (
            "SELECT session_id, COUNT(*), MAX(created_at), MAX(created_ts) AS last FROM memories"
            " WHERE user = ? AND namespace = ? GROUP BY session_id ORDER BY last DESC LIMIT ?"
        )
        async with self._db.execute(sql, (user, namespace, limit)) as cur:
            rows = await cur.fetchall()
        return [(str(r[0]), int(r[1]), str(r[2])) for r in rows]

    async def namespace_counts(self, user: str) -> list[tuple[str, int]]:
        """Return (namespace, count) of the user's namespaces, alphabetically."""
        sql = "SELECT namespace, COUNT(*) FROM memories WHERE user = ? GROUP BY namespace ORDER BY namespace"
        async with self._db.execute(sql, (user,)) as cur:
            rows = await cur.fetchall()
        return [(str(r[0]), int(r[1])) for r in rows]

    async def detail(self, user: str, id: str) -> tuple[Memory, int] | None:
        """Return one of the user's memories in any namespace with its indexed state (1, 0, or -1 set aside)."""
        sql = f"SELECT {COLUMNS}, m.indexed FROM memories m WHERE m.id = ? AND m.user = ?"
        async with self._db.execute(sql, (id, user)) as cur:
            row = await cur.fetchone()
        return None if row is None else (memory_from_row(row), int(row[WIDTH]))

    async def covering(self, user: str, id: str) -> list[tuple[str, str, str]]:
        """Return (created_at, backend, text) of the stored summaries that cover a memory, newest first."""
        sql = (
            "SELECT created_at, backend, text FROM summaries WHERE user = ? AND EXISTS"
            " (SELECT 1 FROM json_each(covered_ids) WHERE value = ?) ORDER BY rowid DESC LIMIT 20"
        )
        async with self._db.execute(sql, (user, id)) as cur:
            rows = await cur.fetchall()
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


__all__ = ["Browse", "BrowseStore"]
