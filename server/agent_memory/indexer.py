"""Background indexing: keeps the LanceDB index in step with SQLite.

Every committed memory starts with `indexed = 0`. Once the model is loaded, this task embeds pending rows
in batches, upserts them by id and marks them indexed. Because the upsert is idempotent and the flag is
set only after it, a crash at any point leaves rows pending, and the next run (this process's loop, or
the next start-up's catch-up pass) indexes them. The same path rebuilds a lost index.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from typing import TYPE_CHECKING

from agent_memory.config import Settings
from agent_memory.embedder import BackgroundModel
from agent_memory.store.buffer import Buffer

if TYPE_CHECKING:
    from agent_memory.store.vectors import VectorIndex

logger = logging.getLogger(__name__)

BATCH = 64


def table_name(model_name: str, dim: int) -> str:
    """Return the vector table for a model: switching models builds a new index instead of mixing spaces."""
    slug = re.sub(r"[^a-z0-9]+", "_", model_name.lower()).strip("_")[-40:]
    digest = hashlib.sha1(model_name.encode()).hexdigest()[:8]
    return f"memories_{slug}_{digest}_{dim}"


class Indexer:
    """Owns the vector index and the task that fills it."""

    def __init__(self, settings: Settings, buffer: Buffer, model: BackgroundModel) -> None:
        self._settings = settings
        self._buffer = buffer
        self._model = model
        self.vectors: VectorIndex | None = None
        self.error: str | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self.ready = asyncio.Event()  # set once the index is open (or failed to open)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the background task."""
        self._task = asyncio.create_task(self._run(), name="agent-memory-indexer")

    async def stop(self) -> None:
        """Cancel the task; pending rows stay pending for the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def notify(self) -> None:
        """Tell the task new rows are pending."""
        self._idle.clear()
        self._wake.set()

    async def drain(self, timeout: float) -> bool:
        """Wait (bounded) until the index is open and nothing is pending; return whether it caught up."""
        try:
            async with asyncio.timeout(timeout):
                await self.ready.wait()
                if self.vectors is None:
                    return False
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        if not await self._model.wait():
            self.ready.set()
            return
        assert self._model.dim is not None
        try:
            await self._open(self._model.dim)
        except OSError as exc:
            self.error = f"vector index unavailable at {self._settings.vector_dir}: {exc}"
            logger.error("%s", self.error)
            return
        finally:
            self.ready.set()
        while True:
            self._wake.clear()
            done = await self.index_pending()
            if done == 0:
                self._idle.set()
                await self._wake.wait()

    async def _open(self, dim: int) -> None:
        from agent_memory.store.vectors import VectorIndex

        name = table_name(self._model.embedder.name, dim)
        self.vectors = await asyncio.to_thread(VectorIndex, self._settings.vector_dir, name, dim)
        known = await self._buffer.get_value("vector_table")
        in_index = await asyncio.to_thread(self.vectors.count)
        marked = await self._buffer.count_indexed()
        if known != name or in_index < marked:
            # A new model, or an index deleted or damaged behind our back: rebuild from SQLite.
            reset = await self._buffer.mark_all_pending()
            await self._buffer.set_value("vector_table", name)
            if reset:
                logger.warning("vector index %s is behind SQLite; re-indexing %d memories", name, reset)

    async def index_pending(self, batch: int = BATCH) -> int:
        """Index one batch of pending rows; return how many were indexed."""
        from agent_memory.store.vectors import VectorRow

        assert self.vectors is not None
        rows = await self._buffer.pending(batch)
        if not rows:
            return 0
        vectors = await self._model.embed([r.content for r in rows])
        batch_rows = [
            VectorRow(r.id, r.user, r.namespace, r.session_id, r.created_ts, vectors[i]) for i, r in enumerate(rows)
        ]
        await asyncio.to_thread(self.vectors.upsert, batch_rows)
        await self._buffer.mark_indexed([r.id for r in rows])
        return len(rows)

    async def reindex_all(self) -> int:
        """Re-embed every memory (used by `agent-memory reindex`); return how many."""
        total = await self._buffer.mark_all_pending()
        self.notify()
        return total
