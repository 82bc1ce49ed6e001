"""Bulk filling of a pgvector table: load a large backlog with the HNSW index absent, then build it once.

Inserting a row through an HNSW index searches the graph for its neighbours: at 100k rows that is ~20 ms a
row on two cores (about 50 rows/s), so a re-index or the first start after `migrate --to` would take hours at
1M. Loading the rows into a table without the HNSW index is as fast as any keyed insert, and one
`CREATE INDEX` over all of them afterwards costs a fraction of the row-by-row inserts (docs/deploy.md, "Measured
limits"). Meanwhile searches still answer, by an exact scan of the user's rows (the scope btree narrows them).

Several servers share one table, so the HNSW index's presence is the shared state, and one advisory lock (per
table) orders its changes:
- `drop_for_bulk` drops it only when the backlog is large against what the table already holds, and only if
  it gets the lock at once (a build in progress is never interrupted: the backlog then goes row by row).
- `build` runs on a connection of its own holding the lock for the whole build (a session lock: a server that
  dies mid-build releases it with its connection), checks again that the index is missing, drops one left
  invalid by a build that died, and runs `CREATE INDEX CONCURRENTLY`: other servers keep upserting meanwhile,
  and Postgres puts their rows in the new index too, so no row is lost and none is indexed twice. A second
  server finds the lock taken (or the index valid) and builds nothing.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import psycopg
from psycopg import sql

from agent_memory.config import Settings

# Below this backlog (memories) row by row takes under a minute even at 100k rows (89 rows/s measured there):
# not worth turning searches into exact scans for it.
BULK_MIN_ROWS = 5_000
HNSW_USING = "USING hnsw (embedding vector_cosine_ops)"
# The graph being built should fit in maintenance_work_mem (pgvector slows down a lot once it does not): a
# vector plus its neighbour lists and element header per row (measured: a 1 GB build filled at 441k 384-d rows),
# with a little room to spare, up to what the operator lets a build take (AGENT_MEMORY_PG_BUILD_MEMORY_MB; the
# default suits a shared database server).
_ROW_BYTES = 1024
_BUILD_MEMORY_MIN_MB = 64
BUILD_MEMORY_MB = Settings.pg_build_memory_mb  # the setting's default, for callers without settings
_CONNECT_SECONDS = 5

logger = logging.getLogger(__name__)

State = Literal["valid", "invalid", "absent"]


def hnsw_name(table: str) -> str:
    """Return the name of a table's HNSW index."""
    return f"{table}_hnsw"


def create_hnsw(conn: psycopg.Connection[Any], table: str, *, concurrently: bool = False) -> None:
    """Create the table's HNSW index if it is missing."""
    how = "CONCURRENTLY " if concurrently else ""
    conn.execute(
        sql.SQL("CREATE INDEX " + how + "IF NOT EXISTS {i} ON {t} " + HNSW_USING).format(
            i=sql.Identifier(hnsw_name(table)), t=sql.Identifier(table)
        )
    )


def hnsw_state(conn: psycopg.Connection[Any], table: str) -> State:
    """Return whether the HNSW index exists and is usable ("invalid": a concurrent build running or died)."""
    name = sql.Identifier(hnsw_name(table)).as_string(conn)
    row = conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", (name,)).fetchone()
    if row is None:
        return "absent"
    return "valid" if row[0] else "invalid"


def drop_for_bulk(conn: psycopg.Connection[Any], table: str, backlog: int, minimum: int = BULK_MIN_ROWS) -> bool:
    """Drop the HNSW index before loading `backlog` memories when that pays; return whether it is absent now."""
    if backlog < minimum:
        return False
    with conn.transaction():
        if not _try_lock(conn, table, session=False):
            return False  # a build is running: the backlog goes row by row through it
        held = conn.execute(sql.SQL("SELECT count(*) FROM {t} WHERE chunk = 0").format(t=sql.Identifier(table)))
        row = held.fetchone()
        # The build reads every row: measured, it pays from a backlog of a tenth of the table, but the index is
        # kept unless the table at least doubles, so a catch-up never makes a large store's searches exact scans
        # (a reindex, a new model or the first start after a migrate load everything, and go the bulk way).
        if row is not None and backlog < int(row[0]):
            return hnsw_state(conn, table) == "absent"
        _drop_hnsw(conn, table)
    return True


def build(conninfo: str, table: str, dim: int, memory_cap_mb: int = BUILD_MEMORY_MB) -> bool:
    """Build the HNSW index if it is missing and no other server is building it; return whether this call built it."""
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=_CONNECT_SECONDS) as conn:
        if not _try_lock(conn, table, session=True):
            return False
        # Held until this connection closes: released at the end of the build, or when this process dies.
        state = hnsw_state(conn, table)
        if state == "valid":
            return False
        if state == "invalid":  # left by a build that died (its lock is free): it would take every insert
            _drop_hnsw(conn, table)
        row = conn.execute(sql.SQL("SELECT count(*) FROM {t}").format(t=sql.Identifier(table))).fetchone()
        rows = int(row[0]) if row else 0
        wanted = build_memory_mb(rows, dim, cap_mb=None)
        megabytes = build_memory_mb(rows, dim, memory_cap_mb)
        if megabytes < wanted:
            logger.warning(
                "the HNSW graph of %d rows wants ~%d MB but AGENT_MEMORY_PG_BUILD_MEMORY_MB is %d: the build spills "
                "to disk and runs many times slower (docs/deploy.md)",
                rows,
                wanted,
                memory_cap_mb,
            )
        conn.execute("SELECT set_config('maintenance_work_mem', %s, false)", (f"{megabytes}MB",))
        conn.execute("SELECT set_config('statement_timeout', '0', false)")  # a build at 1M takes many minutes
        create_hnsw(conn, table, concurrently=True)
        return True


def build_memory_mb(rows: int, dim: int, cap_mb: int | None = BUILD_MEMORY_MB) -> int:
    """Return the maintenance_work_mem (MB) for building a graph of `rows` vectors of `dim` dimensions."""
    wanted = rows * (4 * dim + _ROW_BYTES) // (1 << 20) + _BUILD_MEMORY_MIN_MB
    return wanted if cap_mb is None else max(_BUILD_MEMORY_MIN_MB, min(cap_mb, wanted))


def _drop_hnsw(conn: psycopg.Connection[Any], table: str) -> None:
    conn.execute(sql.SQL("DROP INDEX IF EXISTS {i}").format(i=sql.Identifier(hnsw_name(table))))


def _try_lock(conn: psycopg.Connection[Any], table: str, *, session: bool) -> bool:
    """Take the table's index lock if free (a transaction's, or the connection's until it closes)."""
    function = "pg_try_advisory_lock" if session else "pg_try_advisory_xact_lock"
    row = conn.execute(
        sql.SQL("SELECT {f}(hashtextextended(%s, 0))").format(f=sql.Identifier(function)),
        (f"agent-memory-hnsw:{table}",),
    ).fetchone()
    return bool(row and row[0])
