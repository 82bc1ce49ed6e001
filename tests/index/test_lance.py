"""Search speed: compaction keeps fragments bounded, the ANN index keeps answers findable, queries are cached."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent_memory.config import load_settings
from agent_memory.embedding.half import half_product
from agent_memory.embedding.host import ModelHost
from agent_memory.index import exact
from agent_memory.index.exact import numpy_product
from agent_memory.index.lance import LanceVectorIndex
from agent_memory.index.protocol import VectorHit, VectorRow, VectorScope
from agent_memory.index.tuning import IndexTuning
from agent_memory.service import MemoryService
from tests.conftest import HashEmbedder

DIM = 32


def _rows(start: int, n: int, *, session: str = "s1", seed: int = 0) -> list[VectorRow]:
    rng = np.random.default_rng(seed + start)
    out = []
    for i in range(start, start + n):
        v = rng.standard_normal(DIM).astype(np.float32)
        out.append(VectorRow(f"m{i}", "u", "default", session, float(i), v / np.linalg.norm(v)))
    return out


def _scored(index: LanceVectorIndex, vector: np.ndarray[Any, np.dtype[np.float32]], **kw: Any) -> list[VectorHit]:
    return index.search(vector, VectorScope(**{"user": "u", "namespace": "default", **kw}), 10)


def _search(index: LanceVectorIndex, vector: np.ndarray[Any, np.dtype[np.float32]], **kw: Any) -> list[str]:
    return [hit.id for hit in _scored(index, vector, **kw)]


def test_many_single_adds_are_compacted_into_few_fragments(tmp_path: Path) -> None:
    index = LanceVectorIndex(tmp_path, "t", DIM, tuning=IndexTuning(compact_every=50))
    for row in _rows(0, 300):
        index.upsert([row])
        if index.needs_upkeep():
            index.maintain()
    index.maintain(compact=True)
    fragments = index.describe().fragments
    assert fragments <= 2, fragments
    assert index.count() == 300


def test_ann_index_is_built_past_the_threshold_and_still_finds_exact_and_newer_rows(tmp_path: Path) -> None:
    # No exact search in memory: searches go to LanceDB.
    index = LanceVectorIndex(tmp_path, "t", DIM, tuning=IndexTuning(ann_min_rows=600, exact_search_rows=0))
    rows = _rows(0, 700)
    index.upsert(rows[:300])
    assert not index.needs_upkeep() or index.maintain() is None
    assert index.describe().ann_rows == 0
    index.upsert(rows[300:])
    assert index.needs_upkeep()
    index.maintain()
    assert index.describe().ann_rows == 700
    assert LanceVectorIndex(tmp_path, "t", DIM).describe().ann_rows == 700  # in the table, as a new handle sees
    assert not index.needs_upkeep()
    # Refine re-ranks with full vectors, so a stored vector is its own nearest neighbour.
    for row in rows[::70]:
        assert _search(index, row.vector)[0] == row.id
    # Rows added after the build are searched too (LanceDB scans fragments the index does not cover).
    late = _rows(5000, 3, session="late", seed=1)
    index.upsert(late)
    assert _search(index, late[0].vector)[0] == late[0].id
    # A narrow filter still gets every match, not only those in the probed partitions.
    assert sorted(_search(index, late[1].vector, session_id="late")) == sorted(r.id for r in late)
    # So does a search among some memories (a recall reading its candidates' neighbours), far or near.
    chosen = frozenset({"m3", "m404", "m699"})
    assert sorted(_search(index, late[1].vector, ids=chosen)) == sorted(chosen)


def test_ann_index_is_retrained_when_the_table_has_doubled(tmp_path: Path) -> None:
    index = LanceVectorIndex(tmp_path, "t", DIM, tuning=IndexTuning(ann_min_rows=300, exact_search_rows=0))
    index.upsert(_rows(0, 300))
    index.maintain()
    assert index.describe().ann_rows == 300
    index.upsert(_rows(300, 299))
    assert not index.needs_upkeep()
    index.upsert(_rows(599, 1))
    assert index.needs_upkeep()
    index.maintain()
    assert index.describe().ann_rows == 600


class CountingEmbedder(HashEmbedder):
    """A HashEmbedder that counts the texts it embeds."""

    def __init__(self) -> None:
        self.embedded: list[str] = []
        self.calls: list[int] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        self.embedded.extend(texts)
        self.calls.append(len(texts))
        return super().embed(texts)


@pytest.mark.anyio
async def test_a_repeated_query_is_embedded_once_and_the_cache_stays_bounded() -> None:
    embedder = CountingEmbedder()
    model = ModelHost(embedder, query_cache_size=2)
    model.start()
    assert await model.wait(10)
    first = await model.embed_query("what do I prefer?")
    again = await model.embed_query("what do I prefer?")
    assert embedder.embedded == ["what do I prefer?"]
    assert np.array_equal(first, again)
    await model.embed_query("b")
    await model.embed_query("c")  # evicts the least recently used: "what do I prefer?"
    await model.embed_query("what do I prefer?")
    assert embedder.embedded == ["what do I prefer?", "b", "c", "what do I prefer?"]


@pytest.mark.anyio
async def test_documents_are_embedded_in_slices_of_similar_length_and_returned_in_order() -> None:
    embedder = CountingEmbedder()
    model = ModelHost(embedder)
    model.start()
    assert await model.wait(10)
    texts = [f"memory {i} " + "about topic " * (i * 7 % 11) for i in range(40)]
    vectors = await model.embed(texts)
    assert np.array_equal(vectors, HashEmbedder().embed(texts))
    # Each slice is padded to its longest text, so the slices hold texts of similar length.
    assert embedder.embedded == sorted(texts, key=len)
    assert embedder.calls == [16, 16, 8]  # the model lock is released between slices, so a query can go first
    assert (await model.embed([])).shape == (0, HashEmbedder.dim)


def _varied_rows(n: int) -> list[VectorRow]:
    """Rows over two users, two namespaces, three sessions, spread in time, some with several windows."""
    rng = np.random.default_rng(7)
    rows = []
    for i in range(n):
        windows = 3 if i % 5 == 0 else 1
        for chunk in range(windows):
            v = rng.standard_normal(DIM).astype(np.float32)
            rows.append(
                VectorRow(
                    f"m{i}",
                    "u" if i % 4 else "other",
                    "default" if i % 3 else "work",
                    f"s{i % 3}",
                    float(i),
                    v / np.linalg.norm(v),
                    chunk=chunk,
                    windows=windows,
                )
            )
    return rows


FILTERS: list[dict[str, Any]] = [
    {},
    {"namespace": "work"},
    {"user": "other"},
    {"session_id": "s1"},
    {"since_ts": 100.0, "until_ts": 250.0},
    {"user": "nobody"},
    {"ids": frozenset({"m1", "m5", "m10", "m12", "m399", "gone"})},  # some memories only, windows included
]


def _scanned(tmp_path: Path) -> LanceVectorIndex:
    """Return another handle on the table that never loads the exact search: it searches in LanceDB."""
    return LanceVectorIndex(tmp_path, "t", DIM, tuning=IndexTuning(exact_search_rows=0))


@pytest.mark.parametrize("gather_rows", [0, exact._GATHER_ROWS])  # the float16 product first, or rows scored directly
def test_exact_search_returns_what_lancedb_exact_search_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gather_rows: int
) -> None:
    monkeypatch.setattr(exact, "_GATHER_ROWS", gather_rows)
    index = LanceVectorIndex(tmp_path, "t", DIM, product=half_product)
    index.upsert(_varied_rows(400))
    index.maintain()
    assert index.describe().exact_search_current
    queries = np.random.default_rng(1).standard_normal((10, DIM)).astype(np.float32)
    in_memory = [_scored(index, q, **f) for q in queries for f in FILTERS]
    scanning = _scanned(tmp_path)
    assert not scanning.describe().exact_search_current
    scanned = [_scored(scanning, q, **f) for q in queries for f in FILTERS]
    assert any(in_memory)
    assert any(hit.windows == 3 for hits in in_memory for hit in hits)  # a memory's windows come as rows of their own
    _same_ranking(in_memory, scanned)


def test_the_float16_product_scores_rows_like_the_numpy_one() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((301, DIM))
    unit = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float16)
    rows, query = unit[:300], unit[300]
    # Both score the same float16 inputs; they differ only in the precision of the sums.
    assert np.allclose(half_product(rows, query), numpy_product(rows, query), atol=1e-3)


# The exact search holds float16 vectors: its similarities are within ~1e-4 of float32 ones at 32 dimensions
# (~3e-5 at MiniLM's 384), so two rows closer than that may swap places.
CLOSE = 2e-4


def _same_ranking(mine: list[list[VectorHit]], exact: list[list[VectorHit]]) -> None:
    """Assert two lists of results rank alike, up to the swaps of rows whose similarities are within CLOSE."""
    assert [len(r) for r in mine] == [len(r) for r in exact]
    for ours, theirs in zip(mine, exact, strict=True):
        assert np.allclose([h.similarity for h in ours], [h.similarity for h in theirs], atol=CLOSE)
        for hit in ours:
            twins = [h for h in theirs if h.id == hit.id and abs(h.similarity - hit.similarity) < CLOSE]
            # Either the same row is there, or ours is in the top k only by a near-tie at the cut.
            assert twins or hit.similarity < theirs[-1].similarity + CLOSE
    # Swaps are the exception: most result lists are identical.
    same = sum([h.id for h in a] == [h.id for h in b] for a, b in zip(mine, exact, strict=True))
    assert same >= 0.9 * len(mine)


def test_own_writes_keep_the_exact_search_current(tmp_path: Path) -> None:
    index = LanceVectorIndex(tmp_path, "t", DIM)
    rows = _rows(0, 50)
    index.upsert(rows[:40])
    index.maintain()
    loaded = index.describe()
    assert loaded.exact_search_current
    assert loaded.exact_search_capacity >= 50  # loaded with room for a quarter more rows
    assert loaded.exact_search_bytes == loaded.exact_search_capacity * DIM * 2  # float16
    index.upsert(rows[40:])  # new rows
    index.upsert([VectorRow("m0", "u", "default", "s1", 0.0, rows[45].vector)])  # m0 now points where m45 does
    index.delete(["m1"])
    state = index.describe()
    assert state.exact_search_current and state.exact_search_rows == 49
    assert state.exact_search_capacity == loaded.exact_search_capacity  # the new rows went into that room
    assert _search(index, rows[45].vector)[:2] in (["m45", "m0"], ["m0", "m45"])
    assert "m1" not in _search(index, rows[1].vector)
    assert _search(index, rows[49].vector)[0] == "m49"


def test_another_writer_makes_the_exact_search_stale_until_upkeep_reloads_it(tmp_path: Path) -> None:
    index = LanceVectorIndex(tmp_path, "t", DIM)
    rows = _rows(0, 31)
    index.upsert(rows[:30])
    index.maintain()
    assert index.describe().exact_search_current
    LanceVectorIndex(tmp_path, "t", DIM).upsert(rows[30:])  # another process
    index.refresh()  # what READ_CONSISTENCY does within a second
    assert not index.describe().exact_search_current and index.needs_upkeep()
    assert _search(index, rows[30].vector)[0] == "m30"  # answered by LanceDB meanwhile
    index.maintain()
    assert index.describe().exact_search_current
    assert _search(index, rows[30].vector)[0] == "m30"


def test_a_table_past_the_exact_search_rows_is_searched_in_lancedb(tmp_path: Path) -> None:
    index = LanceVectorIndex(tmp_path, "t", DIM, tuning=IndexTuning(exact_search_rows=40))
    rows = _rows(0, 60)
    index.upsert(rows[:30])
    index.maintain()
    assert index.describe().exact_search_current
    index.upsert(rows[30:])
    assert not index.needs_upkeep() or index.maintain() is None
    assert not index.describe().exact_search_current
    assert _search(index, rows[55].vector)[0] == "m55"


def test_searches_running_alongside_writes_see_whole_rows(tmp_path: Path) -> None:
    index = LanceVectorIndex(tmp_path, "t", DIM, product=half_product)
    rows = _rows(0, 60)
    index.upsert(rows[:40])
    index.maintain()
    assert index.describe().exact_search_current
    errors: list[BaseException] = []
    done = threading.Event()

    def search() -> None:
        try:
            while not done.is_set():
                for row in rows[:5]:
                    # m0..m4 never change: each is always its own vector's nearest, at similarity 1.
                    best = _scored(index, row.vector)[0]
                    assert best.id == row.id and best.similarity > 0.999, best
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)

    reader = threading.Thread(target=search)
    reader.start()
    try:
        for n in range(40, 60):  # new rows grow the arrays; replacements rewrite rows in place
            index.upsert([rows[n], VectorRow(f"m{n - 30}", "u", "default", "s1", 0.0, rows[n].vector)])
    finally:
        done.set()
        reader.join(timeout=60)
    assert not reader.is_alive() and not errors, errors
    assert index.describe().exact_search_current


def test_no_ann_index_is_built_while_the_exact_search_holds_every_row(tmp_path: Path) -> None:
    tuning = IndexTuning(ann_min_rows=100, exact_search_rows=300)
    index = LanceVectorIndex(tmp_path, "t", DIM, tuning=tuning, product=half_product)
    rows = _rows(0, 400)
    index.upsert(rows[:300])
    index.maintain()
    state = index.describe()
    assert state.ann_rows == 0 and state.exact_search_current and not index.needs_upkeep()
    # Past its size the exact search keeps answering (own writes follow it) until the ANN index takes over.
    index.upsert(rows[300:])
    assert index.describe().exact_search_current
    assert _search(index, rows[350].vector)[0] == "m350"
    assert index.needs_upkeep()
    index.maintain()
    state = index.describe()
    assert state.ann_rows == 400 and not state.exact_search_current
    queries = np.random.default_rng(5).standard_normal((5, DIM)).astype(np.float32)
    assert all(_search(index, row.vector)[0] == row.id for row in rows[::50])
    scope = VectorScope("u", "default")
    exact = [index.search(q, scope, 10, exact=True) for q in queries]  # LanceDB's exact scan
    assert all(len(hits) == 10 for hits in exact)


@pytest.mark.anyio
async def test_exact_search_rows_setting_sizes_the_exact_search(tmp_path: Path) -> None:
    settings = load_settings({"AGENT_MEMORY_DATA_DIR": str(tmp_path), "AGENT_MEMORY_EXACT_SEARCH_ROWS": "0"})
    service = await MemoryService.open(settings, HashEmbedder())
    try:
        stored = await service.remember("The spare key is under the blue flowerpot")
        assert await service.wait_indexed(30) is None and await service.settle(60)
        status = await service.index_status()
        assert status.open and not status.exact_search
        found = await service.recall("where is the spare key")
        assert found.mode == "hybrid" and found.hits[0].id == stored.id  # answered by LanceDB
    finally:
        await service.close()
    on = await MemoryService.open(load_settings({"AGENT_MEMORY_DATA_DIR": str(tmp_path)}), HashEmbedder())
    try:
        assert await on.wait_indexed(30) is None and await on.settle(60)
        assert (await on.index_status()).exact_search
    finally:
        await on.close()


@pytest.mark.parametrize("bound", [1 << 20, None])
def test_lancedb_caches_stay_within_their_bound_over_many_commits(tmp_path: Path, bound: int | None) -> None:
    # Every upsert is a table version; LanceDB's default caches (GBs) keep each one's metadata.
    tuning = IndexTuning() if bound is None else IndexTuning(index_cache_bytes=bound, metadata_cache_bytes=bound)
    index = LanceVectorIndex(tmp_path, "t", DIM, tuning=tuning)
    for row in _varied_rows(60):
        index.upsert([row])
        index.search(row.vector, VectorScope(row.user, None), 3)
    cached = index.describe().cache_bytes
    if bound is None:
        assert cached > 3 << 20  # what the bound is for: the default keeps growing
    else:
        assert 0 < cached <= 2 * bound


def test_a_new_table_is_searched_in_memory_from_its_first_write(tmp_path: Path) -> None:
    # No upkeep runs during a long write burst (the indexer is never idle): the exact search must not wait for it.
    index = LanceVectorIndex(tmp_path, "t", DIM)
    assert index.describe().exact_search_current
    for row in _varied_rows(40):
        index.upsert([row])
    state = index.describe()
    assert state.exact_search_current and state.exact_search_rows == state.rows > 40
    reopened = LanceVectorIndex(tmp_path, "t", DIM)  # the next session: loaded at open, not at the first upkeep
    assert reopened.describe().exact_search_rows == state.rows
    never = LanceVectorIndex(tmp_path, "t", DIM, tuning=IndexTuning(exact_search_rows=0))
    assert not never.describe().exact_search_rows
