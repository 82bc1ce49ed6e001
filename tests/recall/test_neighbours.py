"""A turn's vector score takes in a share of its neighbours' (recall/neighbours.py)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from agent_memory.config import Settings
from agent_memory.embedding.pooling import Vectors
from agent_memory.recall import neighbours
from agent_memory.recall import pipeline as recall
from agent_memory.store.rows import Filters, NewRow
from tests.conftest import open_store

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]


def test_chain_links_each_turn_to_the_turns_before_and_after_it() -> None:
    before, after = neighbours.chain({"c": ("a", "b", "d", "e"), "x": (None, None, "y", None)})
    assert before == {"c": "b", "b": "a", "d": "c", "x": None, "y": "x"}
    assert after == {"c": "d", "b": "c", "d": "e", "x": "y", "y": None}
    assert neighbours.related(before, after) == {"a", "b", "c", "d", "e", "x", "y"}


def test_a_short_answer_next_to_a_strong_question_overtakes_an_isolated_middling_turn() -> None:
    before, after = neighbours.chain({"answer": (None, "question", "thanks", None)})
    similarity = {"question": 0.8, "answer": 0.3, "thanks": 0.2, "fact": 0.4}
    raised = neighbours.propagate(similarity, before, after, share=0.3)
    assert raised["answer"] == pytest.approx(0.3 + 0.3 * (0.8 + 0.2) / 2)
    assert raised["answer"] > raised["fact"] / 1.3  # lifted more than its own share
    # A memory with no neighbours stands in for them: its order among such memories never changes.
    assert raised["fact"] == pytest.approx(0.4 * 1.3)
    # The edge of a session: the missing side counts as the turn itself.
    assert raised["question"] == pytest.approx(0.8 + 0.3 * (0.8 + 0.3) / 2)


def test_a_neighbour_not_yet_embedded_counts_as_the_turn_itself() -> None:
    before, after = neighbours.chain({"b": (None, "a", "c", None)})
    raised = neighbours.propagate({"b": 0.5}, before, after, share=0.3)
    assert raised == {"b": pytest.approx(0.5 * 1.3)}


@dataclass
class _Similarities:
    """A vector search whose similarities are given: nearest rows by a fixed table, honouring `ids`."""

    table: dict[str, float]

    async def query_vector(self, text: str) -> Vectors | None:
        return np.zeros((1, 4), dtype=np.float32)

    async def nearest(
        self, vector: Vectors, user: str, filters: Filters, limit: int, ids: Collection[str] | None = None
    ) -> list[tuple[str, float, int]]:
        rows = [(i, s, 1) for i, s in self.table.items() if ids is None or i in ids]
        return sorted(rows, key=lambda row: row[1], reverse=True)[:limit]


async def test_by_meaning_a_reply_is_ranked_with_the_question_it_answers(settings: Settings) -> None:
    store = await open_store(settings)
    try:
        start = datetime(2024, 5, 8, tzinfo=UTC)
        chat = ["Kate: where should we hike?", "Sam: Dolomites.", "Kate: ok", "Sam: yes", "Kate: fine", "Sam: bye"]
        rows = [
            NewRow(f"t{n}", "u", "default", "trip", "user", t, f"h{n}", [], {}, start + timedelta(minutes=n), True)
            for n, t in enumerate(chat)
        ]
        await store.insert_many(rows)
        # The reply says less like the question than the chatter; but it sits next to the question.
        vectors = _Similarities({"t0": 0.9, "t1": 0.1, **{f"t{n}": 0.15 for n in range(2, 6)}})
        searches = recall.Searches(store, "u", vectors, recall.Candidates(), pool=10)
        assert await searches.semantic(np.zeros((1, 4), dtype=np.float32), Filters(namespace="default"), None)
        ranking = searches.candidates.rankings[0]
        assert ranking.ids[:2] == ["t0", "t1"]
    finally:
        await store.close()
