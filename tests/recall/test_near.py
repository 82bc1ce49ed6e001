"""recall/near.py prefer_current: the newer of two close statements first, the older flagged only when very close."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from agent_memory.embedding.pooling import Vectors
from agent_memory.errors import BackendError
from agent_memory.models import Memory
from agent_memory.recall import near


def _memory(memory_id: str, content: str, day: str) -> Memory:
    return Memory(id=memory_id, content=content, role="user", namespace="default", session_id="s", created_at=day)


def _vector(cosine: float) -> list[float]:
    """A unit vector at `cosine` to (1, 0, 0)."""
    return [cosine, float(np.sqrt(1 - cosine**2)), 0.0]


def _embed(vectors: dict[str, list[float]]) -> near.Embed:
    async def embed(memories: Sequence[Memory]) -> Vectors:
        return np.asarray([vectors.get(m.content, [0.0, 0.0, 1.0]) for m in memories], dtype=np.float32)

    return embed


OLD = _memory("old", "I live in Lisbon with my partner.", "2024-01-01T00:00:00+00:00")
OTHER = _memory("other", "The deploy script lives in tools/deploy.sh.", "2024-02-01T00:00:00+00:00")
NEW = _memory("new", "We moved to Porto last month.", "2024-06-01T00:00:00+00:00")


def _ranked(*memories: Memory) -> near.Ranked:
    return [(1.0 - n / 10, m) for n, m in enumerate(memories)]


async def _order(ranked: near.Ranked, cosine: float, limit: int = 5) -> tuple[list[str], dict[str, str]]:
    embed = _embed({OLD.content: [1.0, 0.0, 0.0], NEW.content: _vector(cosine)})
    order, flagged = await near.prefer_current(ranked, embed, limit)
    return [m.id for _, m in order], flagged


@pytest.mark.anyio
async def test_a_newer_statement_close_to_a_top_hit_moves_just_above_it_and_flags_it_only_when_very_close() -> None:
    ranked = _ranked(OLD, OTHER, NEW)
    assert await _order(ranked, 0.4) == (["new", "old", "other"], {})
    assert await _order(ranked, 0.6) == (["new", "old", "other"], {"old": "new"})
    assert await _order(ranked, 0.2) == (["old", "other", "new"], {})  # unrelated: left as ranked


@pytest.mark.anyio
async def test_the_newer_already_above_stays_and_the_older_is_still_flagged() -> None:
    assert await _order(_ranked(NEW, OTHER, OLD), 0.6) == (["new", "other", "old"], {"old": "new"})


@pytest.mark.anyio
async def test_same_day_long_and_question_memories_are_left_as_ranked() -> None:
    same_day = NEW.model_copy(update={"created_at": "2024-01-01T08:00:00+00:00"})
    assert await _order(_ranked(OLD, OTHER, same_day), 0.9) == (["old", "other", "new"], {})
    for content in (NEW.content + " x" * near.FACT_CHARS, "Did we move to Porto last month?"):
        changed = NEW.model_copy(update={"content": content})
        embed = _embed({OLD.content: [1.0, 0.0, 0.0], content: [1.0, 0.0, 0.0]})
        order, flagged = await near.prefer_current(_ranked(OLD, OTHER, changed), embed, 5)
        assert [m.id for _, m in order] == ["old", "other", "new"] and flagged == {}, content


@pytest.mark.anyio
async def test_only_the_order_of_the_hits_changes_never_which_are_returned() -> None:
    fillers = [_memory(f"f{n}", f"filler {n}", "2023-01-01T00:00:00+00:00") for n in range(3)]
    ids, flagged = await _order(_ranked(OLD, *fillers, NEW), 0.9, limit=4)
    assert ids == ["old", "f0", "f1", "f2"] and flagged == {}  # the newer statement was not among the hits
    assert await _order(_ranked(OTHER, OLD, NEW), 0.9, limit=2) == (["other", "old"], {})


@pytest.mark.anyio
async def test_a_failing_model_leaves_the_ranking_as_it_is() -> None:
    async def broken(texts: Sequence[str]) -> Vectors:
        raise BackendError("model gone")

    ranked = _ranked(OLD, OTHER, NEW)
    assert await near.prefer_current(ranked, broken, 5) == (ranked, {})
    assert await near.prefer_current(ranked, broken, 2) == (ranked[:2], {})
