"""LanceDB: the derived vector index, keyed by memory id; it can always be rebuilt from SQLite.

Calls here are synchronous (LanceDB's native API); the service runs them in a worker thread.
Filters are built with LanceDB's typed expressions, so values are never pasted into SQL text.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.expr import Expr, col, lit

logger = logging.getLogger(__name__)

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
        self._db = lancedb.connect(str(directory))
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
        self._table = self._db.create_table(table_name, schema=self._schema, exist_ok=True)
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
            (self._table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(data))
            self._writes += 1
            if self._writes >= COMPACT_EVERY:
                self._writes = 0
                self._compact()

    def delete(self, ids: Sequence[str]) -> None:
        """Remove rows by id."""
        if ids:
            with self._lock:
                self._table.delete(col("id").isin(list(ids)))

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
        rows = (
            self._table.search(vector.astype(np.float32), vector_column_name="vector")  # type: ignore[attr-defined]
            .distance_type("cosine")
            .where(where, prefilter=True)
            .select(["id", "_distance"])
            .limit(limit)
            .to_list()
        )
        return [(str(r["id"]), 1.0 - float(r["_distance"])) for r in rows]

    def count(self) -> int:
        """Count rows in the index."""
        return int(self._table.count_rows())

    def _compact(self) -> None:
        # Keep a short grace period: another process may still be reading an older version.
        self._table.optimize(cleanup_older_than=timedelta(minutes=1))
        logger.debug("compacted vector index")
