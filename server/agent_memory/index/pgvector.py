"""Postgres with pgvector: the vector index when the store is a shared Postgres database.

One row per window of a memory, as in LanceDB (`key` is "<memory id>:<window>"), in a table named after the
model and row layout (indexer.table_name) with a `vector(dim)` column under an HNSW cosine index. Every filter
value is a bound parameter: nothing a caller passes is pasted into SQL text (table names are quoted
identifiers built from the model name, never from a request).

Filtered HNSW searches use pgvector 0.8's iterative index scans: the scan goes on past `ef_search` candidates
until `limit` rows pass the filter (or `hnsw.max_scan_tuples` is reached), so one user's narrow scope still
gets its hits. `relaxed_order` may return them slightly out of order; the outer query sorts them again.

Calls are synchronous (psycopg 3, a small thread-safe pool); the service runs them in a worker thread. Many
servers may share the table: upserts are keyed, so two servers indexing the same memory never duplicate it.
A large backlog (a re-index, the first start after a migrate) is loaded without the HNSW index, built once after
by upkeep (pgvector_bulk.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from agent_memory.errors import BackendError
from agent_memory.index import pgvector_bulk
from agent_memory.index.pgvector_sql import Embedding, configure, escape, failure, physical_name, where
from agent_memory.index.protocol import IndexState, Vector, VectorHit, VectorRow, VectorScope

logger = logging.getLogger(__name__)

T = TypeVar("T")

# ef_search is raised with the limit (HNSW returns at most ef_search rows per scan step). The floor keeps a short
# search (ten rows) as close to exact as recall's long ones at a hundred thousand rows (bench/postgres.py --ef-search).
_EF_SEARCH_MIN = 400
# Rows written since the last ANALYZE before upkeep runs one (autovacuum does it too, on its own schedule).
_ANALYZE_AFTER_ROWS = 20_000
# How long a call waits for a pooled connection before opening one of its own (all busy, or the pool reconnecting).
_POOL_WAIT_SECONDS = 2.0
_CONNECT_SECONDS = 5
# Filter columns that hold caller text: Postgres text cannot hold NUL, so these are stored escaped (reversibly,
# so two different values never meet).
_TEXT_FILTERS = ("user", "namespace", "session_id")


class PgVectorIndex:
    """One pgvector table of memory vectors for one embedding model, shared by every server of the database."""

    def __init__(
        self,
        conninfo: str,
        table_name: str,
        dim: int,
        *,
        pool_size: int = 4,
        connect_seconds: float = 30.0,
        build_memory_mb: int = pgvector_bulk.BUILD_MEMORY_MB,
    ) -> None:
        """Connect, and create the extension, table and indexes if missing (under an advisory lock)."""
        self._dim = dim
        self._build_memory_mb = build_memory_mb
        self._conninfo = conninfo
        self._name = physical_name(table_name)
        self._written = 0
        self._written_lock = threading.Lock()
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            configure=configure,
            check=ConnectionPool.check_connection,
            open=True,
            name="agent-memory-vectors",
        )
        try:
            try:
                self._pool.wait(timeout=connect_seconds)
            except (psycopg.Error, TimeoutError) as exc:
                raise BackendError(f"Cannot reach the vector database: {exc}") from exc
            self._iterative = self._run("open", self._create)
        except BackendError:
            self._pool.close()  # the indexer retries with a new index: no pool left reconnecting behind it
            raise

    def close(self) -> None:
        """Close the pool's connections."""
        self._pool.close()

    def upsert(self, rows: Sequence[VectorRow]) -> None:
        """Insert or replace rows by key (idempotent, so a retried batch never duplicates)."""
        if not rows:
            return
        query = sql.SQL(
            'INSERT INTO {t} (key, id, chunk, windows, "user", namespace, session_id, created_ts, embedding) '
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %b::vector) ON CONFLICT (key) DO UPDATE SET "
            'id = EXCLUDED.id, chunk = EXCLUDED.chunk, windows = EXCLUDED.windows, "user" = EXCLUDED."user", '
            "namespace = EXCLUDED.namespace, session_id = EXCLUDED.session_id, "
            "created_ts = EXCLUDED.created_ts, embedding = EXCLUDED.embedding"
        ).format(t=sql.Identifier(self._name))
        params = [
            (
                r.key,
                r.id,
                r.chunk,
                r.windows,
                escape(r.user),
                escape(r.namespace),
                escape(r.session_id),
                r.created_ts,
                Embedding(r.vector),
            )
            # In key order: two servers upserting overlapping batches lock rows in the same order, never deadlock.
            for r in sorted(rows, key=lambda r: r.key)
        ]

        def write(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(query, params)

        self._run("upsert", write)
        with self._written_lock:
            self._written += len(rows)

    def delete(self, ids: Sequence[str]) -> None:
        """Remove every row of these memories."""
        if ids:
            query = sql.SQL("DELETE FROM {t} WHERE id = ANY(%s)").format(t=sql.Identifier(self._name))
            self._run("delete", lambda conn: conn.execute(query, (list(ids),)))

    def search(self, vector: Vector, scope: VectorScope, limit: int) -> list[VectorHit]:
        """Return up to `limit` nearest rows in scope, best first; a memory appears once per window found."""
        if limit <= 0 or (scope.ids is not None and not scope.ids):
            return []
        clause, params = where(scope)
        if scope.ids is None:
            text = (
                "WITH found AS MATERIALIZED (SELECT id, windows, embedding <=> %b::vector AS distance FROM {t} "
                "WHERE {where} ORDER BY distance LIMIT %s) SELECT id, windows, distance FROM found ORDER BY distance"
            )
        else:
            # Chosen memories are few and must all be scored: sorting outside the scan keeps HNSW out of it (an
            # index scan stops at hnsw.max_scan_tuples, perhaps before reaching them).
            text = (
                "WITH scored AS MATERIALIZED (SELECT id, windows, embedding <=> %b::vector AS distance FROM {t} "
                "WHERE {where}) SELECT id, windows, distance FROM scored ORDER BY distance LIMIT %s"
            )
        query = sql.SQL(text).format(t=sql.Identifier(self._name), where=clause)
        ef_search = str(min(1000, max(_EF_SEARCH_MIN, 2 * limit)))

        def run(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
            with conn.transaction():
                conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (ef_search,))
                if self._iterative:
                    conn.execute("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)")
                return conn.execute(query, [Embedding(vector), *params, limit]).fetchall()

        rows = self._run("search", run)
        # A zero vector has no cosine distance (NaN): it is as far as anything can be.
        return [VectorHit(str(i), 0.0 if d != d else 1.0 - float(d), int(w)) for i, w, d in rows]

    def first_vectors(self, ids: Sequence[str]) -> dict[str, Vector]:
        """Return the vector of each memory's first window, for those held."""
        if not ids:
            return {}
        query = sql.SQL("SELECT id, embedding::real[] FROM {t} WHERE chunk = 0 AND id = ANY(%s)").format(
            t=sql.Identifier(self._name)
        )
        rows = self._run("read", lambda conn: conn.execute(query, (list(ids),)).fetchall())
        return {str(i): np.asarray(v, dtype=np.float32) for i, v in rows}

    def count(self) -> int:
        """Count memories in the index (their first windows)."""
        return self._count("chunk = 0")

    def needs_upkeep(self) -> bool:
        """Return True after many writes (statistics to refresh) or while the HNSW index is missing (to build)."""
        with self._written_lock:
            if self._written >= _ANALYZE_AFTER_ROWS:
                return True
        try:
            return self.ann_state() != "valid"
        except BackendError:  # asked between batches, outside the indexer's retries: the next idle moment asks again
            return False

    def maintain(self, *, compact: bool = False) -> None:
        """Build a missing HNSW index, refresh the planner statistics (ANALYZE); `compact` also VACUUMs."""
        built = self.ann_state() != "valid" and self.build_ann()
        with self._written_lock:
            if not (compact or built or self._written >= _ANALYZE_AFTER_ROWS):
                return  # only the build was due, and another server is running it
            self._written = 0
        command = "VACUUM (ANALYZE) {t}" if compact else "ANALYZE {t}"
        self._run("upkeep", lambda conn: conn.execute(sql.SQL(command).format(t=sql.Identifier(self._name))))

    def prepare_bulk(self, backlog: int, minimum: int | None = None) -> bool:
        """Before `backlog` memories arrive, drop the HNSW index if loading without it pays (pgvector_bulk.py)."""
        least = pgvector_bulk.BULK_MIN_ROWS if minimum is None else minimum
        bulk = self._run("bulk", lambda conn: pgvector_bulk.drop_for_bulk(conn, self._name, backlog, least))
        if bulk:
            logger.info("loading %d memories into %s without its HNSW index; it is built after", backlog, self._name)
        return bulk

    def build_ann(self) -> bool:
        """Build the HNSW index if it is missing and no other server is at it; return whether this call built it."""
        try:  # on a connection of its own, holding the build lock (not a pooled one, for minutes)
            built = pgvector_bulk.build(self._conninfo, self._name, self._dim, self._build_memory_mb)
        except (psycopg.Error, TimeoutError) as exc:
            raise failure("index build", exc) from exc
        if built:
            logger.info("built the HNSW index of %s", self._name)
        return built

    def ann_state(self) -> pgvector_bulk.State:
        """Return whether the HNSW index is there and usable ("invalid" while a build runs)."""
        return self._run("read", lambda conn: pgvector_bulk.hnsw_state(conn, self._name))

    def drop_table(self, name: str) -> None:
        """Delete another table of this database (an index built for an older model or row layout)."""
        if physical_name(name) == self._name:
            return
        query = sql.SQL("DROP TABLE IF EXISTS {t}").format(t=sql.Identifier(physical_name(name)))
        self._run("drop", lambda conn: conn.execute(query))

    def describe(self) -> IndexState:
        """Return what the index holds: every row in the HNSW index (none while it is missing), none in memory."""
        rows = self._count("TRUE")
        return IndexState(
            rows=rows,
            fragments=0,
            ann_rows=rows if self.ann_state() == "valid" else 0,
            exact_search_current=False,
            exact_search_rows=0,
            exact_search_capacity=0,
            exact_search_bytes=0,
        )

    @property
    def table(self) -> str:
        """Return the table's name in the database."""
        return self._name

    def _count(self, condition: str) -> int:
        query = sql.SQL("SELECT count(*) FROM {t} WHERE {c}").format(t=sql.Identifier(self._name), c=sql.SQL(condition))
        row = self._run("count", lambda conn: conn.execute(query).fetchone())
        return int(row[0]) if row else 0

    def _create(self, conn: psycopg.Connection[Any]) -> bool:
        """Create what is missing; return whether pgvector can scan its HNSW index iteratively (0.8 and later)."""
        t = sql.Identifier(self._name)
        with conn.transaction():
            # Two servers starting at once would otherwise race on CREATE ... IF NOT EXISTS.
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"agent-memory:{self._name}",))
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            new = conn.execute("SELECT to_regclass(%s) IS NULL", (t.as_string(conn),)).fetchone()
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {t} (key text PRIMARY KEY, id text NOT NULL, chunk integer NOT NULL, "
                    'windows integer NOT NULL, "user" text NOT NULL, namespace text NOT NULL, '
                    "session_id text NOT NULL, created_ts double precision NOT NULL, "
                    "embedding vector({dim}) NOT NULL)"
                ).format(t=t, dim=sql.Literal(self._dim))
            )
            if new and new[0]:
                # Only on a new table: one without it is being bulk-filled, and its index is built after.
                pgvector_bulk.create_hnsw(conn, self._name)
            for suffix, definition in (
                ("scope", '("user", namespace, created_ts)'),
                ("id", "(id)"),
            ):
                conn.execute(
                    sql.SQL("CREATE INDEX IF NOT EXISTS {i} ON {t} {d}").format(
                        i=sql.Identifier(f"{self._name}_{suffix}"), t=t, d=sql.SQL(definition)
                    )
                )
            row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        version = tuple(int(p) for p in str(row[0] if row else "0").split(".")[:2] if p.isdigit())
        if version < (0, 8):
            logger.warning("pgvector %s has no iterative index scans: narrow filters may return fewer hits", row)
        return version >= (0, 8)

    def _run(self, what: str, action: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run `action` on a pooled connection; a database error becomes a BackendError (the indexer retries)."""
        try:
            try:
                with self._pool.connection(timeout=_POOL_WAIT_SECONDS) as conn:
                    return action(conn)
            except PoolTimeout:
                # The pool reconnects after an outage with growing delays: a connection of its own answers as soon
                # as the database is back, and fails fast while it is not.
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=_CONNECT_SECONDS) as conn:
                    configure(conn)
                    return action(conn)
        except (psycopg.Error, TimeoutError) as exc:
            raise failure(what, exc) from exc
