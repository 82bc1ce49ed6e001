"""PostgresStore: the MemoryStore protocol on one Postgres database shared by many servers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import psycopg

from agent_memory.errors import BackendError
from agent_memory.models import Memory
from agent_memory.store.postgres import keyword, writes
from agent_memory.store.postgres.history import History
from agent_memory.store.postgres.indexing import LEASE_SECONDS, PendingRows
from agent_memory.store.postgres.oauth import PgOAuth
from agent_memory.store.postgres.pool import STATEMENT_TIMEOUT_SECONDS, Database, check_text, describe, first_line
from agent_memory.store.postgres.schema import migrate
from agent_memory.store.postgres.side import PgBrowse, PgSummaries
from agent_memory.store.postgres.sql import (
    COLUMNS,
    WIDTH,
    like_prefix,
    memory_from_row,
    where,
)
from agent_memory.store.rows import Filters, Inserted, Neighbours, NewRow

_SAME_SESSION = (
    "SELECT t.id FROM memories t WHERE t.owner = m.owner AND t.namespace = m.namespace"
    " AND t.session_id = m.session_id AND t.context IS NOT NULL AND "
)
_AROUND = ", ".join(
    f"({_SAME_SESSION}(t.created_ts, t.pos) {side} (m.created_ts, m.pos) ORDER BY {order} LIMIT 1 OFFSET {offset})"
    for side, order, offset in (
        ("<", "t.created_ts DESC, t.pos DESC", 1),
        ("<", "t.created_ts DESC, t.pos DESC", 0),
        (">", "t.created_ts, t.pos", 0),
        (">", "t.created_ts, t.pos", 1),
    )
)


class PostgresStore(History, PendingRows):
    """Memories, keyword search (full text, GIN), indexing claims, summaries, settings and sign-in, on a pool."""

    def __init__(self, db: Database, lease_seconds: float = LEASE_SECONDS) -> None:
        self._db = db
        self.lease_seconds = lease_seconds
        self.claimer = uuid.uuid4().hex
        self._summaries = PgSummaries(db)
        self._browse = PgBrowse(db)
        self._oauth = PgOAuth(db)

    @classmethod
    async def open(
        cls, url: str, *, statement_timeout: float = STATEMENT_TIMEOUT_SECONDS, lease_seconds: float = LEASE_SECONDS
    ) -> PostgresStore:
        """Migrate the database (under the advisory lock) and open a pool on it."""
        try:
            await migrate(url)
        except psycopg.OperationalError as exc:
            first = first_line(exc)
            raise BackendError(
                f"Cannot open the memory database at {describe(url)}: {first}. Check that it runs and that"
                " AGENT_MEMORY_DATABASE_URL (host, port, user, password, database) is right."
            ) from None
        return cls(await Database.open(url, statement_timeout=statement_timeout), lease_seconds)

    @property
    def summaries(self) -> PgSummaries:
        """Return the summaries kept beside the memories."""
        return self._summaries

    @property
    def browse(self) -> PgBrowse:
        """Return the web page's read side."""
        return self._browse

    @property
    def oauth(self) -> PgOAuth:
        """Return the users, OAuth clients, codes and tokens."""
        return self._oauth

    async def close(self) -> None:
        """Close the pool."""
        await self._db.close()

    async def insert_many(self, rows: Sequence[NewRow]) -> list[Inserted]:
        """Insert rows in one transaction, an exact repeat returning the stored memory; one outcome per row."""
        for row in rows:
            check_text([row.id, row.user, row.namespace, row.session_id, row.role, row.content, *row.supersedes])
        async with self._db.transaction() as conn:
            done: list[Inserted] = []
            for row in rows:
                inserted = await writes.insert(conn, row)
                if row.supersedes:
                    at = datetime.fromisoformat(inserted.created_at)
                    linked = await writes.link(conn, row.user, inserted.id, at, row.supersedes)
                    inserted = replace(inserted, superseded=linked)
                done.append(inserted)
            return done

    async def delete(self, user: str, id: str, namespace: str | None = None) -> bool:
        """Delete one memory of this user (and namespace, when given); return whether it existed."""
        check_text([user, id, namespace])
        async with self._db.transaction() as conn:
            return await writes.delete(conn, user, id, namespace)

    async def keyword_search(
        self, user: str, terms: Sequence[str], filters: Filters, limit: int
    ) -> list[tuple[Memory, float]]:
        """Return memories matching any of the terms, best first, with a BM25-like score (higher is better)."""
        return await keyword.search(self._db, user, terms, filters, limit)

    async def by_ids(self, user: str, ids: Sequence[str], filters: Filters) -> dict[str, Memory]:
        """Return the memories among `ids` that pass the filters, keyed by id."""
        if not ids:
            return {}
        clause, params = where(filters, user)
        sql = f"SELECT {COLUMNS} FROM memories m WHERE m.id = ANY(%s::text[]) AND {clause}"
        rows = await self._db.all(sql, [list(ids), *params])
        return {r[0]: memory_from_row(r) for r in rows}

    async def neighbours(self, user: str, ids: Sequence[str]) -> dict[str, Neighbours]:
        """Return, for each conversation turn among `ids`, the ids of the two turns before and the two after it."""
        if not ids:
            return {}
        sql = (
            f"SELECT m.id, {_AROUND} FROM memories m"
            " WHERE m.owner = %s AND m.id = ANY(%s::text[]) AND m.context IS NOT NULL"
        )
        rows = await self._db.all(sql, (user, list(ids)))
        return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}

    async def count_matching(self, user: str, filters: Filters, *, unindexed: bool = False) -> int:
        """Count the memories that pass the filters (`unindexed`: only those not yet in the vector index)."""
        clause, params = where(filters, user)
        clause += " AND m.indexed = 0" if unindexed else ""
        return await self._db.scalar(f"SELECT COUNT(*) FROM memories m WHERE {clause}", params)

    async def unindexed(self, user: str, filters: Filters, limit: int) -> list[Memory]:
        """Return up to `limit` memories in scope not yet in the vector index, newest first."""
        clause, params = where(filters, user)
        sql = f"SELECT {COLUMNS} FROM memories m WHERE m.indexed = 0 AND {clause} ORDER BY m.pos DESC LIMIT %s"
        return [memory_from_row(r) for r in await self._db.all(sql, [*params, limit])]

    async def recent(self, user: str, filters: Filters, limit: int) -> list[Memory]:
        """Return the newest `limit` memories in scope, oldest first."""
        clause, params = where(filters, user)
        sql = f"SELECT {COLUMNS} FROM memories m WHERE {clause} ORDER BY m.created_ts DESC, m.pos DESC LIMIT %s"
        rows = await self._db.all(sql, [*params, limit])
        return [memory_from_row(r) for r in reversed(rows)]

    async def namespaces(self, user: str, prefix: str, limit: int) -> list[str]:
        """Return the user's namespaces that start with `prefix`, alphabetically (its % and _ match themselves)."""
        rows = await self._db.all(
            "SELECT DISTINCT namespace FROM memories WHERE owner = %s AND namespace LIKE %s ESCAPE '\\'"
            " ORDER BY namespace LIMIT %s",
            (user, like_prefix(prefix), limit),
        )
        return [str(r[0]) for r in rows]

    async def export_page(
        self, user: str | None, namespace: str | None, after: int, limit: int
    ) -> list[tuple[int, str, Memory]]:
        """Return (position, user, memory) after `after` in insertion order, optionally within one user/namespace."""
        clauses, params = self._scope(user, namespace)
        sql = f"SELECT {COLUMNS}, m.pos, m.owner FROM memories m WHERE m.pos > %s{clauses} ORDER BY m.pos LIMIT %s"
        rows = await self._db.all(sql, [after, *params, limit])
        return [(int(r[WIDTH]), str(r[WIDTH + 1]), memory_from_row(r)) for r in rows]

    async def count_scope(self, user: str | None, namespace: str | None) -> int:
        """Count memories, optionally within one user and/or namespace."""
        clauses, params = self._scope(user, namespace)
        return await self._db.scalar(f"SELECT COUNT(*) FROM memories m WHERE TRUE{clauses}", params)

    @staticmethod
    def _scope(user: str | None, namespace: str | None) -> tuple[str, list[Any]]:
        pairs = [(c, v) for c, v in (("m.owner", user), ("m.namespace", namespace)) if v is not None]
        return "".join(f" AND {c} = %s" for c, _ in pairs), [v for _, v in pairs]

    async def counts(self) -> list[tuple[str, str, str, int, int]]:
        """Return (user, namespace, role, memories, pending) for every group that has memories."""
        rows = await self._db.all(
            "SELECT owner, namespace, role, COUNT(*), COUNT(*) FILTER (WHERE indexed = 0) FROM memories"
            " GROUP BY owner, namespace, role ORDER BY owner, namespace, role"
        )
        return [(str(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4])) for r in rows]

    async def get_value(self, key: str) -> str | None:
        """Return a stored setting."""
        row = await self._db.one("SELECT value FROM kv WHERE key = %s", (key,))
        return str(row[0]) if row else None

    async def set_value(self, key: str, value: str) -> None:
        """Store a setting."""
        check_text([key, value])
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO kv VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value)
            )
