"""Background indexing: keeps the LanceDB index in step with SQLite.

Every committed memory starts with `indexed = 0`. Once the model is loaded, this task embeds pending rows
in batches, upserts them by id and marks them indexed. Because the upsert is idempotent and the flag is
set only after it, a crash at any point leaves rows pending, and the next run (this process's loop, or
the next start-up's catch-up pass) indexes them. The same path rebuilds a lost index.

The task is supervised: an error from LanceDB or the embedder is recorded (the service reports it),
then the batch is retried with exponential backoff until it succeeds. A batch the model fails on is
embedded row by row, and a row that fails alone while others succeed is set aside (`indexed = -1`: found
by keyword, reported by `doctor`, retried by `reindex`), so one bad text never holds back the rest.

Other processes may write the same SQLite file, so the task also looks for pending rows every
`index_poll_seconds` and whenever a recall comes; two processes indexing the same row is harmless because
the upsert is keyed by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import threading
import time
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from agent_memory.config import Settings
from agent_memory.embedding import chunking
from agent_memory.embedding.host import ModelHost, ModelState, lower_priority
from agent_memory.embedding.pooling import Vectors
from agent_memory.errors import BackendError
from agent_memory.index.batches import BatchEmbedder, within_budget
from agent_memory.index.writer import BatchWriter
from agent_memory.store.protocol import VECTOR_TABLE_KEY, MemoryStore
from agent_memory.store.rows import Filters

if TYPE_CHECKING:
    from agent_memory.index.protocol import VectorIndex

logger = logging.getLogger(__name__)

# Rows per indexing batch, and characters the model reads for them at most (a long memory is read window by window):
# enough texts for ModelHost.embed to slice by length with little padding, one vector-table write per batch, and
# still a few seconds of work, so progress is marked (and a crash loses) no more than that. Sentences cost nothing
# apart: they are summed from their text's pass.
BATCH = 256
BATCH_CHARS = 131_072
# Backoff after a failed batch: doubles from the first delay up to the cap, so a broken index never spins.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0
STOP_UPKEEP_WAIT_SECONDS = 15.0
# Freed heap is handed back to the OS at least this often while a burst is being indexed (and when it ends).
TRIM_EVERY_SECONDS = 5.0
# How long recall waits for just-written memories to reach the vector index before answering anyway.
DRAIN_TIMEOUT = 2.0


def table_name(model_name: str, dim: int) -> str:
    """Return the vector table for a model and row layout: a change builds a new index instead of mixing."""
    slug = re.sub(r"[^a-z0-9]+", "_", model_name.lower()).strip("_")[-40:]
    digest = hashlib.sha1(model_name.encode()).hexdigest()[:8]
    return f"memories_{slug}_{digest}_{dim}_c{chunking.VERSION}"


class Indexer:
    """Owns the vector index and the task that fills it."""

    def __init__(self, settings: Settings, store: MemoryStore, model: ModelHost) -> None:
        self._settings = settings
        self._store = store
        self._model = model
        self._batches = BatchEmbedder(store, model)
        self._writer = BatchWriter(store, self._advance)  # writes a batch while the model reads the next
        self.vectors: VectorIndex | None = None
        self.error: str | None = None
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()  # set (and replaced) after every batch or failure
        self.ready = asyncio.Event()  # set once the index is open (or failed to open)
        self._task: asyncio.Task[None] | None = None
        self._upkeep: threading.Thread | None = None

    def start(self) -> None:
        """Start the background task."""
        self._task = asyncio.create_task(self._run(), name="agent-memory-indexer")

    async def stop(self) -> None:
        """Cancel the task; pending rows stay pending for the next start."""
        if self._task is not None:
            self._task.cancel()
            # Waits for the task without taking on its CancelledError, while a cancel of this call still
            # propagates (suppressing CancelledError around `await task` would swallow that too).
            await asyncio.wait({self._task})
        await self._writer.close(STOP_UPKEEP_WAIT_SECONDS)
        upkeep = self._upkeep
        if upkeep is not None and upkeep.is_alive():
            # A short compaction is let finish: an interpreter exiting under a thread inside LanceDB's native
            # code aborts the process. A long index build is left behind (its commit is atomic either way).
            await asyncio.to_thread(upkeep.join, STOP_UPKEEP_WAIT_SECONDS)
        close = getattr(self.vectors, "close", None)  # pgvector's connection pool; LanceDB holds none
        if close is not None:
            self.vectors = None
            await asyncio.to_thread(close)

    def notify(self) -> None:
        """Tell the task new rows are pending."""
        self._wake.set()

    async def drain(self, timeout: float) -> bool:
        """Wait (bounded) until every memory committed before this call is indexed; return whether it is.

        Only rows already committed count (by any process): under a steady stream of writes the index is
        never idle, and a recall must not wait for rows that arrive after it.
        """
        try:
            async with asyncio.timeout(timeout):
                await self.ready.wait()
                if self.vectors is None or self.error is not None:
                    return False  # failing: answer now instead of waiting for a retry
                target = await self._store.last_pending()
                if target is None:
                    return True
                self.notify()  # the rows may come from another process: this task never heard of them
                while True:
                    progress = self._progress
                    if self.error is not None:
                        return False
                    if not await self._store.pending_through(target):
                        return True
                    await progress.wait()
        except TimeoutError:
            return False

    async def query_vector(self, text: str) -> Vectors | None:
        """Return the query's embedding, or None when semantic search is unavailable."""
        wait = self._settings.model_wait_seconds
        # Opt-in: trade first-call latency for semantic results while the model loads.
        if self._model.state is ModelState.LOADING and wait > 0:
            await self._model.wait(wait)
        if self._model.ready and not self.ready.is_set():
            # The model just finished; the index opens right after it (a fraction of a second).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(wait, DRAIN_TIMEOUT)):
                    await self.ready.wait()
        if not self._model.ready or self.vectors is None:
            return None
        # Recall never waits for a backlog: what is not embedded yet is found by keyword (recall wakes this task
        # when it meets such rows, see `notify`).
        return await self._model.embed_query(text)

    async def embed_texts(self, texts: Sequence[str]) -> Vectors:
        """Embed a few memories' texts whole, as the index does without their windows, beside any indexing slice."""
        return await self._model.embed_beside([chunking.without_prefix(t) for t in texts])

    async def first_vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        """Return the index's vector of each memory's first window, for those it holds."""
        vectors = self.vectors
        if vectors is None or not ids:
            return {}
        return await asyncio.to_thread(vectors.first_vectors, ids)

    async def nearest(
        self, vector: Vectors, user: str, filters: Filters, limit: int, ids: Collection[str] | None = None
    ) -> list[tuple[str, float, int]]:
        """Return window rows (memory id, similarity, windows) nearest the vector within the filters (and `ids`)."""
        from agent_memory.index.protocol import VectorScope

        vectors = self.vectors
        if vectors is None:
            raise BackendError("The vector index is not open.")
        chosen = None if ids is None else frozenset(ids)
        scope = VectorScope(user, filters.namespace, filters.session_id, filters.since_ts, filters.until_ts, chosen)
        return list(await asyncio.to_thread(vectors.search, vector, scope, limit))  # VectorHits are such tuples

    async def _run(self) -> None:
        if not await self._model.wait():
            self.ready.set()
            return
        assert self._model.dim is not None
        delay = RETRY_FIRST_SECONDS
        trim, trimmed = False, time.monotonic()
        while True:
            self._wake.clear()
            try:
                if self.vectors is None:
                    await self._open(self._model.dim)
                self.ready.set()
                done = await self.index_pending()
            # The supervisor is the outermost face of background work: whatever a batch raises is recorded and retried.
            except Exception as exc:
                self._failed(exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            if self.error is not None:
                logger.warning("vector indexing recovered")
                self.error = None
            delay = RETRY_FIRST_SECONDS
            self._advance()
            if done:
                trim = True
                # During a long burst too: torch leaves each batch's activations in the C heap, where they add up.
                if time.monotonic() - trimmed >= TRIM_EVERY_SECONDS:
                    trim, trimmed = False, time.monotonic()
                    await self._model.release_memory()
            else:
                await self._start_upkeep_off_loop()
                if trim:  # a burst just ended: give its embedding memory back before sleeping
                    trim, trimmed = False, time.monotonic()
                    await self._model.release_memory()
                await self._wait_for_work()

    def _failed(self, exc: BaseException, delay: float) -> None:
        """Record an indexing failure where status() reports it; recall stops waiting for the index."""
        where = "opening the vector index" if self.vectors is None else "indexing"
        detail = " ".join(str(exc).split())[:240] or type(exc).__name__
        self.error = f"{where} failed ({type(exc).__name__}: {detail}); retrying in {delay:g} s"
        logger.warning("%s", self.error, exc_info=logger.isEnabledFor(logging.DEBUG))
        self.ready.set()
        self._advance()

    def _advance(self) -> None:
        """Wake every drain waiting for progress."""
        self._progress.set()
        self._progress = asyncio.Event()

    async def _wait_for_work(self) -> None:
        """Sleep until notified, or until the poll interval passes (rows written by other processes)."""
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that arrives as the event is
        # set, and this loop would then never stop (stop() waiting on it forever).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._settings.index_poll_seconds):
                await self._wake.wait()

    async def _start_upkeep_off_loop(self) -> None:
        """Start upkeep if due, asking the table whether it is on a thread (the question reads table files)."""
        vectors = self.vectors
        if vectors is None or (self._upkeep is not None and self._upkeep.is_alive()):
            return
        if await asyncio.to_thread(vectors.needs_upkeep):
            self._start_upkeep(compact=False, due=True)

    def _start_upkeep(self, *, compact: bool = False, due: bool = False) -> None:
        """Compact and index the vector table on a daemon thread: no tool waits for it, and exit never does."""
        vectors = self.vectors
        if vectors is None or (self._upkeep is not None and self._upkeep.is_alive()):
            return
        if compact or due or vectors.needs_upkeep():
            self._upkeep = threading.Thread(
                target=_maintain, args=(vectors, compact), name="agent-memory-upkeep", daemon=True
            )
            self._upkeep.start()

    async def settle(self, timeout: float = 3600.0) -> bool:
        """Wait (bounded) until nothing is pending and compaction and index builds are done (benchmarks, tests)."""
        deadline = time.monotonic() + timeout
        if not await self.drain(timeout):
            return False
        self._start_upkeep(compact=True)
        while self._upkeep is not None and self._upkeep.is_alive():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.to_thread(self._upkeep.join, min(remaining, 1.0))
        return True

    async def _open(self, dim: int) -> None:
        from agent_memory.index.backends import open_vector_index

        name = table_name(self._model.embedder.name, dim)
        # pgvector when the store is Postgres, else LanceDB (index/backends.py).
        vectors: VectorIndex = await asyncio.to_thread(open_vector_index, self._settings, name, dim)
        known = await self._store.get_value(VECTOR_TABLE_KEY)
        # Count marked rows first: another process marks rows only after upserting them, so the index
        # counted afterwards holds at least as many, and a busy neighbour does not look like a lost index.
        marked = await self._store.count_indexed()
        in_index = await asyncio.to_thread(vectors.count)
        if known != name or in_index < marked:
            # A new model, or an index deleted or damaged behind our back: rebuild from SQLite.
            reset = await self._store.mark_all_pending()
            await self._store.set_value(VECTOR_TABLE_KEY, name)
            if known is not None and known != name:
                # The old table is dead weight now: every row is being re-embedded into the new one.
                await asyncio.to_thread(vectors.drop_table, known)
            if reset:
                logger.warning("vector index %s is behind SQLite; re-indexing %d memories", name, reset)
        await _bulk_if_behind(vectors, self._store)
        self.vectors = vectors  # only now: a failed check above is retried from the start

    async def index_pending(self, batch: int = BATCH) -> int:
        """Embed one batch of pending rows while the previous batch is written; return how many were embedded.

        A batch is indexed once its write lands: during the next call, or in the call that finds nothing left
        (which waits for it), so a burst ends with every row written and marked.
        """
        assert self.vectors is not None
        busy = self._writer.busy
        pending = [r for r in await self._store.pending(batch + len(busy)) if r.id not in busy]
        rows = within_budget(pending[:batch], BATCH_CHARS)
        if not rows:
            await self._writer.wait()
            return 0
        rows, batch_rows = await self._batches.embed_or_set_aside(rows)
        await self._writer.wait()
        self._writer.start(self.vectors, rows, batch_rows)
        return len(rows)

    async def forget(self, ids: Sequence[str]) -> None:
        """Remove these memories' vectors, if the index is open (a row left behind is never returned by recall)."""
        if self.vectors is not None:
            await asyncio.to_thread(self.vectors.delete, list(ids))

    async def reindex_all(self) -> int:
        """Re-embed every memory (used by `agent-memory reindex`); return how many."""
        total = await self._store.mark_all_pending()
        if self.vectors is not None:
            await _bulk_if_behind(self.vectors, self._store)
        self.notify()
        return total


async def _bulk_if_behind(vectors: VectorIndex, store: MemoryStore) -> None:
    """On pgvector, let a large backlog load without the HNSW index (built by upkeep once it is in)."""
    prepare = getattr(vectors, "prepare_bulk", None)  # pgvector's: LanceDB builds its ANN index in upkeep anyway
    if prepare is not None:
        await asyncio.to_thread(prepare, await store.count_pending())


def _maintain(vectors: VectorIndex, compact: bool) -> None:
    lower_priority()  # compaction and index builds yield the cores to recalls
    try:
        vectors.maintain(compact=compact)
    except (OSError, RuntimeError, ValueError, BackendError) as exc:  # LanceDB's; the next idle moment retries
        logger.warning("vector index upkeep failed: %s", exc)
