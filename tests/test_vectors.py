"""Search speed: compaction keeps fragments bounded, the ANN index keeps answers findable, queries are cached."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent_memory.embedder import BackgroundModel
from agent_memory.store import vectors as vectors_module
from agent_memory.store.vectors import VectorIndex, VectorRow
from tests.conftest import HashEmbedder

DIM = 32


def _rows(start: int, n: int, *, session: str = "s1", seed: int = 0) -> list[VectorRow]:
    rng = np.random.default_rng(seed + start)
    out = []
    for i in range(start, start + n):
        v = rng.standard_normal(DIM).astype(np.float32)
        out.append(VectorRow(f"m{i}", "u", "default", session, float(i), v / np.linalg.norm(v)))
    return out


def _search(index: VectorIndex, vector: np.ndarray[Any, np.dtype[np.float32]], **kw: Any) -> list[str]:
    args: dict[str, Any] = {"user": "u", "namespace": "default", "session_id": None, "since_ts": None, "until_ts": None}
    args.update(kw)
    return [i for i, _ in index.search(vector, limit=10, **args)]


def test_many_single_adds_are_compacted_into_few_fragments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors_module, "COMPACT_EVERY", 50)
    index = VectorIndex(tmp_path, "t", DIM)
    for row in _rows(0, 300):
        index.upsert([row])
        if index.needs_upkeep():
            index.maintain()
    index.maintain(compact=True)
    fragments = index._table.stats()["fragment_stats"]["num_fragments"]
    assert fragments <= 2, fragments
    assert index.count() == 300


def test_ann_index_is_built_past_the_threshold_and_still_finds_exact_and_newer_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vectors_module, "ANN_MIN_ROWS", 600)
    index = VectorIndex(tmp_path, "t", DIM)
    rows = _rows(0, 700)
    index.upsert(rows[:300])
    assert not index.needs_upkeep() or index.maintain() is None
    assert not any(i.columns == ["vector"] for i in index._table.list_indices())
    index.upsert(rows[300:])
    assert index.needs_upkeep()
    index.maintain()
    assert any(i.columns == ["vector"] for i in index._table.list_indices())
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


def test_ann_index_is_retrained_when_the_table_has_doubled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors_module, "ANN_MIN_ROWS", 300)
    index = VectorIndex(tmp_path, "t", DIM)
    index.upsert(_rows(0, 300))
    index.maintain()
    assert index._ann_rows == 300
    index.upsert(_rows(300, 299))
    assert not index.needs_upkeep()
    index.upsert(_rows(599, 1))
    assert index.needs_upkeep()
    index.maintain()
    assert index._ann_rows == 600


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
    model = BackgroundModel(embedder, query_cache_size=2)
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
async def test_documents_are_embedded_in_slices_in_order() -> None:
    embedder = CountingEmbedder()
    model = BackgroundModel(embedder)
    model.start()
    assert await model.wait(10)
    texts = [f"memory number {i} about topic {i % 7}" for i in range(40)]
    vectors = await model.embed(texts)
    assert np.array_equal(vectors, HashEmbedder().embed(texts))
    assert embedder.embedded == texts
    assert embedder.calls == [16, 16, 8]  # the model lock is released between slices, so a query can go first
    assert (await model.embed([])).shape == (0, HashEmbedder.dim)
