"""LanceDB: the derived vector index, keyed by memory id; it can always be rebuilt from SQLite.

A long memory is embedded as several windows (see chunking.py), one row each: `key` is "<memory id>:<window>",
`id` is the memory id. Search ranks memories by their best window; delete removes every window of a memory.

Calls here are synchronous (LanceDB's native API); the service runs them in a worker thread.
Filters are built with LanceDB's typed expressions, so values are never pasted into SQL text.

Several processes may share the table. Reads look for other processes' commits at most once a second
(`READ_CONSISTENCY`). Upserts take an exclusive file lock shared by every process on this machine
(`lock_path`): two concurrent merge_inserts of the same new id would otherwise both insert it; deletes and
compaction cannot duplicate anything, so they do not wait for it. Commits that still conflict (compaction,
another machine) are retried with bounded, jittered backoff (commits.py), and what still fails becomes a
BackendError. Compaction keeps old versions for a grace period so a reader in another process never loses
the files under its feet.

Up to MATRIX_MAX_ROWS rows, searches go to an in-memory copy of the table (matrix.py): exact, and much
faster than LanceDB's exact scan or its ANN index. This process's writes update the copy; after anyone else's commit the
copy is stale, never searched, and upkeep reloads it.

Upkeep (`maintain`, run on a background thread): every add makes a table version and a small fragment, so
after COMPACT_EVERY writes the fragments are compacted (no lock: writers never wait for it; a compaction
that loses a commit race is retried, then skipped) and versions older than a minute removed. Scalar
indexes on the id and filter columns speed up merge_insert and prefiltering.
Past ANN_MIN_ROWS rows, where exact search gets slow (~1 ms per 1k rows), an IVF_PQ index is built; search
re-ranks its candidates with the full vectors (refine), and rows added after the build are searched exactly
until the next compaction folds them in. Index builds take no lock: LanceDB commits concurrent appends and
index builds without conflict, so neither readers nor writers wait for upkeep.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.expr import Expr, col, lit
from lancedb.index import Bitmap, BTree, IvfPq

from agent_memory.embedding import malloc as heap
from agent_memory.errors import BackendError
from agent_memory.index.commit_lock import exclusive_lock, retry
from agent_memory.index.exact import Mirror

logger = logging.getLogger(__name__)

# How stale a read may be with respect to another process's commits.
READ_CONSISTENCY = timedelta(seconds=1)
# Attempts for a write and for a read; LanceDB commits are optimistic and may lose a race to another process.
WRITE_ATTEMPTS = 8
READ_ATTEMPTS = 3

# Compact after this many writes: each add makes a table version and a small fragment.
COMPACT_EVERY = 200
# Exact search costs ~1 ms per 1k rows on 2 cores; past this an ANN index pays for its build (~1 s per 1k rows).
ANN_MIN_ROWS = 20_000
# Retrain the ANN index when the table has grown by this factor since it was trained.
ANN_RETRAIN_GROWTH = 2.0
# Share of the IVF partitions probed, and candidates re-ranked with full vectors per hit. Probing PQ codes is
# cheap and re-ranking is not: at 100k rows 30% of partitions with 5x refine agree with exact search on 99.7%
# of the top 10 in 13 ms, where 24 partitions with 10x refine agreed on 92% in 15 ms.
PROBE_SHARE = 0.3
REFINE = 5
# Filter columns: bitmaps for few distinct values, B-trees for many.
SCALAR_INDEXES: dict[str, type[Bitmap] | type[BTree]] = {
    "key": BTree,
    "id": BTree,
    "user": Bitmap,
    "namespace": Bitmap,
    "session_id": BTree,
    "created_ts": BTree,
}
# Up to this many rows, searches go to an in-memory copy of the table (store/matrix.py; ~0.9 KB per row, so
# ~45 MB at most): a chat-sized memory takes ~4 rows (whole and by sentence), so that is ~12k such memories.
# The ANN index is built earlier (ANN_MIN_ROWS), ready for when the table outgrows the copy.
MATRIX_MAX_ROWS = 50_000
# Rows fetched per memory wanted: several windows of one long memory can crowd the nearest rows.
OVERSAMPLE = 3
# Spread of MiniLM cosine similarity between unrelated texts (about 0.06 on chat messages).
SIMILARITY_SPREAD = 0.06


def many_draws_bonus(windows: int) -> float:
    """Return how much the best of `windows` windows beats one window by chance alone.

    A memory scored by its best window gets several draws: the maximum of n similarities of unrelated
    text exceeds a single one by about spread * sqrt(2 ln n). Subtracting that keeps long memories from
    outranking short ones merely for being long, while a window that truly matches still stands out.
    """
    return SIMILARITY_SPREAD * math.sqrt(2 * math.log(windows)) if windows > 1 else 0.0


@dataclass(frozen=True)
class VectorRow:
    """One window's vector of a memory and the columns that filters need."""

    id: str
    user: str
    namespace: str
    session_id: str
    created_ts: float
    vector: np.ndarray[Any, np.dtype[np.float32]]
    chunk: int = 0
    windows: int = 1  # how many windows the memory has

    @property
    def key(self) -> str:
        """Return the row key: the memory id and the window number."""
        return f"{self.id}:{self.chunk}"


class VectorIndex:
    """One LanceDB table of memory vectors for one embedding model."""

    def __init__(
        self,
        location: Path | str,
        table_name: str,
        dim: int,
        storage_options: Mapping[str, str] | None = None,
        lock_path: Path | None = None,
        matrix_max_rows: int | None = None,
    ) -> None:
        # `location` is a directory or an object-store URI (s3://bucket/prefix); credentials and endpoint come
        # from `storage_options` or the standard AWS_* environment, which LanceDB reads itself.
        self._db = lancedb.connect(
            str(location),
            read_consistency_interval=READ_CONSISTENCY,
            storage_options=dict(storage_options or {}) or None,
        )
        self._dim = dim
        self._lock_path = lock_path
        self._schema = pa.schema(
            [
                pa.field("key", pa.string(), nullable=False),
                pa.field("id", pa.string(), nullable=False),
                pa.field("chunk", pa.int32(), nullable=False),
                pa.field("windows", pa.int32(), nullable=False),
                pa.field("user", pa.string(), nullable=False),
                pa.field("namespace", pa.string(), nullable=False),
                pa.field("session_id", pa.string(), nullable=False),
                pa.field("created_ts", pa.float64(), nullable=False),
                pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
            ]
        )
        self._table = retry(
            "open", WRITE_ATTEMPTS, lambda: self._db.create_table(table_name, schema=self._schema, exist_ok=True)
        )
        self._lock = threading.Lock()
        self._upkeep = threading.Lock()
        # The in-memory copy for exact search while the table is small.
        self._mirror = Mirror(dim, self._version)
        self._matrix_max_rows = MATRIX_MAX_ROWS if matrix_max_rows is None else matrix_max_rows
        self._writes = 0
        self._scalar_ready = False
        # Rows the ANN index was trained on (after a restart: the rows it covers, so retraining comes later).
        self._ann_rows = self._indexed_vector_rows()
        # Rows as last counted plus rows written since: lets needs_upkeep decide without touching the table.
        self._rows = self._count_rows()

    def upsert(self, rows: Sequence[VectorRow]) -> None:
        """Insert or replace rows by key (idempotent, so a retried batch never duplicates)."""
        if not rows:
            return
        data = pa.table(
            {
                "key": [r.key for r in rows],
                "id": [r.id for r in rows],
                "chunk": [r.chunk for r in rows],
                "windows": [r.windows for r in rows],
                "user": [r.user for r in rows],
                "namespace": [r.namespace for r in rows],
                "session_id": [r.session_id for r in rows],
                "created_ts": [r.created_ts for r in rows],
                "vector": pa.FixedSizeListArray.from_arrays(
                    pa.array(np.concatenate([r.vector for r in rows]).astype(np.float32)), self._dim
                ),
            },
            schema=self._schema,
        )
        with self._lock:
            versions = self._write(
                "upsert",
                lambda: (
                    self._table.merge_insert("key")
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .execute(data)
                ),
                exclusive=True,
            )
            self._mirror.follow(versions, lambda matrix: matrix.upsert(rows))
            self._writes += 1
            self._rows += len(rows)

    def delete(self, ids: Sequence[str]) -> None:
        """Remove every row of these memories."""
        if ids:
            with self._lock:
                versions = self._write("delete", lambda: self._table.delete(col("id").isin(list(ids))))
                self._mirror.follow(versions, lambda matrix: matrix.delete(ids))

    def search(
        self,
        vector: np.ndarray[Any, np.dtype[np.float32]],
        *,
        user: str,
        namespace: str,
        session_id: str | None,
        since_ts: float | None,
        until_ts: float | None,
        limit: int,
        exact: bool = False,
    ) -> list[tuple[str, float]]:
        """Return (memory id, cosine similarity of its best window) of the nearest memories in scope, best first.

        `exact` skips the ANN index (to measure it against exact search).
        """
        # The in-memory copy, when current, is exact and faster than either LanceDB search.
        with self._mirror.searchable() as matrix:
            rows = (
                None
                if matrix is None
                else matrix.search(
                    vector,
                    user=user,
                    namespace=namespace,
                    session_id=session_id,
                    since_ts=since_ts,
                    until_ts=until_ts,
                    limit=limit * OVERSAMPLE,
                )
            )
        if rows is None:
            where: Expr = (col("user") == lit(user)) & (col("namespace") == lit(namespace))
            if session_id is not None:
                where = where & (col("session_id") == lit(session_id))
            if since_ts is not None:
                where = where & (col("created_ts") >= lit(since_ts))
            if until_ts is not None:
                where = where & (col("created_ts") <= lit(until_ts))
            ann = self._ann_rows > 0 and not exact
            rows = self._search(vector, where, limit * OVERSAMPLE, ann=ann)
            if ann and len(rows) < limit * OVERSAMPLE:
                # A narrow filter can leave the probed partitions short of hits; the filtered set is small: go exact.
                rows = self._search(vector, where, limit * OVERSAMPLE, ann=False)
        # Rows come best first, so a memory's first row is its best window.
        best: dict[str, float] = {}
        for memory, similarity, windows in rows:
            if memory not in best:
                best[memory] = similarity - many_draws_bonus(windows)
        return sorted(best.items(), key=lambda pair: pair[1], reverse=True)[:limit]

    def _search(
        self, vector: np.ndarray[Any, np.dtype[np.float32]], where: Expr, limit: int, *, ann: bool
    ) -> list[tuple[str, float, int]]:
        def run() -> list[tuple[str, float, int]]:
            query = (
                self._table.search(vector.astype(np.float32), vector_column_name="vector")  # type: ignore[attr-defined]
                .distance_type("cosine")
                .where(where, prefilter=True)
                .select(["id", "windows", "_distance"])
                .limit(limit)
            )
            query = query.nprobes(self._nprobes()).refine_factor(REFINE) if ann else query.bypass_vector_index()
            return [(str(r["id"]), 1.0 - float(r["_distance"]), int(r["windows"])) for r in query.to_list()]

        return retry("search", READ_ATTEMPTS, run, self._refresh)

    def count(self) -> int:
        """Count memories in the index (their first windows)."""
        return int(retry("count", READ_ATTEMPTS, lambda: self._table.count_rows("chunk = 0"), self._refresh))

    def _count_rows(self) -> int:
        """Count rows (windows): what search time and upkeep depend on."""
        return int(retry("count", READ_ATTEMPTS, self._table.count_rows, self._refresh))

    def drop_table(self, name: str) -> None:
        """Delete another table of this database (an index built for an older model or row layout)."""
        with contextlib.suppress(ValueError):  # already gone (deleted by hand, or by another process)
            self._db.drop_table(name)

    def _write(self, what: str, action: Callable[[], object], *, exclusive: bool = False) -> tuple[int, int]:
        """Commit a write, retrying conflicts; return the table versions just before and after the commit.

        `exclusive` holds the cross-process lock (merge_insert needs it).
        """

        def locked() -> tuple[int, int]:
            with exclusive_lock(self._lock_path if exclusive else None):
                # merge_insert joins against the handle's cached version: without this, a row another process
                # inserted in the last READ_CONSISTENCY interval would be inserted a second time.
                self._refresh()
                before = self._version()
                action()
                return before, self._version()

        return retry(what, WRITE_ATTEMPTS, locked, self._refresh)

    def _read_all(self) -> Iterable[pa.RecordBatch]:
        """Return every row's vector and filter columns, a batch at a time."""
        columns = ["id", "chunk", "windows", "user", "namespace", "session_id", "created_ts", "vector"]
        query = self._table.search().select(columns).limit(None)  # type: ignore[attr-defined]
        return retry("read", READ_ATTEMPTS, lambda: query.to_batches(8192), self._refresh)  # type: ignore[no-any-return]

    def _version(self) -> int:
        return int(self._table.version)

    def _matrix_due(self) -> bool:
        """Return True when the in-memory copy should be (re)loaded; free it once the table outgrows it."""
        if 0 < self._rows <= self._matrix_max_rows:
            return self._mirror.current() is None
        self._mirror.drop()
        return False

    def _refresh(self) -> None:
        """Move to the latest table version (after a conflict, or when an old version's files were cleaned up)."""
        try:
            self._table.checkout_latest()  # type: ignore[no-untyped-call]
        except (RuntimeError, OSError, ValueError) as exc:
            logger.debug("could not refresh the vector table: %s", exc)

    def has_ann(self) -> bool:
        """Return True when searches go through the ANN index."""
        return self._ann_rows > 0

    def needs_upkeep(self) -> bool:
        """Return True when `maintain` has work: compaction, or an ANN index to build or retrain."""
        return self._rows > 0 and (
            self._writes >= COMPACT_EVERY or not self._scalar_ready or self._ann_due(self._rows) or self._matrix_due()
        )

    def maintain(self, *, compact: bool = False) -> None:
        """Compact, add missing scalar indexes and build the ANN index when due; a no-op if already running."""
        if not self._upkeep.acquire(blocking=False):
            return
        try:
            rows = self._rows = self._count_rows()
            if rows == 0:
                return
            if not self._scalar_ready:
                existing = {c for index in self._table.list_indices() for c in index.columns}
                for column, kind in SCALAR_INDEXES.items():
                    if column not in existing and column in self._schema.names:
                        self._table.create_index(column, config=kind(), replace=True)
                self._scalar_ready = True
            if compact or self._writes >= COMPACT_EVERY:
                self._writes = 0
                self._compact(rows)
            if self._ann_due(rows):
                self._build_ann(rows)
            if self._matrix_due():
                started = time.monotonic()
                self._mirror.load(self._read_all, self._rows)
                logger.info("copied %d vector rows into memory in %.1f s", rows, time.monotonic() - started)
                # The table read is gone once copied: hand its memory back (Arrow's pool, then glibc's heap).
                pa.default_memory_pool().release_unused()
                heap.trim()
        finally:
            self._upkeep.release()

    def _compact(self, rows: int) -> None:
        # Keep a grace period: a reader in another process may still be using an older version (its reads
        # refresh every READ_CONSISTENCY, far shorter). optimize also folds rows added since the indexes were
        # built into them. A compaction that loses a race is simply skipped.
        try:
            self._write("compact", lambda: self._table.optimize(cleanup_older_than=timedelta(minutes=1)))
        except BackendError as exc:
            logger.info("vector index compaction skipped: %s", exc)
            return
        logger.debug("compacted vector index at %d rows", rows)

    def _ann_due(self, rows: int) -> bool:
        return rows >= ANN_MIN_ROWS and rows >= self._ann_rows * ANN_RETRAIN_GROWTH

    def _build_ann(self, rows: int) -> None:
        started = time.monotonic()
        config = IvfPq(distance_type="cosine", num_partitions=_partitions(rows), num_sub_vectors=self._dim // 8)
        # replace=True swaps the new index in atomically; searches use the old one until then.
        self._table.create_index("vector", config=config, replace=True)
        self._ann_rows = rows
        logger.info("built the ANN index over %d rows in %.0f s", rows, time.monotonic() - started)

    def _nprobes(self) -> int:
        return max(1, math.ceil(_partitions(self._ann_rows) * PROBE_SHARE))

    def _indexed_vector_rows(self) -> int:
        return next((i.num_indexed_rows or 0 for i in self._table.list_indices() if i.columns == ["vector"]), 0)


def _partitions(rows: int) -> int:
    """Return the IVF partitions for an index over `rows` rows."""
    return max(16, int(rows**0.5))


def table_rows(location: Path | str, table_name: str, storage_options: Mapping[str, str] | None = None) -> int:
    """Count the rows of an existing table without creating anything; raise ValueError when it is missing."""
    db = lancedb.connect(str(location), storage_options=dict(storage_options or {}) or None)
    return int(db.open_table(table_name).count_rows())
