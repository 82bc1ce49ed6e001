"""Bulk filling of pgvector on a real Postgres: rows loaded without the HNSW index, which is built once after."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from agent_memory.config import Settings
from agent_memory.index import pgvector_bulk
from agent_memory.index.backends import open_vector_index
from agent_memory.index.pgvector import PgVectorIndex
from agent_memory.index.protocol import VectorRow, VectorScope
from agent_memory.models import NewMemory

DIM = 32
TABLE = "bulk_vectors"


def _vectors(n: int, seed: int = 3) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(4, n // 50), DIM)).astype(np.float32)
    points = centres[rng.integers(0, len(centres), n)] + 0.5 * rng.standard_normal((n, DIM)).astype(np.float32)
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def _rows(matrix: np.ndarray[Any, Any], lo: int, hi: int) -> list[VectorRow]:
    return [VectorRow(f"m{i}", f"u{i % 3}", "ns", "s", float(i), matrix[i]) for i in range(lo, hi)]


def _fill(index: PgVectorIndex, matrix: np.ndarray[Any, Any], lo: int, hi: int, batch: int = 500) -> None:
    for start in range(lo, hi, batch):
        index.upsert(_rows(matrix, start, min(hi, start + batch)))


def _exact(matrix: np.ndarray[Any, Any], query: np.ndarray[Any, Any], user: int, k: int = 10) -> set[str]:
    mine = np.flatnonzero(np.arange(len(matrix)) % 3 == user)
    return {f"m{mine[j]}" for j in np.argsort(-(matrix[mine] @ query))[:k]}


def _table_facts(url: str) -> tuple[int, int, bool]:
    """Return the table's rows, its distinct keys, and whether an unfiltered nearest search uses the HNSW index."""
    with psycopg.connect(url) as conn:
        rows, keys = conn.execute(f"SELECT count(*), count(DISTINCT key) FROM {TABLE}").fetchone() or (0, 0)
        plan = conn.execute(
            f"EXPLAIN SELECT key FROM {TABLE} ORDER BY embedding <=> (SELECT embedding FROM {TABLE} LIMIT 1) LIMIT 5"
        ).fetchall()
    return int(rows), int(keys), any(f"{TABLE}_hnsw" in line[0] for line in plan)


@pytest.fixture
def index(postgres_url: str) -> Iterator[PgVectorIndex]:
    vectors = PgVectorIndex(postgres_url, TABLE, DIM)
    yield vectors
    vectors.close()


def test_a_large_backlog_loads_without_the_hnsw_index_and_builds_it_after(
    postgres_url: str, index: PgVectorIndex
) -> None:
    n = 3000
    matrix = _vectors(n)
    assert index.ann_state() == "valid"  # a new table has it
    assert not index.prepare_bulk(900, minimum=1000)  # too small a backlog: rows go through the index
    assert index.prepare_bulk(n, minimum=1000)
    assert index.ann_state() == "absent" and index.needs_upkeep()
    _fill(index, matrix, 0, n)
    queries = _vectors(20, seed=11)
    for q, query in enumerate(queries):  # meanwhile searches answer, by an exact scan
        assert {h.id for h in index.search(query, VectorScope(f"u{q % 3}", "ns"), 10)} == _exact(matrix, query, q % 3)
    assert index.describe().ann_rows == 0
    index.maintain()  # upkeep builds it
    assert index.ann_state() == "valid" and not index.needs_upkeep()
    assert _table_facts(postgres_url) == (n, n, True)
    assert index.count() == n and index.describe().ann_rows == n
    agreement = [
        len(_exact(matrix, query, q % 3) & {h.id for h in index.search(query, VectorScope(f"u{q % 3}", "ns"), 10)}) / 10
        for q, query in enumerate(queries)
    ]
    assert float(np.mean(agreement)) >= 0.95
    assert not index.build_ann()  # already there: nothing to build


def test_the_index_stays_when_the_backlog_is_small_against_the_table(index: PgVectorIndex) -> None:
    _fill(index, _vectors(1200), 0, 1200)
    assert not index.prepare_bulk(1000, minimum=500)  # 1,000 new against 1,200 held: inserting them pays
    assert index.ann_state() == "valid"
    assert index.prepare_bulk(1300, minimum=500)
    assert index.ann_state() == "absent"


def test_two_servers_build_the_index_once_and_lose_no_row_written_meanwhile(postgres_url: str) -> None:
    n, late = 2400, 1200
    matrix = _vectors(n + late)
    first, second = PgVectorIndex(postgres_url, TABLE, DIM), PgVectorIndex(postgres_url, TABLE, DIM)
    try:
        assert first.prepare_bulk(n, minimum=1000)
        both = threading.Thread(target=_fill, args=(second, matrix, n // 2, n))
        both.start()
        _fill(first, matrix, 0, n // 2)
        both.join(60)
        start = threading.Barrier(3, timeout=30)
        built: list[bool] = []

        def build(index: PgVectorIndex) -> None:
            start.wait()
            built.append(index.build_ann())

        def write_late() -> None:
            start.wait()
            _fill(second, matrix, n, n + late, batch=100)  # while the builds run

        threads = [threading.Thread(target=build, args=(i,)) for i in (first, second)]
        threads.append(threading.Thread(target=write_late))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert sorted(built) == [False, True]  # one server built it; the other found it locked or done
        assert _table_facts(postgres_url) == (n + late, n + late, True)
        # Each late row is in the HNSW graph: an index scan for its own vector finds it first.
        with psycopg.connect(postgres_url) as conn:
            conn.execute("SET enable_seqscan = off")
            for i in range(n, n + late, 97):
                query = f"SELECT id FROM {TABLE} ORDER BY embedding <=> %s::vector LIMIT 1"
                assert conn.execute(query, (str(matrix[i].tolist()),)).fetchone() == (f"m{i}",)
    finally:
        first.close()
        second.close()


def test_a_build_in_progress_is_neither_dropped_nor_repeated_and_a_dead_one_is_redone(
    postgres_url: str, index: PgVectorIndex
) -> None:
    _fill(index, _vectors(600), 0, 600)
    assert index.prepare_bulk(600, minimum=100)
    lock = "SELECT pg_advisory_lock(hashtextextended(%s, 0))"
    with psycopg.connect(postgres_url, autocommit=True) as builder:  # another server, building
        builder.execute(lock, (f"agent-memory-hnsw:{TABLE}",))
        assert not index.build_ann() and index.ann_state() == "absent"
        assert not index.prepare_bulk(10_000, minimum=100)
        index.maintain()  # upkeep leaves it to the other server
        assert index.ann_state() == "absent"
    # That server died mid-build (its lock went with it) and left the index invalid: it is dropped and redone.
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        pgvector_bulk.create_hnsw(conn, TABLE)
        conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", (f"{TABLE}_hnsw",))
    assert index.ann_state() == "invalid" and index.needs_upkeep()
    assert index.build_ann()
    assert index.ann_state() == "valid"


def test_build_memory_grows_with_the_table_within_bounds() -> None:
    assert pgvector_bulk.build_memory_mb(0, 384) == 64
    assert 250 < pgvector_bulk.build_memory_mb(100_000, 384) < 400
    assert pgvector_bulk.build_memory_mb(10_000_000, 384) == 1024
    assert pgvector_bulk.build_memory_mb(1_000_000, 384, 4096) == pgvector_bulk.build_memory_mb(1_000_000, 384, None)
    # Measured: a build with 1,024 MB ran out of room at 441k 384-d rows (2.43 KB a row).
    assert pgvector_bulk.build_memory_mb(441_036, 384, None) * (1 << 20) > 441_036 * 2_434


def test_a_build_past_the_configured_memory_warns_and_still_builds(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=Path("/nonexistent"), database_url=postgres_url, pg_build_memory_mb=64)
    index = open_vector_index(settings, TABLE, DIM)
    try:
        assert isinstance(index, PgVectorIndex)
        _fill(index, _vectors(2_000), 0, 2_000)
        assert index.prepare_bulk(2_000, minimum=1)
        with caplog.at_level("WARNING", logger="agent_memory.index.pgvector_bulk"):
            assert index.build_ann()
        assert "AGENT_MEMORY_PG_BUILD_MEMORY_MB is 64" in caplog.text
        assert index.ann_state() == "valid"
    finally:
        index.close()


@pytest.mark.anyio
async def test_a_reindex_of_a_large_store_goes_the_bulk_way(
    postgres_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import HashEmbedder, open_ready

    url = postgres_server.create()  # a migrated database: the store and its vectors
    monkeypatch.setattr(pgvector_bulk, "BULK_MIN_ROWS", 200)
    bulk: list[bool] = []
    prepare = PgVectorIndex.prepare_bulk

    def spy(self: PgVectorIndex, backlog: int, minimum: int | None = None) -> bool:
        bulk.append(prepare(self, backlog, minimum))
        return bulk[-1]

    monkeypatch.setattr(PgVectorIndex, "prepare_bulk", spy)
    settings = Settings(data_dir=tmp_path / "data", model_wait_seconds=30, database_url=url)
    service = await open_ready(settings, HashEmbedder())
    try:
        topics = ["garden", "taxes", "bicycle", "kitchen", "holiday", "invoice"]
        items = [NewMemory(content=f"{topics[i % 6]} note {i} about the {topics[i * 5 % 6]} plan") for i in range(400)]
        await service.remember_many(items)
        vectors = service._indexer.vectors
        assert isinstance(vectors, PgVectorIndex)
        # 400 pending after start-up against an empty table: the reindex drops the index and builds it after.
        total, problem = await service.reindex()
        assert (total, problem) == (400, None)
        assert bulk == [False, True]  # at start-up nothing was pending; the reindex went the bulk way
        assert vectors.ann_state() == "valid" and vectors.count() == 400
        found = await service.recall("garden note 6 about the garden plan", mode="vector")
        assert found.hits and "garden" in found.hits[0].content
    finally:
        await service.close()
