"""Upkeep of the vector table, run on a background thread: compaction, scalar indexes, the ANN index, exact search.

Every add makes a table version and a small fragment, so after `compact_every` writes the fragments are
compacted (a compaction that loses a commit race is retried, then skipped). Compaction and the scalar index
builds hold the owner's write lock, briefly: the exact search follows them, since they move no row, instead of
being read again from the table (during a write burst, when upkeep runs in the indexer's idle moments, a
reload would leave every search of the burst to LanceDB's scans).
Scalar indexes on the id and filter columns speed up merge_insert and prefiltering. Past `ann_min_rows` rows
and once the exact search in memory no longer holds them (before, a build would only compete with queries for
the cores), an IVF_PQ index is built, and trained again once the table has grown by
`ann_retrain_growth`; search re-ranks its candidates with the full vectors, and rows added after the build are
searched exactly until the next compaction folds them in. Up to `exact_search_rows` rows the exact search in
memory is loaded whenever it is not current; once the table outgrows it, it serves on until the ANN index is
built, then is freed. The ANN build takes no lock: LanceDB commits concurrent appends and index builds without
conflict, so neither readers nor writers wait for it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from agent_memory.errors import BackendError
from agent_memory.index.exact import ExactSearch, VersionedExactSearch
from agent_memory.index.protocol import IndexState
from agent_memory.index.tuning import IndexTuning

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)


class MaintainedTable(Protocol):
    """The table operations upkeep runs (LanceDB's, in lance.py)."""

    def count_rows(self) -> int:
        """Count rows (windows)."""
        ...

    def fragments(self) -> int:
        """Count the table's data fragments."""
        ...

    @property
    def cache_bytes(self) -> int:
        """Return the memory the library's caches hold."""
        ...

    @property
    def sole_writer(self) -> bool:
        """Return True when no commit changes a row while one of this process's commits holds the lock."""
        ...

    def add_scalar_indexes(self) -> tuple[int, int]:
        """Create the scalar indexes the table lacks; return the table versions before and after."""
        ...

    def compact(self) -> tuple[int, int]:
        """Compact fragments and remove old versions; raise BackendError when it keeps losing commit races."""
        ...

    def build_ann(self, partitions: int) -> None:
        """Build (or replace) the ANN index with this many IVF partitions."""
        ...

    def read_all(self) -> Iterable[pa.RecordBatch]:
        """Return every row's vector and filter columns, a batch at a time."""
        ...


class Upkeep:
    """Decides which upkeep is due and runs it; one run at a time."""

    def __init__(
        self,
        table: MaintainedTable,
        exact: VersionedExactSearch,
        tuning: IndexTuning,
        *,
        ann_rows: int,
        release_memory: Callable[[], None],
        write_lock: threading.Lock,
    ) -> None:
        self._table = table
        self._exact = exact
        self._write_lock = write_lock
        self._tuning = tuning
        self._release_memory = release_memory
        self._running = threading.Lock()
        self._writes = 0
        self._scalar_ready = False
        # Rows the ANN index was trained on (after a restart: the rows it covers, so retraining comes later).
        self.ann_rows = ann_rows
        # Rows as last counted plus rows written since: lets `due` decide without touching the table.
        self.rows = table.count_rows()

    def wrote(self, rows: int) -> None:
        """Record one write of `rows` rows."""
        self._writes += 1
        self.rows += rows

    def nprobes(self) -> int:
        """Return how many IVF partitions an ANN search probes."""
        return max(1, math.ceil(_partitions(self.ann_rows) * self._tuning.probe_share))

    def due(self) -> bool:
        """Return True when `run` has work: compaction, scalar indexes, the ANN index or the exact search."""
        return self.rows > 0 and (
            self._writes >= self._tuning.compact_every
            or not self._scalar_ready
            or self._ann_due(self.rows)
            or self._exact_due()
        )

    def run(self, *, compact: bool = False) -> None:
        """Do the upkeep that is due (`compact`: compact now); a no-op while another run is going."""
        if not self._running.acquire(blocking=False):
            return
        try:
            rows = self.rows = self._table.count_rows()
            if rows == 0:
                return
            if not self._scalar_ready:
                self._moving_no_row(self._table.add_scalar_indexes)
                self._scalar_ready = True
            if compact or self._writes >= self._tuning.compact_every:
                self._writes = 0
                self._compact(rows)
            if self._ann_due(rows):
                self._build_ann(rows)
            if self._exact_due():
                self._load_exact(rows)
        finally:
            self._running.release()

    def state(self) -> IndexState:
        """Return what the table and the exact search hold now."""
        exact = self._exact.current()
        return IndexState(
            rows=self._table.count_rows(),
            fragments=self._table.fragments(),
            ann_rows=self.ann_rows,
            exact_search_current=exact is not None,
            exact_search_rows=0 if exact is None else exact.rows,
            exact_search_capacity=0 if exact is None else exact.capacity,
            exact_search_bytes=0 if exact is None else exact.vector_bytes,
            cache_bytes=self._table.cache_bytes,
        )

    def _moving_no_row(self, commit: Callable[[], tuple[int, int]]) -> None:
        """Run a commit that changes no row under the owner's write lock; the exact search follows it."""
        with self._write_lock, self._exact.committing():
            versions = commit()
            self._exact.follow(versions, _unchanged, only_ours=self._table.sole_writer)

    def _compact(self, rows: int) -> None:
        try:
            self._moving_no_row(self._table.compact)
        except BackendError as exc:
            logger.info("vector index compaction skipped: %s", exc)
            return
        logger.debug("compacted vector index at %d rows", rows)

    def _ann_due(self, rows: int) -> bool:
        # While the exact search serves every row, building an ANN index would only compete with queries.
        if rows <= self._tuning.exact_search_rows:
            return False
        return rows >= self._tuning.ann_min_rows and rows >= self.ann_rows * self._tuning.ann_retrain_growth

    def _build_ann(self, rows: int) -> None:
        started = time.monotonic()
        self._table.build_ann(_partitions(rows))
        self.ann_rows = rows
        logger.info("built the ANN index over %d rows in %.0f s", rows, time.monotonic() - started)

    def _exact_due(self) -> bool:
        """Return True when the exact search should be (re)loaded; free it once the table outgrows it."""
        if 0 < self.rows <= self._tuning.exact_search_rows:
            return self._exact.current() is None
        if self.ann_rows == 0 and self._ann_due(self.rows) and self._exact.current() is not None:
            return False  # it serves on, past its size, until the ANN index being built can take over
        self._exact.drop()
        return False

    def load_exact_if_small(self) -> None:
        """Load the exact search now if the table fits it, even empty: the owner's writes then keep it current.

        Otherwise it would wait for the first upkeep, which runs when the indexer is idle: never during a long
        write burst, whose searches would all go to LanceDB's scans of a table in hundreds of fragments.
        """
        if self._tuning.exact_search_rows > 0 and self.rows <= self._tuning.exact_search_rows:
            self._load_exact(self.rows)

    def _load_exact(self, rows: int) -> None:
        started = time.monotonic()
        self._exact.load(self._table.read_all, rows)
        logger.info("loaded %d vector rows into the exact search in %.1f s", rows, time.monotonic() - started)
        # The table read is gone once loaded: hand its memory back.
        self._release_memory()


def _unchanged(exact: ExactSearch) -> None:
    """Change nothing: the commit moved no row."""


def _partitions(rows: int) -> int:
    """Return the IVF partitions for an index over `rows` rows."""
    return max(16, int(rows**0.5))
