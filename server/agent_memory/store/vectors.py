"""LanceDB: the derived vector index, keyed by memory id; it can always be rebuilt from SQLite.

Calls here are synchronous (LanceDB's native API); the service runs them in a worker thread.
Filters are built with LanceDB's typed expressions, so values are never pasted into SQL text.

Several processes may share the table. Reads look for other processes' commits at most once a second
(`READ_CONSISTENCY`); commits that conflict with another process's are retried with bounded, jittered
backoff (`_retry`), and what still fails becomes a BackendError. Compaction keeps old versions for a
grace period so a reader in another process never loses the files under its feet.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.expr import Expr, col, lit

from agent_memory.errors import BackendError

logger = logging.getLogger(__name__)

# How stale a read may be with respect to another process's commits.
READ_CONSISTENCY = timedelta(seconds=1)
# Attempts for a write and for a read; LanceDB commits are optimistic and may lose a race to another process.
WRITE_ATTEMPTS = 8
READ_ATTEMPTS = 3
RETRY_FIRST_SECONDS = 0.05
RETRY_MAX_SECONDS = 2.0

T = TypeVar("T")

# Compact after this many writes: each add makes a table version and a small fragment.
COMPACT_EVERY = 200


@dataclass(frozen=True)
class VectorRow:
    """One memory's vector and the columns that filters need."""

    id: str
    user: str
    namespace: str
    session_id: str
    created_ts: float
    vector: np.ndarray[Any, np.dtype[np.float32]]


class VectorIndex:
    """One LanceDB table of memory vectors for one embedding model."""

    def __init__(self, directory: Path | str, table_name: str, dim: int) -> None:
        self._db = lancedb.connect(str(directory), read_consistency_interval=READ_CONSISTENCY)
        self._dim = dim
        self._schema = pa.schema(
            [
                pa.field("id", pa.string(), nullable=False),
                pa.field("user", pa.string(), nullable=False),
                pa.field("namespace", pa.string(), nullable=False),
                pa.field("session_id", pa.string(), nullable=False),
                pa.field("created_ts", pa.float64(), nullable=False),
                pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
            ]
        )
        self._table = _retry(
            "open", WRITE_ATTEMPTS, lambda: self._db.create_table(table_name, schema=self._schema, exist_ok=True)
        )
        self._lock = threading.Lock()
        self._writes = 0

    def upsert(self, rows: Sequence[VectorRow]) -> None:
        """Insert or replace rows by id (idempotent, so a retried batch never duplicates)."""
        if not rows:
            return
        data = pa.table(
            {
                "id": [r.id for r in rows],
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
            self._write(
                "upsert",
                lambda: (
                    self._table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(data)
                ),
            )
            self._writes += 1
            if self._writes >= COMPACT_EVERY:
                self._writes = 0
                self._compact()

    def delete(self, ids: Sequence[str]) -> None:
        """Remove rows by id."""
        if ids:
            with self._lock:
                self._write("delete", lambda: self._table.delete(col("id").isin(list(ids))))

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
    ) -> list[tuple[str, float]]:
        """Return (id, cosine similarity) of the nearest rows in scope, best first."""
        where: Expr = (col("user") == lit(user)) & (col("namespace") == lit(namespace))
        if session_id is not None:
            where = where & (col("session_id") == lit(session_id))
        if since_ts is not None:
            where = where & (col("created_ts") >= lit(since_ts))
        if until_ts is not None:
            where = where & (col("created_ts") <= lit(until_ts))
        rows = _retry(
            "search",
            READ_ATTEMPTS,
            lambda: (
                self._table.search(vector.astype(np.float32), vector_column_name="vector")  # type: ignore[attr-defined]
                .distance_type("cosine")
                .where(where, prefilter=True)
                .select(["id", "_distance"])
                .limit(limit)
                .to_list()
            ),
            self._refresh,
        )
        return [(str(r["id"]), 1.0 - float(r["_distance"])) for r in rows]

    def count(self) -> int:
        """Count rows in the index."""
        return int(_retry("count", READ_ATTEMPTS, self._table.count_rows, self._refresh))

    def _write(self, what: str, action: Callable[[], object]) -> None:
        _retry(what, WRITE_ATTEMPTS, action, self._refresh)

    def _refresh(self) -> None:
        """Move to the latest table version (after a conflict, or when an old version's files were cleaned up)."""
        try:
            self._table.checkout_latest()  # type: ignore[no-untyped-call]
        except (RuntimeError, OSError, ValueError) as exc:
            logger.debug("could not refresh the vector table: %s", exc)

    def _compact(self) -> None:
        # Keep a grace period: a reader in another process may still be using an older version (its reads
        # refresh every READ_CONSISTENCY, far shorter). A compaction that loses a race is simply skipped.
        try:
            self._write("compact", lambda: self._table.optimize(cleanup_older_than=timedelta(minutes=1)))
        except BackendError as exc:
            logger.info("vector index compaction skipped: %s", exc)
            return
        logger.debug("compacted vector index")


def _retry(what: str, attempts: int, action: Callable[[], T], refresh: Callable[[], None] | None = None) -> T:
    """Run a LanceDB call, retrying transient failures (commit conflicts, cleaned-up files) with backoff."""
    delay = RETRY_FIRST_SECONDS
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except (RuntimeError, OSError, ValueError) as exc:  # LanceDB's errors: lance errors are RuntimeErrors
            if attempt == attempts:
                raise BackendError(f"The vector index failed to {what} after {attempts} attempts: {exc}") from exc
            logger.info("vector index %s failed (attempt %d of %d), retrying: %s", what, attempt, attempts, exc)
        # Jitter so processes that collided do not collide again in step.
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, RETRY_MAX_SECONDS)
        if refresh is not None:
            refresh()
    raise AssertionError("unreachable")
