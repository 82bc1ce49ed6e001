"""The operator's use cases, part of the service: search status, wait for the index, rebuild it, count, page, settle."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from agent_memory import diagnostics
from agent_memory.config import Settings
from agent_memory.embedding.host import ModelHost, ModelState
from agent_memory.errors import InvalidInput
from agent_memory.index.indexer import Indexer
from agent_memory.models import IndexStatus, Memory, SearchState, SearchStatus, Stats
from agent_memory.store.protocol import VECTOR_TABLE_KEY, MemoryStore

# Indexing that makes no progress for this long is reported as stuck instead of waited for.
STALL_SECONDS = 600.0
# How often a wait checks progress (and reports it).
POLL_SECONDS = 0.5

Progress = Callable[[int, int], None]


class Operations:
    """Operator methods of MemoryService (which provides the attributes below)."""

    settings: Settings
    _store: MemoryStore
    _model: ModelHost
    _indexer: Indexer

    def status(self) -> SearchStatus:
        """Return the state of semantic search, with a sentence saying what it means when it is not ready."""
        if self._model.state is ModelState.LOADING:
            message = "The embedding model is still loading; semantic search starts when it is ready."
            return SearchStatus(state=SearchState.LOADING, message=message)
        if self._model.state is ModelState.FAILED:
            return SearchStatus(state=SearchState.OFF, message=f"Semantic search is off: {self._model.error}")
        error = self._indexer.error
        if error and self._indexer.vectors is None:
            return SearchStatus(state=SearchState.OFF, message=f"Semantic search is off: {error}.")
        if error:
            message = f"The vector index is behind: {error}. Memories it does not hold yet are found by keyword only."
            return SearchStatus(state=SearchState.BEHIND, message=message)
        return SearchStatus(state=SearchState.READY)

    async def wait_index_open(self, timeout: float | None = None) -> bool:
        """Wait (bounded) until the model has loaded and the vector index is open; return whether it is."""
        if not await self._model.wait(timeout):
            return False
        try:
            async with asyncio.timeout(timeout):
                await self._indexer.ready.wait()
        except TimeoutError:
            return False
        return self._indexer.vectors is not None

    async def wait_indexed(self, timeout: float | None = None, progress: Progress | None = None) -> str | None:
        """Wait until every pending memory is indexed, reporting (done, total); return the problem if it cannot be."""
        if not await self._model.wait(timeout):
            return self._model.error or "the embedding model is still loading"
        total = await self._store.count_pending()
        deadline = None if timeout is None else time.monotonic() + timeout
        last_change, done = time.monotonic(), 0
        while True:
            drained = await self._indexer.drain(POLL_SECONDS)
            current = total - await self._store.count_pending()
            if drained and current >= total:
                break
            if drained:  # idle with rows pending: written by another process, or a wake-up it missed
                self._indexer.notify()
            if self._indexer.ready.is_set() and self._indexer.vectors is None:
                return self._indexer.error or "the vector index could not be opened"
            if self._indexer.error:  # the indexer retries with backoff; drain answers at once meanwhile
                await asyncio.sleep(POLL_SECONDS)
            now = time.monotonic()
            if deadline is not None and now > deadline:
                return "indexing is still running; the rest is indexed later"
            if current != done:
                done, last_change = current, now
            elif now - last_change > STALL_SECONDS:
                return "indexing made no progress; run `agent-memory doctor`"
            if progress is not None:
                progress(current, total)
        if progress is not None:
            progress(total, total)
        return None

    async def reindex(self, progress: Progress | None = None) -> tuple[int, str | None]:
        """Re-embed every memory into the vector index and compact it; return how many and the problem, if any."""
        if not await self._model.wait():
            raise InvalidInput(self._model.error or "the embedding model did not load")
        await self._indexer.ready.wait()
        await self._indexer.reindex_all()
        total = await self._store.count_scope(None, None)  # all of them, even if a lost index marked them already
        problem = await self.wait_indexed(progress=progress)
        if problem is None and not await self._indexer.settle():
            problem = self._indexer.error or "the vector index could not be compacted"
        return total, problem

    async def settle(self, timeout: float = 3600.0) -> bool:
        """Wait (bounded) until nothing is pending and index upkeep is done (benchmarks, tests)."""
        return await self._indexer.settle(timeout)

    async def stats(self) -> Stats:
        """Count memories per user, namespace and role, the index state and the disk use."""
        return await diagnostics.stats(self.settings, self._store)

    async def export_page(
        self, *, user: str | None, namespace: str | None, after: int, limit: int
    ) -> list[tuple[int, str, Memory]]:
        """Return (position, user, memory) after `after` in insertion order, optionally within a scope."""
        return await self._store.export_page(user, namespace, after, limit)

    async def count_memories(self, *, user: str | None = None, namespace: str | None = None) -> int:
        """Count memories of every user, or of one user and/or namespace."""
        return await self._store.count_scope(user, namespace)

    async def count_pending(self) -> int:
        """Count memories not yet in the vector index."""
        return await self._store.count_pending()

    async def index_status(self) -> IndexStatus:
        """Return the vector index's state: open or not, its table, what it holds and what waits."""
        vectors = self._indexer.vectors
        memories = None if vectors is None else await asyncio.to_thread(vectors.count)
        state = None if vectors is None else await asyncio.to_thread(vectors.describe)
        return IndexStatus(
            open=vectors is not None,
            table=await self._store.get_value(VECTOR_TABLE_KEY),
            memories=memories,
            pending=await self._store.count_pending(),
            error=self._indexer.error,
            exact_search=state is not None and state.exact_search_current,
        )
