"""Seeding a large store fast: real memory rows, synthetic vectors written by the service's own indexer.

Embedding 100k memories with the real model takes hours on the bench machine, so `seed` opens the service with
`SyntheticEmbedder`: it carries the real model's name and width (the server finds the same vector table and has
nothing left to embed) and gives each text a unit vector around one of `CENTRES` fixed random centres chosen by a
hash of the text, so neighbours are uneven as real embeddings' are. Queries are still embedded by the real model.

The rows are stored first with the model disabled (nothing is indexed meanwhile), then the service is opened again
with `SyntheticEmbedder` and finds every row pending: on pgvector that backlog (>= 5,000 and >= the table) takes
the server's own bulk path (index/pgvector_bulk.py: loaded without the HNSW index, which upkeep then builds once
with CREATE INDEX CONCURRENTLY), on LanceDB one batch after another and its IVF_PQ index built by upkeep. The
result times the store, the load and the build (`settle`) apart; `hnsw_index` confirms the index is there when
the recalls run.
"""

from __future__ import annotations

import hashlib
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import psycopg

from agent_memory.config import Settings
from agent_memory.embedding.embedder import ModelEmbedder
from agent_memory.index import indexer as indexer_module
from agent_memory.models import NewMemory
from agent_memory.service import MemoryService

DIM = 384
CENTRES = 500
_centres = np.random.default_rng(384).standard_normal((CENTRES, DIM)).astype(np.float32)


class SyntheticEmbedder:
    """The real model's name and width, clustered random vectors: real vector-search work, no model."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def name(self) -> str:
        """Return the real model's name, so the vector table is the one the server opens."""
        return self._name

    def load(self) -> int:
        """Return the width; nothing to load."""
        return DIM

    def embed(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Return a unit vector near a centre picked by the text's hash (the same text, the same vector)."""
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            rng = np.random.default_rng(seed)
            out[row] = _centres[seed % CENTRES] + 0.6 * rng.standard_normal(DIM)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def _hnsw_index(database: str) -> str:
    """Return the definition of the vector table's HNSW index ("" when there is none)."""
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexdef LIKE '%USING hnsw%'").fetchone()
    return str(row[0]) if row else ""


async def seed(
    settings: Settings, memories: int, text: Callable[[int], str], *, batch: int | None = None, stored: bool = False
) -> dict[str, Any]:
    """Store `memories` real rows, then index them with synthetic vectors; return the seconds each step took.

    `batch`: the indexer takes this many rows a batch instead of its 256 (the same rows, written the same way, in
    fewer calls: LanceDB's merge reads every key a call, so at 1M rows the server's batches grow quadratic).
    `stored`: the rows are in the store already (a data dir kept from a run stopped after storing them).
    """
    embedder = SyntheticEmbedder(ModelEmbedder.from_settings(settings).name)
    database = settings.database_url
    timings: dict[str, Any] = {}
    if not stored:
        timings |= await _store(settings, memories, text)
    if batch is not None:
        indexer_module.BATCH_CHARS = sys.maxsize  # the rows bound the batch, whatever their length
        indexer_module.Indexer.index_pending.__defaults__ = (batch,)
        timings["index_batch_rows"] = batch
    start = time.perf_counter()
    service = await MemoryService.open(settings, embedder)
    try:
        shown = [-1]

        def progress(done: int, total: int) -> None:
            if done // 50_000 != shown[0]:
                shown[0] = done // 50_000
                _progress("indexed", done, start)

        problem = await service.wait_indexed(4 * 3600, progress=progress)
        assert problem is None, problem
        timings["index_load_s"] = round(time.perf_counter() - start, 1)
        timings["load_avg_after_load"] = round(os.getloadavg()[0], 1)
        if database:
            timings["hnsw_before_build"] = _hnsw_index(database)
        built = time.perf_counter()
        assert await service.settle(4 * 3600)
        timings["index_build_s"] = round(time.perf_counter() - built, 1)
        timings["load_avg_after_build"] = round(os.getloadavg()[0], 1)
        timings["index_fill_s"] = round(time.perf_counter() - start, 1)
    finally:
        await service.close()
    timings["seed_max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    if database:
        timings["hnsw_index"] = _hnsw_index(database)
    return timings


async def _store(settings: Settings, memories: int, text: Callable[[int], str]) -> dict[str, Any]:
    """Store the rows with the model off (nothing indexed meanwhile); return the seconds it took."""
    start = time.perf_counter()
    service = await MemoryService.open(settings, without_model="seeding the bench: rows first")
    try:
        for lo in range(0, memories, 2000):
            await service.remember_many([NewMemory(content=text(n)) for n in range(lo, min(lo + 2000, memories))])
            if lo % 100_000 == 0:
                _progress("stored", lo, start)
    finally:
        await service.close()
    return {"store_s": round(time.perf_counter() - start, 1), "load_avg_after_store": round(os.getloadavg()[0], 1)}


def _progress(what: str, done: int, start: float) -> None:
    """Log how far the fill got (a 1M fill runs for many minutes)."""
    load = os.getloadavg()[0]
    print(f"{what} {done} after {time.perf_counter() - start:.0f} s (load {load:.1f})", file=sys.stderr, flush=True)
