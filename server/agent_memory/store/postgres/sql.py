"""SQL fragments of the Postgres store: the selected columns, scope filters and the keyword query.

Every value is a bound parameter (%s); no fragment here ever holds caller text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agent_memory.models import Memory
from agent_memory.store.rows import Filters

COLUMNS = (
    "m.id, m.content, m.role, m.namespace, m.session_id, m.tags, m.metadata, m.created_at,"
    " m.superseded_by, m.superseded_at, m.expires_at"
)
# How many columns COLUMNS selects: a query's extra columns come after them.
WIDTH = 11
# The database's clock in Unix seconds: one clock for every server on the database.
NOW = "EXTRACT(EPOCH FROM clock_timestamp())::double precision"
# Full-text weights {D, C, B, A}: the turn before a message (D) counts 0.3 of its own words (A), as in SQLite.
RANK_WEIGHTS = "'{0.3, 0.2, 0.4, 1.0}'"
# Ranking normalisation 1: divide by 1 + log(length), so a long memory does not win by size alone (as BM25).
RANK_NORMALISATION = 1


def memory_from_row(row: Sequence[Any]) -> Memory:
    """Return the Memory of a row selected with COLUMNS (tags arrive as a list from JSONB)."""
    tags = row[5] if isinstance(row[5], list) else json.loads(row[5])
    return Memory(
        id=row[0],
        content=row[1],
        role=row[2],
        namespace=row[3],
        session_id=row[4],
        tags=tags,
        metadata=json.loads(row[6]),
        created_at=row[7],
        superseded_by=row[8],
        superseded_at=row[9],
        expires_at=row[10],
    )


def where(filters: Filters, user: str) -> tuple[str, list[Any]]:
    """Return the WHERE fragment over alias `m` of a user's scope and filters, and its parameters."""
    clauses = ["m.owner = %s"]
    params: list[Any] = [user]
    for column, value in (("namespace", filters.namespace), ("session_id", filters.session_id)):
        if value is not None:
            clauses.append(f"m.{column} = %s")
            params.append(value)
    for tag in filters.tags:
        # Containment of a one-element array: the tag as a JSON string, never spliced into the JSON text.
        clauses.append("m.tags @> jsonb_build_array(%s::text)")
        params.append(tag)
    if filters.since_ts is not None:
        clauses.append("m.created_ts >= %s")
        params.append(filters.since_ts)
    if filters.until_ts is not None:
        clauses.append("m.created_ts <= %s")
        params.append(filters.until_ts)
    if filters.as_of_ts is None:
        if not filters.include_superseded:
            clauses.append("m.superseded_by IS NULL")
        if filters.now_ts is None:
            clauses.append(f"(m.expires_ts IS NULL OR m.expires_ts > {NOW})")
        else:
            clauses.append("(m.expires_ts IS NULL OR m.expires_ts > %s)")
            params.append(filters.now_ts)
    else:
        clauses += ["m.created_ts <= %s", "(m.expires_ts IS NULL OR m.expires_ts > %s)"]
        params += [filters.as_of_ts, filters.as_of_ts]
        if not filters.include_superseded:
            clauses.append("(m.superseded_ts IS NULL OR m.superseded_ts > %s)")
            params.append(filters.as_of_ts)
    return " AND ".join(clauses), params


def tsquery(terms: Sequence[str]) -> tuple[str, list[str]]:
    """Return a tsquery expression matching any of the terms, and its parameters.

    Each term goes through plainto_tsquery, which reads it as plain words: no tsquery operator in user text
    (&, |, !, <->, :*) keeps its meaning. The terms are ORed, as the SQLite store's FTS5 query is.
    """
    expression = " || ".join("plainto_tsquery('english', %s)" for _ in terms)
    return f"({expression})", list(terms)


def like_prefix(prefix: str) -> str:
    """Return a LIKE pattern matching text that starts with `prefix`, its wildcards escaped (ESCAPE '\\')."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def marks(count: int) -> str:
    """Return `count` comma-separated placeholders."""
    return ", ".join(["%s"] * count)
