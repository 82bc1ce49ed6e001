"""Seeding a large store fast: real memory rows, synthetic vectors written by the service's own indexer.

Embedding 100k memories with the real model takes hours on the bench machine, so `seed` opens the service with
`SyntheticEmbedder`: it carries the real model's name and width (the server finds the same vector table and has
nothing left to embed) and gives each text a unit vector around one of `CENTRES` fixed random centres chosen by a
hash of the text, so neighbours are uneven as real embeddings' are. Queries are still embedded by the real model.

pgvector: filling HNSW row by row runs at about 50 rows/s here, so the HNSW index is dropped before the fill and
built once after it (the same name and definition as `PgVectorIndex` creates; the server's CREATE INDEX IF NOT
EXISTS then finds it).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from agent_memory.config import Settings
from agent_memory.embedding.embedder import ModelEmbedder
from agent_memory.index.indexer import table_name
from agent_memory.index.pgvector import PgVectorIndex
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


def _hnsw(database: str, name: str, make: bool) -> float:
    """Drop the table's HNSW index, or build it (as PgVectorIndex defines it); return the seconds it took."""
    index = sql.Identifier(f"{name}_hnsw")
    command = (
        sql.SQL("CREATE INDEX IF NOT EXISTS {i} ON {t} USING hnsw (embedding vector_cosine_ops)").format(
            i=index, t=sql.Identifier(name)
        )
        if make
        else sql.SQL("DROP INDEX IF EXISTS {i}").format(i=index)
    )
    start = time.perf_counter()
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute(command)
        conn.execute(sql.SQL("ANALYZE {t}").format(t=sql.Identifier(name)))
    return time.perf_counter() - start


async def seed(settings: Settings, memories: int, text: Callable[[int], str]) -> dict[str, float]:
    """Store `memories` real rows and index them with synthetic vectors; return the seconds each step took."""
    embedder = SyntheticEmbedder(ModelEmbedder.from_settings(settings).name)
    name = table_name(embedder.name, DIM)
    database = settings.database_url
    physical = ""
    if database:
        index = PgVectorIndex(database, name, DIM)  # the table and its indexes, as a server creates them
        physical = index.table
        index.close()
        _hnsw(database, physical, make=False)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    service = await MemoryService.open(settings, embedder)
    try:
        for lo in range(0, memories, 2000):
            await service.remember_many([NewMemory(content=text(n)) for n in range(lo, min(lo + 2000, memories))])
        timings["store_s"] = round(time.perf_counter() - start, 1)
        problem = await service.wait_indexed(7200)
        assert problem is None, problem
        await service.settle()
        timings["index_fill_s"] = round(time.perf_counter() - start - timings["store_s"], 1)
    finally:
        await service.close()
    if database:
        timings["hnsw_build_s"] = round(_hnsw(database, physical, make=True), 1)
    return timings
