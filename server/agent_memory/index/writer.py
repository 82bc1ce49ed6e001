"""Writing embedded batches to the vector index and the store, one at a time, while the next batch is embedded."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from agent_memory.store.protocol import MemoryStore
from agent_memory.store.rows import PendingRow

if TYPE_CHECKING:
    from agent_memory.index.protocol import VectorIndex, VectorRow

logger = logging.getLogger(__name__)


class BatchWriter:
    """Upserts a batch's vectors, then marks its memories indexed, on a task of its own.

    The model reads the next batch meanwhile, so the two cores both work through a burst. One batch is in
    flight at a time: the next is handed over only once the previous one has landed (`wait`).
    """

    def __init__(self, store: MemoryStore, written: Callable[[], None]) -> None:
        self._store = store
        self._written = written  # called after each batch lands (wakes whoever waits for progress)
        self._task: asyncio.Task[None] | None = None
        self._ids: frozenset[str] = frozenset()

    @property
    def busy(self) -> frozenset[str]:
        """Return the ids of the memories being written: still pending in the store, but not to embed again."""
        return self._ids if self._task is not None else frozenset()

    def start(self, vectors: VectorIndex, rows: Sequence[PendingRow], batch_rows: Sequence[VectorRow]) -> None:
        """Start writing a batch; the previous one must have landed (`wait`)."""
        assert self._task is None, "a batch is still being written"
        self._ids = frozenset(r.id for r in rows)
        self._task = asyncio.create_task(self._write(vectors, [r.id for r in rows], batch_rows))

    async def wait(self) -> None:
        """Wait for the batch in flight, if any; its failure is raised here (its rows stay pending)."""
        task = self._task
        if task is None:
            return
        try:
            # Shielded: cancelling the caller (the indexer stopping) must not cut the write short (see `close`).
            await asyncio.shield(task)
        finally:
            if task.done():
                self._task = None

    async def close(self, timeout: float) -> None:
        """Let the batch in flight land (bounded), so its rows are marked; past the bound they stay pending."""
        task, self._task = self._task, None
        if task is None:
            return
        if not (await asyncio.wait({task}, timeout=timeout))[0]:
            task.cancel()  # the next start embeds its rows again: the upsert is keyed by id
            await asyncio.wait({task})
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            logger.warning("the last indexing batch was not written (%s); the next start indexes it", failure)

    async def _write(self, vectors: VectorIndex, ids: list[str], batch_rows: Sequence[VectorRow]) -> None:
        # The upsert first, the flag after it: a crash in between leaves the rows pending, and re-indexing them
        # replaces their vectors by id.
        await asyncio.to_thread(vectors.upsert, batch_rows)
        await self._store.mark_indexed(ids)
        # A memory forgotten while it was being embedded must not stay in the index as an orphan.
        gone = sorted(set(ids) - await self._store.existing_ids(ids))
        if gone:
            await asyncio.to_thread(vectors.delete, gone)
        self._written()
