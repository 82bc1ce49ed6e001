"""Rows and SQL fragments shared by the store's queries: what goes in, what comes out, and scope filters."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent_memory.models import Memory

# The ids of the two turns before a conversation turn and the two after it (None past the session's ends).
Neighbours = tuple[str | None, str | None, str | None, str | None]

COLUMNS = (
    "m.id, m.content, m.role, m.namespace, m.session_id, m.tags, m.metadata, m.created_at,"
    " m.superseded_by, m.superseded_at, m.expires_at"
)
# How many columns COLUMNS selects: a query's extra columns come after them.
WIDTH = 11
# SQLite's clock in Unix seconds, for expiry when the caller hands in no clock of its own.
_SQL_NOW = "((julianday('now') - 2440587.5) * 86400.0)"


@dataclass(frozen=True)
class Filters:
    """Narrowing inside one user's scope; every value is bound as a parameter."""

    namespace: str | None  # None: every namespace of the user (recall with namespace="*")
    session_id: str | None = None
    tags: tuple[str, ...] = ()
    since_ts: float | None = None
    until_ts: float | None = None
    # Expiry is measured at this time (None: the database's clock); superseded and expired memories are left
    # out unless `include_superseded`; `as_of_ts` keeps what was current then (created, not yet superseded).
    now_ts: float | None = None
    as_of_ts: float | None = None
    include_superseded: bool = False

    def sql(self, user: str, *, by_id: bool = False) -> tuple[str, list[Any]]:
        """Return a WHERE fragment over alias `m` and its parameters (`by_id`: the query looks rows up by id)."""
        # Without statistics SQLite prefers the (user, namespace) index over `id IN (...)` and scans the whole
        # scope (30 ms at 100k memories); a unary + keeps the scope columns out of index selection.
        scope = "+m." if by_id else "m."
        clauses = [f"{scope}user = ?"]
        params: list[Any] = [user]
        if self.namespace is not None:
            clauses.append(f"{scope}namespace = ?")
            params.append(self.namespace)
        if self.session_id is not None:
            clauses.append(f"{scope}session_id = ?")
            params.append(self.session_id)
        for tag in self.tags:
            clauses.append("EXISTS (SELECT 1 FROM json_each(m.tags) WHERE json_each.value = ?)")
            params.append(tag)
        if self.since_ts is not None:
            clauses.append(f"{scope}created_ts >= ?")
            params.append(self.since_ts)
        if self.until_ts is not None:
            clauses.append(f"{scope}created_ts <= ?")
            params.append(self.until_ts)
        currency, values = self._currency()
        return " AND ".join([*clauses, *currency]), [*params, *values]

    def _currency(self) -> tuple[list[str], list[Any]]:
        """Return the clauses that keep current memories: not superseded, not expired (at `as_of_ts` if set)."""
        if self.as_of_ts is None:
            clauses = [] if self.include_superseded else ["m.superseded_by IS NULL"]
            if self.now_ts is None:
                return [*clauses, f"(m.expires_ts IS NULL OR m.expires_ts > {_SQL_NOW})"], []
            return [*clauses, "(m.expires_ts IS NULL OR m.expires_ts > ?)"], [self.now_ts]
        clauses = ["m.created_ts <= ?", "(m.expires_ts IS NULL OR m.expires_ts > ?)"]
        params: list[Any] = [self.as_of_ts, self.as_of_ts]
        if not self.include_superseded:
            clauses.append("(m.superseded_ts IS NULL OR m.superseded_ts > ?)")
            params.append(self.as_of_ts)
        return clauses, params


def by_ids_query(user: str, ids: Sequence[str], filters: Filters) -> tuple[str, list[Any]]:
    """Return the SELECT of the memories among `ids` that pass the filters, and its parameters."""
    where, params = filters.sql(user, by_id=True)
    marks = ",".join("?" * len(ids))
    return f"SELECT {COLUMNS} FROM memories m WHERE m.id IN ({marks}) AND {where}", [*ids, *params]


@dataclass(frozen=True)
class NewRow:
    """A validated memory ready to insert."""

    id: str
    user: str
    namespace: str
    session_id: str
    role: str
    content: str
    content_hash: str
    tags: Sequence[str]
    metadata: dict[str, Any]
    created_at: datetime
    # A turn of a conversation the caller named (not the server's default session): keyword search also reads
    # it with the turn before it.
    in_conversation: bool = False
    # When it stops being current (None: never); what superseded it, for an import that carries the link.
    expires_at: datetime | None = None
    superseded_by: str | None = None
    superseded_at: datetime | None = None
    # The ids of the memories this one replaces (remember's `supersedes`), linked in the same transaction.
    supersedes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SummaryKey:
    """Which history a stored summary summarises: the user, namespace, session key and focus it was asked for."""

    user: str
    namespace: str
    session_key: str
    focus: str


@dataclass(frozen=True)
class Inserted:
    """What an insert did with one row: its id and time, and whether it was an exact repeat."""

    id: str
    created_at: str
    duplicate: bool
    # The memories it superseded: the heads of their chains (an id already superseded passes to its successor).
    superseded: tuple[str, ...] = ()


@dataclass(frozen=True)
class PendingRow:
    """A committed memory that the vector index does not hold yet."""

    id: str
    content: str
    user: str
    namespace: str
    session_id: str
    created_ts: float


def memory_from_row(row: sqlite3.Row | tuple[Any, ...]) -> Memory:
    """Return the Memory of a row selected with COLUMNS."""
    return Memory(
        id=row[0],
        content=row[1],
        role=row[2],
        namespace=row[3],
        session_id=row[4],
        tags=json.loads(row[5]),
        metadata=json.loads(row[6]),
        created_at=row[7],
        superseded_by=row[8],
        superseded_at=row[9],
        expires_at=row[10],
    )
