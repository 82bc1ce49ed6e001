"""The web page's use cases on the service: pages, counts, one memory, edits and bulk forget, within one user."""

from __future__ import annotations

import pytest

from agent_memory.errors import InvalidInput, NotFound
from agent_memory.models import NewMemory
from agent_memory.service import MemoryService

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]


async def test_pages_walk_every_memory_newest_first_even_when_times_tie(service: MemoryService) -> None:
    items = [NewMemory(content=f"note {i}", created_at="2026-03-01T10:00:00Z") for i in range(7)]
    items += [NewMemory(content=f"later {i}", created_at=f"2026-03-0{2 + i}T10:00:00Z") for i in range(3)]
    await service.remember_many(items)
    seen, cursor = [], None
    while True:
        page = await service.browse(limit=3, cursor=cursor)
        assert page.total == 10
        seen += [m.content for m in page.memories]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen[:3] == ["later 2", "later 1", "later 0"]
    assert sorted(seen[3:]) == sorted(f"note {i}" for i in range(7)) and len(set(seen)) == 10
    days = await service.day_counts()
    assert [(d.day, d.count) for d in days] == [
        ("2026-03-04", 1),
        ("2026-03-03", 1),
        ("2026-03-02", 1),
        ("2026-03-01", 7),
    ]


async def test_filters_narrow_by_role_tags_session_and_time(service: MemoryService) -> None:
    await service.remember_many(
        [
            NewMemory(content="a fact", role="fact", tags=["x"], session_id="s1", created_at="2026-01-01T00:00:00Z"),
            NewMemory(content="a question", role="user", tags=["x", "y"], session_id="s2"),
            NewMemory(content="an answer", role="assistant", session_id="s2"),
        ]
    )

    async def contents(**filters: object) -> list[str]:
        return sorted(m.content for m in (await service.browse(**filters)).memories)  # type: ignore[arg-type]

    assert await contents(roles=["fact", "assistant"]) == ["a fact", "an answer"]
    assert await contents(tags=["x"]) == ["a fact", "a question"]
    assert await contents(session_id="s2") == ["a question", "an answer"]
    assert await contents(until="2026-06-01") == ["a fact"]
    with pytest.raises(InvalidInput, match="unknown role"):
        await service.browse(roles=["admin"])
    with pytest.raises(InvalidInput, match="cursor"):
        await service.browse(cursor="1:2:3")
    assert [(s.session_id, s.count) for s in await service.sessions()] == [("s2", 2), ("s1", 1)]
    assert (await service.sessions())[1].last_at == "2026-01-01T00:00:00Z"
    assert [(n.namespace, n.count) for n in await service.namespace_counts()] == [("default", 3)]


async def test_an_edit_supersedes_the_memory_and_keeps_everything_but_content_and_tags(service: MemoryService) -> None:
    old = await service.remember(
        "the code is 1234",
        role="fact",
        tags=["a"],
        session_id="s",
        namespace="work",
        metadata={"k": 1},
        created_at="2026-02-02T02:02:02Z",
    )
    new = await service.edit(old.id, content="the code is 9876", tags=["b", "c"])
    detail = await service.memory(new.id)
    memory = detail.memory
    assert (memory.content, memory.tags, memory.role) == ("the code is 9876", ["b", "c"], "fact")
    assert (memory.session_id, memory.namespace, memory.metadata) == ("s", "work", {"k": 1})
    # The old version is superseded, not deleted: it stays in the chain and leaves recall.
    kept = (await service.memory(old.id)).memory
    assert kept.content == "the code is 1234" and kept.superseded_by == new.id
    assert [h.id for h in (await service.recall("the code is", namespace="work")).hits] == [new.id]
    with pytest.raises(InvalidInput):
        await service.edit(new.id, content="   ", tags=[])
    assert (await service.memory(new.id)).memory.content == "the code is 9876"  # a rejected edit loses nothing


async def test_a_memory_shows_its_versions_oldest_first_from_any_of_them(service: MemoryService) -> None:
    first = await service.remember("the gate code is 1111")
    alone = await service.remember("the bins go out on Thursday")
    second = await service.edit(first.id, content="the gate code is 2222", tags=[])
    third = await service.edit(second.id, content="the gate code is 3333", tags=[])
    for one in (first, second, third):
        versions = (await service.memory(one.id)).versions
        assert [v.id for v in versions] == [first.id, second.id, third.id]
        assert [v.superseded_by for v in versions] == [second.id, third.id, None]
    assert (await service.memory(alone.id)).versions == []


async def test_forgetting_an_edited_memory_forgets_the_versions_it_replaced(service: MemoryService) -> None:
    first = await service.remember("the gate code is 1111")
    second = await service.edit(first.id, content="the gate code is 2222", tags=[])
    third = await service.edit(second.id, content="the gate code is 3333", tags=[])
    assert await service.forget_many([third.id]) == [third.id]
    for gone in (first, second, third):
        with pytest.raises(NotFound):
            await service.memory(gone.id)
    assert (await service.recall("gate code")).hits == []


async def test_one_user_can_neither_read_nor_forget_anothers_memory(service: MemoryService) -> None:
    alice = service.scoped("alice")
    bob = service.scoped("bob")
    kept = await alice.remember("alice's note")
    with pytest.raises(NotFound):
        await bob.memory(kept.id)
    assert await bob.forget_many([kept.id]) == []
    assert (await bob.browse()).total == 0
    assert (await alice.memory(kept.id)).indexed in ("indexed", "pending")
    assert await alice.forget_many([kept.id, "nope"]) == [kept.id]
    assert (await alice.browse()).total == 0


async def test_a_memory_shows_the_summaries_that_cover_it(service: MemoryService) -> None:
    first = await service.remember("We chose Postgres for the billing service.", session_id="design")
    await service.remember("The deadline for billing is in March.", session_id="design")
    assert (await service.memory(first.id)).summaries == []
    summary = await service.summarize_history(session_id="design")
    [covering] = (await service.memory(first.id)).summaries
    assert covering.text == summary.summary and covering.backend == "extractive"


async def test_counts_and_the_chart_stop_at_their_caps(service: MemoryService) -> None:
    items = [NewMemory(content=f"n {i}", created_at=f"2026-05-{1 + i // 4:02d}T0{i % 4}:00:00Z") for i in range(20)]
    await service.remember_many(items)
    page = await service.browse(count_cap=10)
    assert (page.total, page.capped) == (10, True)
    # The newest 10 memories span May 5 (4), May 4 (4) and part of May 3; the cut day is left out.
    assert [(d.day, d.count) for d in await service.day_counts(newest=10)] == [("2026-05-05", 4), ("2026-05-04", 4)]
    # The page's count and chart in one pass: the same cut when the count stops, every day when it does not.
    page = await service.browse(count_cap=10, days=30)
    assert (page.total, page.capped) == (10, True)
    assert [(d.day, d.count) for d in page.days] == [("2026-05-05", 4), ("2026-05-04", 4)]
    page = await service.browse(days=2)
    assert (page.total, page.capped) == (20, False)
    assert [(d.day, d.count) for d in page.days] == [("2026-05-05", 4), ("2026-05-04", 4)]
    assert len((await service.browse(days=30)).days) == 5 and (await service.browse()).days == []
