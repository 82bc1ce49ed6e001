"""The embedding model for async code: loaded on a daemon thread, embedding on worker threads a slice at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from functools import cache, partial
from typing import Any, TypeVar

import numpy as np

from agent_memory.embedding import malloc as heap
from agent_memory.embedding.chunking import Span, flatten
from agent_memory.embedding.embedder import (
    EMBED_SLICE,
    PART_SLICE,
    SLICE_TOKENS,
    ConcurrentQueries,
    Embedder,
    MeanPooler,
    TokenCounter,
    Vectors,
)
from agent_memory.embedding.pooling import slices
from agent_memory.errors import BackendError, ConfigError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How much lower the CPU priority of indexing is than the server's (a nice increment): on a busy machine a recall
# gets the cores first, and indexing the rest.
BACKGROUND_NICE = 10


class ModelState(StrEnum):
    """Where the background load stands."""

    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class ModelHost:
    """Loads an Embedder on a daemon thread and serves embeddings once ready."""

    def __init__(self, embedder: Embedder, query_cache_size: int = 256) -> None:
        self.embedder = embedder
        self.state = ModelState.LOADING
        self.error: str | None = None
        self.dim: int | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._cache_size = query_cache_size
        self._lock = threading.Lock()
        # Recalls take turns among themselves on the query lane (see embed_beside), beside any document slice.
        self._query_lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._waiters_lock = threading.Lock()

    def start(self) -> None:
        """Begin loading in the background; returns at once."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._load, name="agent-memory-model", daemon=True)
            self._thread.start()

    def disable(self, reason: str) -> None:
        """Never load: semantic search stays off for this process (CLI commands that need no model)."""
        self.error = reason
        self.state = ModelState.FAILED
        self._ready.set()

    def _load(self) -> None:
        try:
            self.dim = self.embedder.load()
            self.state = ModelState.READY
            logger.info("embedding model %s ready (dim %d)", self.embedder.name, self.dim)
        except ConfigError as exc:
            self.error = str(exc)
            self.state = ModelState.FAILED
            logger.error("%s", exc)
        # The loader thread is the outermost face of the load: whatever else it raises becomes a failed model.
        except Exception as exc:
            self.error = f"The embedding model failed to load: {type(exc).__name__}: {exc}"
            self.state = ModelState.FAILED
            logger.exception("the embedding model failed to load")
        finally:
            with self._waiters_lock:
                self._ready.set()
                waiters, self._waiters = self._waiters, []
            for loop, future in waiters:
                with contextlib.suppress(RuntimeError):  # that event loop is already closed
                    loop.call_soon_threadsafe(_settle, future)

    @property
    def ready(self) -> bool:
        """Return True once the model can embed."""
        return self.state is ModelState.READY

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until the load finished (either way); return whether the model is ready."""
        # A future settled by the loader thread, not a worker thread blocked on an Event: a blocked
        # worker would keep the interpreter from exiting until the model finished loading.
        with self._waiters_lock:
            if self._ready.is_set():
                return self.ready
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, future))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):  # not wait_for: see Indexer._wait_for_work
                await asyncio.shield(future)
        return self.ready

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed documents on a worker thread, a slice at a time, in the order given."""
        if not texts:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        out: Vectors | None = None
        for rows in await self._slices(texts):
            # The model lock is taken per slice, so other documents (and queries off the lane) wait for one slice.
            # One model, two cores: document slices take turns, so two batches do not thrash each other.
            part = await self._in_background(self._embed_under, self._lock, [texts[i] for i in rows])
            if out is None:
                out = np.empty((len(texts), part.shape[1]), dtype=np.float32)
            out[rows] = part
        assert out is not None
        return out

    async def embed_spans(self, texts: Sequence[str], spans: Sequence[Sequence[Span]]) -> list[Vectors]:
        """Embed texts and the spans covering them: per text, its vector then one per span (see chunking.plan).

        A model that pools by mean reads each span in a pass of its own and sums the text's vector from those
        passes, so each token is read once; any other model reads the text and each span (chunking.flatten).
        """
        embedder = self.embedder
        if not (isinstance(embedder, MeanPooler) and embedder.sums_tokens):
            return _regroup(await self.embed(flatten(texts, spans)), spans)
        parts = [text[a:b] for text, pairs in zip(texts, spans, strict=True) for a, b in pairs or [(0, len(text))]]
        sums: Vectors | None = None
        sizes = np.empty((len(parts), 1), dtype=np.float32)
        # All the parts of a batch sorted together: sentences of similar length share a slice, with little padding.
        for rows in await self._slices(parts, PART_SLICE):
            part_sums, sizes[rows] = await self._in_background(self._sums_locked, embedder, [parts[i] for i in rows])
            if sums is None:
                sums = np.empty((len(parts), part_sums.shape[1]), dtype=np.float32)
            sums[rows] = part_sums
        return [] if sums is None else _pool_parts(sums, sizes, spans)

    async def _slices(self, texts: Sequence[str], size: int = EMBED_SLICE) -> list[list[int]]:
        """Return the texts' indices in embedding order, cut into slices of similar length (see pooling.slices)."""
        order, tokens = list(range(len(texts))), None
        if len(texts) > 1:
            # A slice costs its longest text times its size (padding): slicing texts of similar length wastes little.
            tokens = await self._in_background(self._count_locked, texts)
            cost = tokens or [len(t) for t in texts]
            order.sort(key=cost.__getitem__)
        return slices(order, tokens, size if tokens else EMBED_SLICE, SLICE_TOKENS)

    async def embed_query(self, text: str) -> Vectors:
        """Embed one query, with a small cache for repeats."""
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached
        vector: Vectors = (await self.embed_beside([text]))[0]
        self._keep(text, vector)
        return vector

    async def embed_beside(self, texts: Sequence[str]) -> Vectors:
        """Embed a few texts for a recall beside any indexing slice (the query lane), or after it if the model must.

        A recall does not wait for the indexer's slice (up to 2,048 tokens): the bundled model on plain torch lets
        two threads embed at once, which slows indexing a little for a query's few milliseconds.
        """
        if isinstance(self.embedder, ConcurrentQueries) and self.embedder.embeds_concurrently:
            return await asyncio.to_thread(self._embed_under, self._query_lock, list(texts))
        return await self.embed(texts)

    async def embed_query_now(self, text: str) -> Vectors | None:
        """Embed one query only if the model is free this instant (or it is cached); None when it is busy.

        For callers that must answer at once (`remember`'s `similar`): an indexing slice holds the model for tens
        of milliseconds, and waiting behind it cost remember 2.5 -> 124 ms at p50.
        """
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        if self._lock.locked():  # skip the thread hop when it is plainly busy
            return None
        vector = await asyncio.to_thread(self._embed_if_free, text)
        if vector is not None:
            self._keep(text, vector)
        return vector

    async def _in_background(self, work: Callable[..., T], *args: Any) -> T:
        """Run blocking work on the documents' thread."""
        return await asyncio.get_running_loop().run_in_executor(_documents(), partial(work, *args))

    def _keep(self, text: str, vector: Vectors) -> None:
        self._cache[text] = vector
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _embed_if_free(self, text: str) -> Vectors | None:
        if not self._lock.acquire(blocking=False):
            return None
        try:
            with _failures():
                vector: Vectors = np.asarray(self.embedder.embed([text]), dtype=np.float32)[0]
            return vector
        finally:
            self._lock.release()

    async def release_memory(self) -> None:
        """Hand memory freed by finished embedding batches back to the OS (the server idles most of its life)."""
        await asyncio.to_thread(heap.trim)

    def _count_locked(self, texts: Sequence[str]) -> list[int] | None:
        """Return each text's tokens, or None if the embedder cannot count them."""
        if not isinstance(self.embedder, TokenCounter):
            return None
        with self._lock:  # the model's tokenizer is not shared between threads
            return self.embedder.token_counts(texts)

    def _embed_under(self, lock: threading.Lock, texts: Sequence[str]) -> Vectors:
        """Embed texts holding `lock`: the model's (document slices) or the query lane's."""
        with lock, _failures():
            return np.asarray(self.embedder.embed(texts), dtype=np.float32)

    def _sums_locked(self, embedder: MeanPooler, texts: Sequence[str]) -> tuple[Vectors, Vectors]:
        with self._lock, _failures():
            return embedder.token_sums(texts)


@cache
def _documents() -> ThreadPoolExecutor:
    """Return the one thread that embeds documents, at a lower CPU priority: queries and requests come first."""
    return ThreadPoolExecutor(1, thread_name_prefix="agent-memory-embed", initializer=lower_priority)


def lower_priority() -> None:
    """Lower the calling thread's CPU priority by BACKGROUND_NICE (Linux, where the nice value is per thread).

    The threads it starts inherit it, torch's worker threads included.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICE)


def _pool_parts(sums: Vectors, sizes: Vectors, spans: Sequence[Sequence[Span]]) -> list[Vectors]:
    """Return per text the mean of all its parts' tokens, then each part's own mean (mean pooling), normalised."""
    blocks, start = [], 0
    for pairs in spans:
        end = start + max(1, len(pairs))
        whole = sums[start:end].sum(axis=0, keepdims=True) / sizes[start:end].sum()
        pooled = np.concatenate([whole, sums[start:end] / sizes[start:end]]) if pairs else whole
        blocks.append((pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32))
        start = end
    return blocks


def _regroup(vectors: Vectors, spans: Sequence[Sequence[Span]]) -> list[Vectors]:
    """Split the vectors of `chunking.flatten`'s texts back into one block per text."""
    ends = np.cumsum([1 + len(s) for s in spans])
    return np.split(vectors, ends[:-1]) if len(spans) else []


@contextlib.contextmanager
def _failures() -> Iterator[None]:
    """Raise torch and tokenizer failures as BackendError."""
    try:
        yield
    except (RuntimeError, ValueError, OSError, MemoryError) as exc:
        raise BackendError(f"The embedding model failed: {exc}") from exc


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
