"""Recall ranking: time expressions in the query, the service clock, and long memories with the real model."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent_memory.config import DEFAULT_MODEL, Settings
from agent_memory.embedding.embedder import ModelEmbedder
from agent_memory.models import NewMemory
from agent_memory.recall import near
from agent_memory.recall import pipeline as recall
from agent_memory.recall.score import length_prior, rrf
from agent_memory.recall.terms import search_terms
from agent_memory.recall.timeframe import find
from agent_memory.service import MemoryService
from tests.conftest import HashEmbedder, service_parts

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

NOW = datetime(2023, 5, 30, 17, 0, tzinfo=UTC)  # a Tuesday


def _day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "inside", "outside"),
    [
        ("what did I cook yesterday", "2023-05-29T19:00", "2023-05-27T19:00"),
        ("the day before yesterday", "2023-05-28T10:00", "2023-05-29T20:00"),
        ("what was I doing three weeks ago", "2023-05-09T10:00", "2023-05-25T10:00"),
        ("films I watched in the last 3 months", "2023-03-05T10:00", "2023-02-10T10:00"),
        ("museums I visited in the month of February", "2023-02-14T10:00", "2023-03-14T10:00"),
        ("what did we decide last week", "2023-05-24T10:00", "2023-05-16T10:00"),
        ("who called last Tuesday", "2023-05-23T15:00", "2023-05-30T10:00"),
        ("the trip in May 2022", "2022-05-20T10:00", "2023-05-20T10:00"),
        ("my appointment on March 3rd", "2023-03-03T09:00", "2023-03-06T09:00"),
        ("everything since January", "2023-01-20T10:00", "2022-12-20T10:00"),
        ("notes from 2021", "2021-06-01T10:00", "2022-06-01T10:00"),
    ],
)
def test_time_expressions_become_windows_around_the_right_dates(query: str, inside: str, outside: str) -> None:
    frame = find(query, NOW)
    assert frame is not None, query
    assert frame.start <= _day(inside) <= frame.end
    assert not frame.start <= _day(outside) <= frame.end


@pytest.mark.parametrize(
    "query",
    [
        "What should I serve for dinner this weekend?",  # the future: nothing remembered lies there
        "plans for next month",
        "you may 2 things",  # "may" the verb, not the month
        "I march on",
        "How many days ago did I meet Emma?",  # asks for a distance, names no time
        "What time do I wake up on Saturday mornings?",
    ],
)
def test_words_that_are_not_a_past_time_give_no_window(query: str) -> None:
    assert find(query, NOW) is None


def test_time_words_are_left_out_of_the_keyword_query() -> None:
    frame = find("which restaurant did I try last week", NOW)
    assert frame is not None
    assert search_terms("which restaurant did I try last week", frame.words) == ["restaurant", "try"]


async def _service(settings: Settings) -> MemoryService:
    service = await MemoryService.open(settings, HashEmbedder())
    service.clock = lambda: NOW
    return service


async def test_a_memory_from_the_time_the_query_names_ranks_first(settings: Settings) -> None:
    service = await _service(settings)
    try:
        old = await service.remember("We tried the new ramen restaurant downtown", created_at="2023-04-10T19:00:00Z")
        recent = await service.remember("We tried the new taco restaurant downtown", created_at="2023-05-29T19:00:00Z")
        early = await service.remember("We tried the new pizza restaurant downtown", created_at="2023-05-02T19:00:00Z")

        plain = await service.recall("which restaurant did we try", limit=3)
        assert plain.hits[0].id == recent.id  # without a time the newest breaks the tie

        for query, expected in [
            ("which restaurant did we try yesterday", recent.id),
            ("which restaurant did we try about four weeks ago", early.id),
            ("which restaurant did we try in April", old.id),
        ]:
            hits = (await service.recall(query, limit=3)).hits
            assert hits[0].id == expected, query
            assert len(hits) == 3  # a soft boost: memories from other times are still there
    finally:
        await service.close()


async def test_recency_is_measured_from_the_service_clock(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two versions of one fact: the newer-first rule (recall/near.py) would hand the newer the older's score.
    monkeypatch.setattr(near, "CURRENT_LIFT", 2.0)
    service = await _service(settings)
    try:
        first = await service.remember("Parking spot is level 2", created_at="2023-05-01T08:00:00Z")
        second = await service.remember("Parking spot is level 3", created_at="2023-05-29T08:00:00Z")
        assert await service.wait_indexed(30) is None  # both recalls search the same way
        hits = (await service.recall("parking spot level", limit=2)).hits
        assert {h.id for h in hits} == {second.id, first.id}
        # Seen from a clock long after both, neither is recent: each loses its recency lift, the newer one more.
        service.clock = lambda: NOW + timedelta(days=3650)
        later = {h.id: h.score for h in (await service.recall("parking spot level", limit=2)).hits}
        now = {h.id: h.score for h in hits}
        lost = {i: now[i] - later[i] for i in now}
        assert lost[second.id] > lost[first.id] > 0
    finally:
        await service.close()


async def test_a_time_window_ranking_equals_a_search_inside_the_window(settings: Settings) -> None:
    # Recall reuses the unwindowed candidates when they hold the whole window and searches again only when not:
    # either way the window's ranking must be what a search restricted to the window returns.
    settings = settings.with_overrides(model_wait_seconds=0)
    topics = ["garden", "tomatoes", "restaurant", "passport", "budget", "kitten"]
    async with service_parts(settings, HashEmbedder()) as parts:
        notes = []
        for day in range(120):
            when = NOW - timedelta(days=day, hours=1)
            text = f"note {day}: {topics[day % 6]} and {topics[(day * 5) % 6]} plans for day {day % 7}"
            notes.append(NewMemory(content=text, created_at=when.isoformat()))
        await parts.remember(*notes)
        assert await parts.indexer.drain(30)
        base = parts.filters()
        vector = await parts.model.embed_query("garden restaurant plans")
        terms = search_terms("garden restaurant plans")

        def searches() -> recall.Searches:
            return recall.Searches(parts.store, settings.user, parts.indexer, recall.Candidates(), pool=50)

        for days in (0, 1, 10, 60, 119):  # from a window inside the candidates to one far larger than the pool
            window = replace(base, since_ts=(NOW - timedelta(days=days + 0.5)).timestamp(), until_ts=NOW.timestamp())
            size = await parts.store.count_matching(settings.user, window)
            assert size == days + 1
            # Recall's searches rank twice, the second time inside the window; a search there ranks once.
            by_vector, in_window = searches(), searches()
            assert await by_vector.semantic(vector, base, (window, size))
            assert await in_window.semantic(vector, window, None)
            assert len(by_vector.candidates.rankings) == 2
            assert by_vector.candidates.rankings[1].ids == in_window.candidates.rankings[0].ids
            by_keyword, in_window = searches(), searches()
            await by_keyword.keywords(terms, base, (window, size))
            await in_window.keywords(terms, window, None)
            assert len(by_keyword.candidates.rankings) == 2
            assert by_keyword.candidates.rankings[1].ids == in_window.candidates.rankings[0].ids


async def test_a_time_window_that_holds_no_memory_changes_nothing(settings: Settings) -> None:
    service = await _service(settings)
    try:
        for n, topic in enumerate(["ramen", "taco", "pizza"]):
            await service.remember(f"We tried the new {topic} restaurant", created_at=f"2023-05-2{n}T19:00:00Z")
        assert await service.wait_indexed(30) is None  # both recalls search the same way
        plain = await service.recall("which restaurant did we try", limit=3)
        dated = await service.recall("which restaurant did we try in 2019", limit=3)
        assert [(h.id, h.score) for h in dated.hits] == [(h.id, h.score) for h in plain.hits]
    finally:
        await service.close()


@pytest.mark.e2e
async def test_real_model_finds_a_fact_at_the_end_of_a_long_answer(tmp_path: Path) -> None:
    # MiniLM reads 256 word pieces: without windows this memory's last paragraph would not be embedded at all.
    intro = (
        "Here is a detailed plan for your vegetable garden this season. Start by testing the soil pH and adding "
        "compost in early spring. Tomatoes need six to eight hours of direct sun, so place them on the south side. "
        "Water deeply twice a week rather than a little every day, and mulch to keep the roots cool. "
    )
    long_answer = intro * 6 + "Also, as you asked: your passport renewal appointment is at the embassy on Friday."
    distractors = [
        "I bought new hiking boots for the mountain trip.",
        "The quarterly budget review moved to Thursday afternoon.",
        "My sister recommended a thriller novel set in Oslo.",
        "Remember to renew the car insurance before it expires.",
        "We adopted a grey kitten from the shelter.",
    ]
    settings = Settings(data_dir=tmp_path / "d", model_wait_seconds=120)
    async with service_parts(settings, ModelEmbedder(DEFAULT_MODEL)) as parts:
        target, *_ = await parts.remember(
            NewMemory(content=long_answer, role="assistant"), *(NewMemory(content=t) for t in distractors)
        )
        assert await parts.model.wait(120) and await parts.indexer.drain(120)
        nearest = await parts.nearest("when is my passport appointment at the embassy", limit=3)
        assert nearest[0] == target


def test_length_prior_leaves_chat_sized_memories_alone_and_shrinks_slowly() -> None:
    assert length_prior(1) == length_prior(500) == 1.0
    assert 1.0 > length_prior(1000) > length_prior(2000) > length_prior(20_000) > 0.5
    assert length_prior(2000) == pytest.approx(0.81, abs=0.01)


def test_length_prior_turns_a_near_tie_toward_the_short_memory_but_not_a_clear_lead() -> None:
    def order(rankings: list[list[str]], chars: dict[str, int]) -> list[str]:
        fused = rrf(rankings)
        return sorted(fused, key=lambda i: fused[i] * length_prior(chars[i]), reverse=True)

    chars = {"long": 2400, "short": 80} | {f"x{n}": 2400 for n in range(40)}
    assert order([["long", "short"], ["long", "short"]], chars) == ["short", "long"]
    far = ["long", *(f"x{n}" for n in range(40)), "short"]
    assert order([far, far], chars)[0] == "long"
