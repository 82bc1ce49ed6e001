"""What a person browsing their memory reads: pages of the timeline, counts per day and per session, one memory.

Every value is bound as a parameter; the scope (user, namespace) always comes first in the WHERE clause.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import aiosqlite

from agent_memory.models import Memory
from agent_memory.store.rows import COLUMNS, WIDTH, Filters, memory_from_row

# Each tag past the first: the memory has a tag row for it too (found by the memory_tags_memory index).
TAG_TOO = " AND EXISTS (SELECT 1 FROM memory_tags o WHERE o.memory_rowid = m.memory_rowid AND o.tag = ?)"


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


@dataclass(frozen=True)
class _Query:
    """The rows a page reads, as alias `m`: the memories, or the tag rows of the first tag asked for."""

    source: str
    where: str
    params: list[Any]
    key: str  # the memory's rowid in `source`: the cursor's tie-breaker

    @staticmethod
    def of(user: str, filters: Filters, roles: Sequence[str]) -> _Query:
        """Return the query of the filters: a tag filter walks the memory_tags index of its first tag."""
        tagged = bool(filters.tags) and filters.namespace is not None
        # memory_tags carries every column the filters name, under the same names, so the same SQL applies.
        where, params = (replace(filters, tags=()) if tagged else filters).sql(user)
        if tagged:
            where += " AND m.tag = ?" + TAG_TOO * (len(filters.tags) - 1)
            params.extend(filters.tags)
        if roles:
            where += f" AND m.role IN ({','.join('?' * len(roles))})"
            params.extend(roles)
        if tagged:
            return _Query("memory_tags m", where, params, "m.memory_rowid")
        return _Query("memories m", where, params, "m.rowid")


class Browse:
    """BrowseStore on SQLite, on the store's one connection."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def page(
        self, user: str, filters: Filters, roles: Sequence[str], before: tuple[float, int] | None, limit: int
    ) -> list[tuple[Memory, float, int]]:
        """Return (memory, created_ts, rowid) newest first, strictly before the cursor (created_ts, rowid)."""
        q = _Query.of(user, filters, roles)
        where, params = q.where, list(q.params)
        if before is not None:
            # Row values keep the cursor exact when many memories share one timestamp.
            where += f" AND (m.created_ts, {q.key}) < (?, ?)"
            params.extend(before)
        newest = f"FROM {q.source} WHERE {where} ORDER BY m.created_ts DESC, {q.key} DESC LIMIT ?"
        if q.key != "m.rowid":
            # The tag rows name the page's memories (the inner `m`); the outer `m` reads those memories.
            newest = f"FROM memories m WHERE m.rowid IN (SELECT m.memory_rowid {newest}) ORDER BY m.created_ts DESC"
        sql = f"SELECT {COLUMNS}, m.created_ts, m.rowid {newest}"
        async with self._db.execute(sql, [*params, limit]) as cur:
            rows = await cur.fetchall()
        found = [(memory_from_row(r), float(r[WIDTH]), int(r[WIDTH + 1])) for r in rows]
        return sorted(found, key=lambda row: (row[1], row[2]), reverse=True)

    async def count(self, user: str, filters: Filters, roles: Sequence[str], cap: int) -> int:
        """Count the memories that pass the filters and roles, stopping at `cap`."""
        # A role filter without a tag reads every row it counts; the cap bounds a page's cost at any store size.
        q = _Query.of(user, filters, roles)
        sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM {q.source} WHERE {q.where} LIMIT ?)"
        async with self._db.execute(sql, [*q.params, cap]) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def per_day(self, user: str, filters: Filters, roles: Sequence[str], newest: int) -> list[tuple[float, int]]:
        """Return (UTC day start, count) over the `newest` memories that pass the filters, newest day first."""
        q = _Query.of(user, filters, roles)
        # Newest first through the (user, namespace, created_ts) index or the tag's, stopping after `newest` matches.
        sql = (
            "SELECT CAST(ts / 86400 AS INTEGER) * 86400 AS day, COUNT(*) FROM"
            f" (SELECT m.created_ts AS ts FROM {q.source} WHERE {q.where} ORDER BY m.created_ts DESC LIMIT ?)"
            " GROUP BY day ORDER BY day DESC"
        )
        async with self._db.execute(sql, [*q.params, newest]) as cur:
            rows = await cur.fetchall()
        return [(float(r[0]), int(r[1])) for r in rows]

    async def sessions(self, user: str, namespace: str, limit: int) -> list[tuple[str, int, str]]:
        """Return (session, count, newest created_at) of a namespace, most recently active first."""
        # Only the (user, namespace, session_id, created_ts) index is read: no row, so no created_at text.
        sql = (
            "SELECT session_id, COUNT(*), MAX(created_ts) AS last FROM memories"
            " WHERE user = ? AND namespace = ? GROUP BY session_id ORDER BY last DESC LIMIT ?"
        )
        async with self._db.execute(sql, (user, namespace, limit)) as cur:
            rows = await cur.fetchall()
        return [(str(r[0]), int(r[1]), _stamp(float(r[2]))) for r in rows]

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


def _stamp(ts: float) -> str:
    """Return Unix seconds as stored times are written: ISO 8601 UTC ending in Z."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
