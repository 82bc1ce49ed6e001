"""One LanceDB table of vector rows, as LanceVectorIndex (lance.py) uses it: every call retried, every commit locked.

Every commit takes an exclusive file lock shared by every process on this machine (`lock_path`): two
concurrent merge_inserts of the same new id would otherwise both insert it, and while a process holds it no
other process changes a row (the ANN build, which changes none, does not wait for it), so its exact search
follows its own compactions instead of reading the table again. Commits that still conflict (another
machine) are retried with bounded, jittered backoff (commit_lock.py), and what still fails becomes a
BackendError. Compaction keeps old versions for a grace period so a reader in another process never loses
the files under its feet.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.expr import Expr, col, lit
from lancedb.index import Bitmap, BTree, IvfPq

from agent_memory.index import layout
from agent_memory.index.commit_lock import exclusive_lock, retry
from agent_memory.index.protocol import Vector, VectorHit
from agent_memory.index.tuning import IndexTuning

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How stale a read may be with respect to another process's commits.
READ_CONSISTENCY = timedelta(seconds=1)
# Filter columns: bitmaps for few distinct values, B-trees for many.
SCALAR_INDEXES: dict[str, type[Bitmap] | type[BTree]] = {
    "key": BTree,
    "id": BTree,
    "user": Bitmap,
    "namespace": Bitmap,
    "session_id": BTree,
    "created_ts": BTree,
}


class LanceTable:
    """One LanceDB table of vector rows: every call retried, every commit under the cross-process lock."""

    def __init__(
        self,
        location: Path | str,
        name: str,
        dim: int,
        storage_options: Mapping[str, str] | None,
        lock_path: Path | None,
        tuning: IndexTuning,
    ) -> None:
        self._session = lancedb.Session(tuning.index_cache_bytes, tuning.metadata_cache_bytes)  # index, metadata
        self._db = lancedb.connect(
            str(location),
            read_consistency_interval=READ_CONSISTENCY,
            storage_options=dict(storage_options or {}) or None,
            session=self._session,
        )
        self._dim = dim
        self._location = str(location)
        self._lock_path = lock_path
        self._tuning = tuning
        self.schema = layout.schema(dim)
        self._table = self._retry(
            "open", lambda: self._db.create_table(name, schema=self.schema, exist_ok=True), write=True, refresh=False
        )

    def merge(self, data: pa.Table) -> tuple[int, int]:
        """Insert or replace rows by key; return the table versions just before and after the commit."""
        return self._commit(
            "upsert",
            lambda: (
                self._table.merge_insert("key").when_matched_update_all().when_not_matched_insert_all().execute(data)
            ),
        )

    def delete(self, ids: Sequence[str]) -> tuple[int, int]:
        """Remove every row of these memories; return the table versions just before and after the commit."""
        return self._commit("delete", lambda: self._table.delete(col("id").isin(list(ids))))

    def search(self, vector: Vector, where: Expr, limit: int, *, nprobes: int | None) -> list[VectorHit]:
        """Return the nearest rows passing `where`: through the ANN index probing `nprobes`, or exactly (None)."""

        def run() -> list[VectorHit]:
            query = (
                self._table.search(vector.astype(np.float32), vector_column_name="vector")  # type: ignore[attr-defined]
                .distance_type("cosine")
                .where(where, prefilter=True)
                .select(["id", "windows", "_distance"])
                .limit(limit)
            )
            if nprobes is None:
                query = query.bypass_vector_index()
            else:
                query = query.nprobes(nprobes).refine_factor(self._tuning.refine)
            return [VectorHit(str(r["id"]), 1.0 - float(r["_distance"]), int(r["windows"])) for r in query.to_list()]

        return self._retry("search", run)

    def first_vectors(self, ids: Sequence[str]) -> dict[str, Vector]:
        """Return the vector of each memory's first window, read from the table."""
        where = (col("chunk") == lit(0)) & col("id").isin(list(ids))
        query = self._table.search().where(where).select(["id", "vector"]).limit(len(ids))  # type: ignore[attr-defined]
        rows = self._retry("read", query.to_list)
        return {str(r["id"]): np.asarray(r["vector"], dtype=np.float32) for r in rows}

    def count_memories(self) -> int:
        """Count memories (their first windows)."""
        return int(self._retry("count", lambda: self._table.count_rows("chunk = 0")))

    def count_rows(self) -> int:
        """Count rows (windows): what search time and upkeep depend on."""
        return int(self._retry("count", self._table.count_rows))

    def fragments(self) -> int:
        """Count the table's data fragments."""
        # Typed as a dataclass, returned as a dict: indexing works on both.
        stats = self._retry("describe", self._table.stats)
        return int(stats["fragment_stats"]["num_fragments"])  # type: ignore[index]

    def read_all(self) -> Iterable[pa.RecordBatch]:
        """Return every row's vector and filter columns, a batch at a time."""
        query = self._table.search().select(layout.EXACT_SEARCH_COLUMNS).limit(None)  # type: ignore[attr-defined]
        return self._retry("read", lambda: query.to_batches(8192))  # type: ignore[no-any-return]

    @property
    def sole_writer(self) -> bool:
        """Return True when every commit to the table holds the lock (a local table: no other machine writes)."""
        return self._lock_path is not None and "://" not in self._location

    def add_scalar_indexes(self) -> tuple[int, int]:
        """Create the scalar indexes the table lacks; return the table versions before and after."""

        def add() -> None:
            existing = {c for index in self._table.list_indices() for c in index.columns}
            for column, kind in SCALAR_INDEXES.items():
                if column not in existing and column in self.schema.names:
                    self._table.create_index(column, config=kind(), replace=True)

        return self._commit("index", add)

    def compact(self) -> tuple[int, int]:
        """Compact fragments, fold new rows into the indexes and remove versions past a grace period.

        Return the table versions before and after.
        """
        # The grace period: a reader in another process may still be using an older version (its reads
        # refresh every READ_CONSISTENCY, far shorter).
        return self._commit("compact", lambda: self._table.optimize(cleanup_older_than=timedelta(minutes=1)))

    def build_ann(self, partitions: int) -> None:
        """Build (or replace) the IVF_PQ index over the vectors."""
        config = IvfPq(distance_type="cosine", num_partitions=partitions, num_sub_vectors=self._dim // 8)
        # replace=True swaps the new index in atomically; searches use the old one until then.
        self._table.create_index("vector", config=config, replace=True)

    def indexed_vector_rows(self) -> int:
        """Return the rows the ANN index covers; 0 without one."""
        return next((i.num_indexed_rows or 0 for i in self._table.list_indices() if i.columns == ["vector"]), 0)

    def drop_other(self, name: str) -> None:
        """Delete another table of this database."""
        with contextlib.suppress(ValueError):  # already gone (deleted by hand, or by another process)
            self._db.drop_table(name)

    @property
    def cache_bytes(self) -> int:
        """Return the memory LanceDB's caches hold for this handle."""
        return int(self._session.size_bytes)

    def version(self) -> int:
        """Return the table version this handle reads."""
        return int(self._table.version)

    def refresh(self) -> None:
        """Move to the latest table version (after a conflict, or when an old version's files were cleaned up)."""
        try:
            self._table.checkout_latest()  # type: ignore[no-untyped-call]
        except (RuntimeError, OSError, ValueError) as exc:
            logger.debug("could not refresh the vector table: %s", exc)

    def _commit(self, what: str, action: Callable[[], object]) -> tuple[int, int]:
        """Commit a write under the cross-process lock, retrying conflicts; return the versions before and after."""

        def locked() -> tuple[int, int]:
            with exclusive_lock(self._lock_path):
                # merge_insert joins against the handle's cached version: without this, a row another process
                # inserted in the last READ_CONSISTENCY interval would be inserted a second time.
                self.refresh()
                before = self.version()
                action()
                return before, self.version()

        return self._retry(what, locked, write=True)

    def _retry(self, what: str, action: Callable[[], T], *, write: bool = False, refresh: bool = True) -> T:
        tuning = self._tuning
        return retry(
            what,
            action,
            attempts=tuning.write_attempts if write else tuning.read_attempts,
            first_seconds=tuning.retry_first_seconds,
            max_seconds=tuning.retry_max_seconds,
            refresh=self.refresh if refresh else None,
        )


def table_rows(location: Path | str, table_name: str, storage_options: Mapping[str, str] | None = None) -> int:
    """Count the rows of an existing table without creating anything; raise ValueError when it is missing."""
    db = lancedb.connect(str(location), storage_options=dict(storage_options or {}) or None)
    return int(db.open_table(table_name).count_rows())
