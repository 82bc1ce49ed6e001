"""A question about the speakers of a chat is embedded without their names (recall/pipeline.py)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import numpy as np
import pytest

from agent_memory.config import Settings
from agent_memory.embedding.pooling import Vectors
from agent_memory.recall import pipeline as recall
from agent_memory.recall.speakers import SpeakerHints
from agent_memory.store.protocol import MemoryStore
from agent_memory.store.rows import Filters, NewRow
from tests.conftest import open_store

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

CHAT = ["Kate: Hey Elise!", "Elise: Hi Kate, we played padel today.", "Kate: I love volleyball.", "Elise: Nice!"]


@dataclass
class _Recording:
    """A vector search that records the texts it embeds as queries and finds every turn alike."""

    queries: list[str] = field(default_factory=list)

    async def query_vector(self, text: str) -> Vectors | None:
        self.queries.append(text)
        return np.ones((1, 4), dtype=np.float32)

    async def embed_texts(self, texts: Sequence[str]) -> Vectors:
        return np.ones((len(texts), 4), dtype=np.float32) / 2

    async def nearest(
        self, vector: Vectors, user: str, filters: Filters, limit: int, ids: Collection[str] | None = None
    ) -> list[tuple[str, float, int]]:
        return [(f"t{n}", 0.5, 1) for n in range(len(CHAT)) if ids is None or f"t{n}" in ids][:limit]

    def notify(self) -> None:
        pass

    async def first_vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        return {}


START = datetime(2024, 5, 8, tzinfo=UTC)


async def _chat_store(settings: Settings) -> MemoryStore:
    """Return a store holding CHAT, one turn a minute from START, every turn indexed."""
    store = await open_store(settings)
    await store.insert_many(
        [
            NewRow(f"t{n}", "u", "default", "chat", "user", t, f"h{n}", [], {}, START + timedelta(minutes=n), True)
            for n, t in enumerate(CHAT)
        ]
    )
    return store


@pytest.mark.parametrize(
    ("query", "embedded"),
    [
        ("What games do Kate and Elise both play?", "What games do and both play?"),
        ("What does Kate play?", "What does play?"),
        ("What games do people play?", "What games do people play?"),
    ],
)
async def test_the_speakers_a_question_names_are_left_out_of_its_vector(
    settings: Settings, query: str, embedded: str
) -> None:
    store = await _chat_store(settings)
    try:
        vectors = _Recording()
        request = recall.Request(query, Filters(namespace="default"), 10, None, START + timedelta(days=1))
        outcome = await recall.run(store, "u", vectors, request)
        # Naming every speaker says nothing about which turn answers; it would only pull towards "Hey Elise!".
        assert vectors.queries[-1] == embedded
        assert outcome.semantic and len(outcome.hits) == len(CHAT)
    finally:
        await store.close()


async def test_speakers_met_before_are_left_out_of_the_first_embedding(settings: Settings) -> None:
    store = await _chat_store(settings)
    try:
        vectors, hints = _Recording(), SpeakerHints()
        ask = partial(recall.Request, filters=Filters(namespace="default"), limit=10, max_tokens=None, now=START)
        first = await recall.run(store, "u", vectors, ask("What games do Kate and Elise both play?"), hints)
        # The first time the names are only known once the keyword search ends: embedded again without them.
        assert vectors.queries == ["What games do Kate and Elise both play?", "What games do and both play?"]
        vectors.queries.clear()
        again = await recall.run(store, "u", vectors, ask("What games do Kate and Elise both play?"), hints)
        assert vectors.queries == ["What games do and both play?"]  # guessed from the last recall: once
        assert [h.id for h in again.hits] == [h.id for h in first.hits]
        vectors.queries.clear()
        # A wrong guess (a name that is no speaker here) is corrected: the text embedded last is the right one.
        hints.saw(["Games"])
        await recall.run(store, "u", vectors, ask("What games does Kate play?"), hints)
        assert vectors.queries == ["What does play?", "What games does play?"]
    finally:
        await store.close()


def test_speaker_hints_keep_the_newest_names_within_their_size() -> None:
    hints = SpeakerHints(size=2)
    hints.saw(["Kate", None, "Elise"])
    hints.saw(["Kate", "Sam"])
    assert hints.guess("Did Kate, Elise or Sam go?") == {"Kate", "Sam"}
