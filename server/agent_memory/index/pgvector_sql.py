"""The SQL side of the pgvector index: bound filters, table names, binary vectors, connection setup, errors."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.adapt import Dumper
from psycopg.pq import Format

from agent_memory.errors import BackendError
from agent_memory.index.protocol import Vector, VectorScope

# Postgres truncates identifiers past 63 bytes; longer table names are shortened with a digest, leaving room
# for the index-name suffixes.
MAX_NAME = 54
STATEMENT_TIMEOUT = "30s"


def failure(what: str, exc: BaseException) -> BackendError:
    """Return a database error as the BackendError the indexer reports and retries."""
    detail = " ".join(str(exc).split())[:240]
    return BackendError(f"Vector database {what} failed ({type(exc).__name__}: {detail}).")


def configure(conn: psycopg.Connection[Any]) -> None:
    """Send vectors in pgvector's binary form, and bound every statement (a stuck query fails and is retried)."""
    conn.adapters.register_dumper(Embedding, _EmbeddingDumper)
    conn.execute("SELECT set_config('statement_timeout', %s, false)", (STATEMENT_TIMEOUT,))


def where(scope: VectorScope) -> tuple[sql.Composable, list[Any]]:
    """Return the filter for a scope and its parameters: values are bound, never pasted."""
    clauses: list[sql.Composable] = [sql.SQL('"user" = %s')]
    params: list[Any] = [escape(scope.user)]
    for column, value in (("namespace", scope.namespace), ("session_id", scope.session_id)):
        if value is not None:
            clauses.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(escape(value))
    if scope.since_ts is not None:
        clauses.append(sql.SQL("created_ts >= %s"))
        params.append(float(scope.since_ts))
    if scope.until_ts is not None:
        clauses.append(sql.SQL("created_ts <= %s"))
        params.append(float(scope.until_ts))
    if scope.ids is not None:
        clauses.append(sql.SQL("id = ANY(%s)"))
        # An id holding NUL cannot be in the table (Postgres text cannot hold it): leaving it out changes nothing.
        params.append(sorted(i for i in scope.ids if "\x00" not in i))
    return sql.SQL(" AND ").join(clauses), params


def escape(value: str) -> str:
    """Return a filter value storable as Postgres text: NUL becomes \\0, and backslashes double to keep it unique."""
    return value.replace("\\", "\\\\").replace("\x00", "\\0")


def physical_name(name: str) -> str:
    """Return the table name in the database: the index key, shortened with a digest when Postgres would cut it."""
    if len(name) <= MAX_NAME:
        return name
    return f"{name[: MAX_NAME - 9]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class Embedding:
    """A vector bound as a parameter in pgvector's binary form (`%b::vector`): no text to format or parse."""

    values: Vector


class _EmbeddingDumper(Dumper):
    """pgvector's binary input (vector_recv): dimensions and a reserved word as int16, then big-endian float4."""

    format = Format.BINARY

    def dump(self, obj: Embedding) -> bytes:
        values = np.asarray(obj.values, dtype=">f4").ravel()
        return struct.pack(">HH", values.size, 0) + values.tobytes()
