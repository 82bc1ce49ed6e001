"""Long memories are embedded as overlapping windows and found by their best window."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent_memory.config import Settings
from agent_memory.embedding.chunking import MAX_CHUNKS, WINDOW_WORDS, chunks, plan, without_prefix
from agent_memory.index.indexer import table_name
from agent_memory.index.lance import LanceVectorIndex
from agent_memory.index.lance_table import table_rows
from agent_memory.index.protocol import VectorIndex, VectorRow, VectorScope
from agent_memory.recall.score import many_draws_bonus
from agent_memory.service import MemoryService
from agent_memory.store.protocol import VECTOR_TABLE_KEY
from agent_memory.store.sqlite import SQLiteStore
from tests.conftest import HashEmbedder, best_memories, open_ready, vector_table

pytestmark = pytest.mark.anyio

FILLER = "the committee reviewed several unrelated budget items during a long afternoon meeting".split()  # noqa: SIM905


class TruncatingEmbedder(HashEmbedder):
    """Word-presence vectors of the first 180 words only: like MiniLM, it never sees the end of a long text."""

    @property
    def name(self) -> str:
        return "hash-presence-truncating"

    def embed(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        seen = [" ".join(dict.fromkeys(w.strip(".,!?").lower() for w in t.split()[:180])) for t in texts]
        return super().embed(seen)


def _words(n: int, offset: int = 0) -> str:
    return " ".join(f"w{i + offset}" for i in range(n))


def test_a_short_memory_is_one_window_holding_exactly_its_text() -> None:
    text = "  Dentist on Tuesday,\n at 3pm!  "
    assert chunks(text) == [text]
    assert chunks(_words(WINDOW_WORDS)) == [_words(WINDOW_WORDS)]


def test_a_short_memory_of_several_sentences_is_also_embedded_sentence_by_sentence() -> None:
    text = "Can you suggest a tomato variety? By the way, I visited the Louvre on 2/8! It was lovely."
    assert chunks(text) == [
        text,
        "Can you suggest a tomato variety?",
        "By the way, I visited the Louvre on 2/8!",
        "It was lovely.",
    ]
    assert chunks("Version 2.5 ships Friday.") == ["Version 2.5 ships Friday."]  # a decimal point ends nothing
    many = " ".join(f"Fact {n}." for n in range(40))
    windows = chunks(many)
    assert len(windows) <= MAX_CHUNKS and windows[0] == many
    assert " ".join(windows[1:]) == many  # the sentences, joined evenly past the cap, still cover every word
    assert (
        chunks(_words(WINDOW_WORDS + 40) + ". Next.")[0] != _words(WINDOW_WORDS + 40) + ". Next."
    )  # long: word windows


async def test_a_fact_mentioned_in_passing_is_found_by_its_own_sentence(tmp_path: Path) -> None:
    # One vector for the whole message mostly says what the message is about; the aside needs its own.
    aside = (
        "I need help planning the vegetable garden layout for spring with raised beds, drip irrigation, compost"
        " bins, trellises for cucumbers and beans, and a shady corner for lettuce and herbs near the shed."
        " By the way, my sister Emma did adopt a dog."
    )
    settings = Settings(data_dir=tmp_path / "d", model_wait_seconds=30)
    service = await MemoryService.open(settings, HashEmbedder())
    try:
        target = (await service.remember(aside)).id
        for text in ["My sister Emma loves the bakery downtown", "Which bakery did Emma like?"]:
            await service.remember(text)
        assert await service.wait_indexed(30) is None
        nearest = await service.recall("which dog did my sister Emma adopt", limit=3, mode="vector")
        assert not nearest.degraded and nearest.hits[0].id == target
    finally:
        await service.close()


def test_long_text_windows_are_full_length_overlap_and_cover_every_word() -> None:
    text = _words(400)
    windows = chunks(text, window=160, overlap=32)
    assert len(windows) == 3
    assert all(len(w.split()) == 160 for w in windows)
    assert windows[0].split()[0] == "w0" and windows[-1].split()[-1] == "w399"
    covered = {word for w in windows for word in w.split()}
    assert covered == set(text.split())
    for left, right in itertools.pairwise(windows):
        assert set(left.split()) & set(right.split())  # neighbours overlap: no sentence is only ever cut


def test_windows_keep_the_original_spacing_and_punctuation() -> None:
    text = "First line.\n\n" + " ".join(["word,"] * 200) + "\tLast line!"
    windows = chunks(text, window=50, overlap=10)
    assert text.startswith(windows[0]) and text.endswith(windows[-1])
    assert all(w in text for w in windows)


def test_a_huge_memory_is_capped_and_sampled_from_start_to_end() -> None:
    text = _words(5000)
    windows = chunks(text)
    assert len(windows) == MAX_CHUNKS
    assert windows[0].startswith("w0 ") and windows[-1].endswith("w4999")


async def test_a_fact_at_the_end_of_a_long_memory_is_found_by_vector_search(tmp_path: Path) -> None:
    # The embedder reads 180 words: without windows the last sentence never reaches the vector index.
    long_text = " ".join(FILLER * 40) + " Finally, my passport number renewal is due in March."
    settings = Settings(data_dir=tmp_path / "d", model_wait_seconds=30)
    service = await MemoryService.open(settings, TruncatingEmbedder())
    try:
        long_id = (await service.remember(long_text)).id
        for n in range(20):
            await service.remember(f"note {n}: passport photos and due dates for the garden club")
        assert await service.wait_indexed(30) is None
        assert (await service.index_status()).memories == 21  # memories, not windows
        # Vector search alone (recall would also weigh the long memory's length against it).
        query = TruncatingEmbedder().embed(["passport number renewal due in March"])[0]
        vectors = await vector_table(service, TruncatingEmbedder.dim)
        assert best_memories(vectors, query, 5)[0][0] == long_id

        await service.forget(long_id)
        after = (await vector_table(service, TruncatingEmbedder.dim)).search(
            query, VectorScope("default", "default"), 200
        )
        assert long_id not in {hit.id for hit in after}  # every window went with the memory
    finally:
        await service.close()


def _row(memory: str, chunk: int, windows: int, x: float, y: float) -> VectorRow:
    vector = np.array([x, y], dtype=np.float32)
    return VectorRow(memory, "u", "n", "s", 1.0, vector / np.linalg.norm(vector), chunk, windows)


def _search(index: VectorIndex, x: float, y: float) -> list[tuple[str, float]]:
    return best_memories(index, np.array([x, y], dtype=np.float32), 5, user="u", namespace="n")


def test_search_scores_a_memory_by_its_best_window(tmp_path: Path) -> None:
    index = LanceVectorIndex(tmp_path / "v", "t", 2)
    index.upsert([_row("long", 0, 2, 0.0, 1.0), _row("long", 1, 2, 1.0, 0.0), _row("short", 0, 1, 0.8, 0.6)])
    index.upsert([_row("long", 1, 2, 1.0, 0.0)])  # a retried batch replaces, never duplicates
    hits = _search(index, 1.0, 0.0)
    assert [i for i, _ in hits] == ["long", "short"]
    assert hits[0][1] == pytest.approx(1.0 - many_draws_bonus(2), abs=1e-5)
    assert index.count() == 2


def test_a_long_memory_does_not_outrank_an_equally_close_short_one_for_being_long(tmp_path: Path) -> None:
    index = LanceVectorIndex(tmp_path / "v", "t", 2)
    # Same best similarity; the long memory only had more windows to draw it from.
    index.upsert([_row("long", n, 4, 0.6, 0.8) for n in range(4)] + [_row("short", 0, 1, 0.6, 0.8)])
    assert [i for i, _ in _search(index, 0.6, 0.8)] == ["short", "long"]
    assert many_draws_bonus(1) == 0.0 < many_draws_bonus(2) < many_draws_bonus(4) < many_draws_bonus(12) < 0.2


async def test_an_index_with_an_older_row_layout_is_rebuilt_and_dropped(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", model_wait_seconds=30)
    settings.data_dir.mkdir(parents=True)
    store = await SQLiteStore.open(settings.sqlite_path)
    service = await open_ready(settings, store=store)
    try:
        stored = await service.remember("the spare key is under the blue flowerpot")
        assert await service.wait_indexed(30) is None
        # Pretend this data dir was indexed by a release with another layout.
        await store.set_value(VECTOR_TABLE_KEY, "memories_old_layout")
        stale = LanceVectorIndex(settings.vector_dir, "memories_old_layout", HashEmbedder.dim)
        stale.upsert([VectorRow("x", "u", "n", "s", 1.0, np.ones(HashEmbedder.dim, dtype=np.float32) / 8)])
    finally:
        await service.close()

    again = await open_ready(settings)
    try:
        status = await again.index_status()
        assert status.table == table_name("hash-bow", HashEmbedder.dim) and status.memories == 1
        with pytest.raises(ValueError):  # dropped
            table_rows(settings.vector_location, "memories_old_layout")
        assert (await again.recall("where is the spare key")).hits[0].id == stored.id
    finally:
        await again.close()


def test_a_chat_turn_is_embedded_without_its_time_and_speaker() -> None:
    turn = "[1:56 pm on 8 May, 2023] Kate: We finally booked the cabin by the lake. It has a sauna."
    assert plan(turn) == [
        ("We finally booked the cabin by the lake. It has a sauna.", [(0, 40), (41, 56)]),
    ]
    assert without_prefix("[2023-05-08] Kate: ") == "[2023-05-08] Kate: "  # nothing but the prefix: keep it
    assert without_prefix("Plain note without a speaker") == "Plain note without a speaker"
