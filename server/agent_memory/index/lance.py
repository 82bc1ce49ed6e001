"""LanceDB: the derived vector index, keyed by memory window; it can always be rebuilt from SQLite.

A long memory is embedded as several windows (see embedding/chunking.py), one row each: `key` is
"<memory id>:<window>", `id` is the memory id. Search returns rows; delete removes every window of a memory.

Calls here are synchronous (LanceDB's native API); the service runs them in a worker thread.
Filters are built with LanceDB's typed expressions, so values are never pasted into SQL text.

Several processes may share the table. Reads look for other processes' commits at most once a second
(`READ_CONSISTENCY`); how commits are locked and retried is in lance_table.py.

Up to `exact_search_rows` rows, searches go to the exact search in memory (exact.py): exact, and much faster
than LanceDB's exact scan or its ANN index. This process's writes and compactions keep it current; after
anyone else's commit it is stale, never searched, and upkeep (upkeep.py) reloads it. Past that, searches go to
LanceDB: through the ANN index once upkeep has built one, else an exact scan.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pyarrow as pa
from lancedb.expr import Expr, col, lit

from agent_memory.index import layout
from agent_memory.index.exact import Product, VersionedExactSearch
from agent_memory.index.lance_table import LanceTable
from agent_memory.index.protocol import IndexState, Vector, VectorHit, VectorRow, VectorScope
from agent_memory.index.tuning import IndexTuning
from agent_memory.index.upkeep import Upkeep


class LanceVectorIndex:
    """One LanceDB table of memory vectors for one embedding model, searched exactly in memory while small."""

    def __init__(
        self,
        location: Path | str,
        table_name: str,
        dim: int,
        *,
        storage_options: Mapping[str, str] | None = None,
        lock_path: Path | None = None,
        tuning: IndexTuning | None = None,
        product: Product | None = None,
        release_memory: Callable[[], None] | None = None,
    ) -> None:
        """Open (or create) the table.

        `location` is a directory or an object-store URI (s3://bucket/prefix); credentials and endpoint come
        from `storage_options` or the standard AWS_* environment, which LanceDB reads itself. `product` is the
        exact search's float16 product (numpy's when None); `release_memory` hands freed heap back to the OS.
        """
        tuning = tuning or IndexTuning()
        self._table = LanceTable(location, table_name, dim, storage_options, lock_path, tuning)
        self._dim = dim
        self._release_memory = release_memory
        self._lock = threading.Lock()
        self._exact = VersionedExactSearch(dim, self._table.version, product)
        self._upkeep = Upkeep(
            self._table,
            self._exact,
            tuning,
            ann_rows=self._table.indexed_vector_rows(),
            release_memory=self._release,
            write_lock=self._lock,
        )
        self._upkeep.load_exact_if_small()

    def upsert(self, rows: Sequence[VectorRow]) -> None:
        """Insert or replace rows by key (idempotent, so a retried batch never duplicates)."""
        if not rows:
            return
        data = layout.to_arrow(rows, self._table.schema)
        with self._lock, self._exact.committing():
            versions = self._table.merge(data)
            self._exact.follow(versions, lambda exact: exact.upsert(rows))
            self._upkeep.wrote(len(rows))

    def delete(self, ids: Sequence[str]) -> None:
        """Remove every row of these memories."""
        if ids:
            with self._lock, self._exact.committing():
                versions = self._table.delete(ids)
                self._exact.follow(versions, lambda exact: exact.delete(ids))

    def search(self, vector: Vector, scope: VectorScope, limit: int, *, exact: bool = False) -> list[VectorHit]:
        """Return up to `limit` nearest rows in scope, best first; a memory appears once per window found.

        `exact` skips the ANN index (to measure it against exact search).
        """
        # The exact search in memory, when current, is exact and faster than either LanceDB search.
        with self._exact.searchable() as held:
            if held is not None:
                return held.search(vector, scope, limit)
        where = _where(scope)
        if self._upkeep.ann_rows == 0 or exact or scope.ids is not None:
            return self._table.search(vector, where, limit, nprobes=None)
        hits = self._table.search(vector, where, limit, nprobes=self._upkeep.nprobes())
        if len(hits) < limit:
            # A narrow filter can leave the probed partitions short of hits; the filtered set is small: go exact.
            hits = self._table.search(vector, where, limit, nprobes=None)
        return hits

    def first_vectors(self, ids: Sequence[str]) -> dict[str, Vector]:
        """Return the vector of each memory's first window, for those held."""
        if not ids:
            return {}
        with self._exact.searchable() as held:
            if held is not None:
                return held.first_vectors(ids)
        return self._table.first_vectors(ids)

    def count(self) -> int:
        """Count memories in the index (their first windows)."""
        return self._table.count_memories()

    def drop_table(self, name: str) -> None:
        """Delete another table of this database (an index built for an older model or row layout)."""
        self._table.drop_other(name)

    def refresh(self) -> None:
        """Move to the latest table version now, as reads do by themselves within READ_CONSISTENCY."""
        self._table.refresh()

    def describe(self) -> IndexState:
        """Return what the index holds and how it searches."""
        return self._upkeep.state()

    def needs_upkeep(self) -> bool:
        """Return True when `maintain` has work: compaction, indexes to build, or the exact search to load."""
        return self._upkeep.due()

    def maintain(self, *, compact: bool = False) -> None:
        """Compact, add missing indexes and load the exact search when due; a no-op if already running."""
        self._upkeep.run(compact=compact)

    def _release(self) -> None:
        """Hand freed memory back: Arrow's pool, then the owner's heap."""
        pa.default_memory_pool().release_unused()
        if self._release_memory is not None:
            self._release_memory()


def _where(scope: VectorScope) -> Expr:
    """Return the filter for a scope, built from typed expressions."""
    where: Expr = col("user") == lit(scope.user)
    if scope.namespace is not None:
        where = where & (col("namespace") == lit(scope.namespace))
    if scope.session_id is not None:
        where = where & (col("session_id") == lit(scope.session_id))
    if scope.since_ts is not None:
        where = where & (col("created_ts") >= lit(scope.since_ts))
    if scope.until_ts is not None:
        where = where & (col("created_ts") <= lit(scope.until_ts))
    if scope.ids is not None:
        where = where & col("id").isin(sorted(scope.ids))
    return where
