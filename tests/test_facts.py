"""Facts that change: supersede chains, looking back, expiry and the errors of each, on the real store and index."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent_memory.cli import transfer
from agent_memory.config import Settings
from agent_memory.errors import InvalidInput, NotFound
from agent_memory.service import MemoryService
from tests.conftest import HashEmbedder, best_memories, open_ready, open_store, vector_table

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]


async def ids(service: MemoryService, query: str, **kwargs: object) -> list[str]:
    return [h.id for h in (await service.recall(query, limit=10, **kwargs)).hits]  # type: ignore[arg-type]


async def test_a_chain_leaves_only_the_newest_in_recall_recent_and_summaries(service: MemoryService) -> None:
    a = await service.remember("Dana lives in Lisbon.", created_at="2024-01-01")
    b = await service.remember("Dana lives in Porto now.", created_at="2024-03-01", supersedes=[a.id])
    c = await service.remember("Dana lives in Madrid now.", created_at="2024-06-01", supersedes=[b.id])
    assert b.superseded == [a.id] and c.superseded == [b.id]
    assert await service.wait_indexed(30) is None
    assert await ids(service, "where does Dana live") == [c.id]
    assert [m.id for m in (await service.load_recent()).messages] == [c.id]
    summary = await service.summarize_history()
    assert summary.covers.count == 1 and "Lisbon" not in summary.summary
    [hit] = (await service.recall("where does Dana live")).hits
    assert hit.supersedes == [b.id]
    chain = await service.history(a.id)
    assert [m.id for m in chain] == [a.id, b.id, c.id]
    assert chain[0].superseded_by == b.id and chain[0].superseded_at == b.created_at
    assert chain[2].superseded_by is None
    assert [m.id for m in await service.history(c.id)] == [a.id, b.id, c.id]


async def test_as_of_answers_with_what_was_current_at_each_boundary(service: MemoryService) -> None:
    a = await service.remember("Dana's editor theme is dark mode.", created_at="2024-01-01T00:00:00Z")
    b = await service.remember(
        "Dana's editor theme is light mode.", created_at="2024-05-01T00:00:00Z", supersedes=[a.id]
    )
    assert await service.wait_indexed(30) is None
    query = "Dana editor theme"
    assert await ids(service, query, as_of="2023-12-31T23:59:59Z") == []
    assert await ids(service, query, as_of="2024-01-01T00:00:00Z") == [a.id]
    assert await ids(service, query, as_of="2024-04-30T23:59:59Z") == [a.id]
    assert await ids(service, query, as_of="2024-05-01T00:00:00Z") == [b.id]
    assert await ids(service, query) == [b.id]
    everything = (await service.recall(query, include_superseded=True)).hits
    assert {h.id for h in everything} == {a.id, b.id}
    old = next(h for h in everything if h.id == a.id)
    assert old.superseded_by == b.id and old.superseded_at == b.created_at


async def test_superseding_an_unknown_forgotten_or_other_users_id_is_refused_and_stores_nothing(
    service: MemoryService,
) -> None:
    gone = await service.remember("temporary")
    await service.forget(gone.id)
    theirs = await service.scoped("someone-else").remember("Their fact.")
    for missing in ("no-such-id", gone.id, theirs.id):
        with pytest.raises(NotFound, match="forgotten"):
            await service.remember("New fact.", supersedes=[missing])
    with pytest.raises(InvalidInput, match="supersedes"):
        await service.remember("New fact.", supersedes="abc")  # type: ignore[arg-type]
    assert (await service.load_recent()).messages == []
    assert (await service.scoped("someone-else").load_recent()).messages[0].superseded_by is None


async def test_a_memory_of_another_namespace_of_the_same_user_can_be_superseded(service: MemoryService) -> None:
    old = await service.remember("The build uses make.", namespace="work")
    new = await service.remember("The build uses just.", supersedes=[old.id])
    assert new.superseded == [old.id]
    assert (await service.load_recent(namespace="work")).messages == []


async def test_superseding_an_already_superseded_memory_extends_its_chain(service: MemoryService) -> None:
    a = await service.remember("Standup at 9:00.")
    b = await service.remember("Standup at 9:30.", supersedes=[a.id])
    c = await service.remember("Standup at 10:00.", supersedes=[a.id])
    assert c.superseded == [b.id] and c.note and b.id in c.note
    assert [m.id for m in await service.history(a.id)] == [a.id, b.id, c.id]
    again = await service.remember("Standup at 10:00.", supersedes=[a.id])
    assert again.duplicate and again.id == c.id and again.superseded == []
    with pytest.raises(InvalidInput, match="itself"):
        await service.remember("Standup at 10:00.", supersedes=[c.id])


async def test_an_old_fact_said_again_is_stored_anew_and_current(service: MemoryService) -> None:
    dark = await service.remember("Dana prefers dark mode.")
    light = await service.remember("Dana prefers light mode.", supersedes=[dark.id])
    back = await service.remember("Dana prefers dark mode.", supersedes=[light.id])
    assert not back.duplicate and back.id != dark.id
    assert [m.id for m in (await service.load_recent()).messages] == [back.id]
    assert [m.id for m in await service.history(back.id)] == [dark.id, light.id, back.id]


async def test_forgetting_a_link_of_the_chain_keeps_the_rest_linked(service: MemoryService) -> None:
    a = await service.remember("v1 is deployed.")
    b = await service.remember("v2 is deployed.", supersedes=[a.id])
    c = await service.remember("v3 is deployed.", supersedes=[b.id])
    await service.forget(b.id)
    assert [m.id for m in await service.history(a.id)] == [a.id, c.id]
    await service.forget(c.id)
    assert [m.id for m in (await service.load_recent()).messages] == [a.id]
    assert (await service.remember("v1 is deployed.")).id == a.id


async def test_expiry_at_the_boundary_with_an_injected_clock(service: MemoryService) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    service.clock = lambda: now
    kept = await service.remember("The office is closed this week.", expires_at="2030-01-08T00:00:00Z")
    timed = await service.remember("The door code is 4711.", ttl=3600)
    assert kept.expires_at == "2030-01-08T00:00:00Z" and timed.expires_at == "2030-01-01T01:00:00Z"
    assert await service.wait_indexed(30) is None
    assert len((await service.load_recent()).messages) == 2
    service.clock = lambda: now + timedelta(seconds=3599)
    assert timed.id in await ids(service, "door code")
    service.clock = lambda: now + timedelta(seconds=3600)
    assert timed.id not in await ids(service, "door code")
    assert [m.id for m in (await service.load_recent()).messages] == [kept.id]
    service.clock = lambda: datetime(2030, 1, 8, tzinfo=UTC)
    assert (await service.load_recent()).messages == []
    assert await ids(service, "office closed", as_of="2030-01-02") == [kept.id]


async def test_bad_expiry_is_refused(service: MemoryService) -> None:
    for kwargs, expected in (
        ({"expires_at": "2001-01-01"}, "not in the future"),
        ({"ttl": 0}, "ttl must be"),
        ({"ttl": True}, "ttl must be"),
        ({"ttl": 60, "expires_at": "2999-01-01"}, "not both"),
        ({"expires_at": "soon"}, "ISO 8601"),
    ):
        with pytest.raises(InvalidInput, match=expected):
            await service.remember("x", **kwargs)  # type: ignore[arg-type]


async def test_two_processes_superseding_the_same_memory_make_one_chain(settings: Settings) -> None:
    first = await MemoryService.open(settings, HashEmbedder(), without_model="test")
    # A second connection to the same file, as another process has.
    other = await open_store(settings)
    second = await MemoryService.open(settings, HashEmbedder(), without_model="test", store=other)
    try:
        old = await first.remember("The meeting room is B12.")
        results = await asyncio.gather(
            *[
                (first if n % 2 else second).remember(f"The meeting room is C{n}.", supersedes=[old.id])
                for n in range(8)
            ]
        )
        chain = await first.history(old.id)
        assert len(chain) == 9 and chain[0].id == old.id
        assert sorted(r.id for r in results) == sorted(m.id for m in chain[1:])
        assert [m.superseded_by for m in chain[:-1]] == [m.id for m in chain[1:]]
        assert len((await second.load_recent()).messages) == 1
    finally:
        await first.close()
        await second.close()


async def test_export_and_import_carry_links_and_expiry(service: MemoryService, tmp_path: Path) -> None:
    old = await service.remember("Dana works at Acme.", created_at="2024-01-01")
    new = await service.remember("Dana works at Globex.", supersedes=[old.id], expires_at="2999-01-01")
    buffer = io.StringIO()
    assert await transfer.export_jsonl(service, buffer, user=None, namespace=None) == 2
    copy = await MemoryService.open(Settings(data_dir=tmp_path / "copy"), HashEmbedder(), without_model="test")
    try:
        for _ in range(2):  # a second import changes nothing
            report = await transfer.import_text(copy, buffer.getvalue(), "agent-memory")
        assert (report.stored, report.duplicates) == (0, 2)
        assert [m.id for m in (await copy.load_recent()).messages] == [new.id]
        chain = await copy.history(new.id)
        assert [(m.id, m.superseded_by, m.expires_at) for m in chain] == [
            (old.id, new.id, None),
            (new.id, None, "2999-01-01T00:00:00Z"),
        ]
    finally:
        await copy.close()


async def test_remember_lists_near_memories_of_the_namespace_and_never_supersedes_them(
    service: MemoryService,
) -> None:
    dark = await service.remember("Dana prefers dark mode in the editor.")
    await service.remember("The deploy script lives in tools/deploy.sh.")
    await service.remember("Dana prefers dark mode in the editor.", namespace="other")
    assert await service.wait_indexed(30) is None
    light = await service.remember("Dana prefers light mode in the editor.")
    assert [s.id for s in light.similar] == [dark.id]
    assert 0 < light.similar[0].score <= 1 and light.superseded == []
    assert len((await service.load_recent()).messages) == 3  # nothing was superseded on its own
    replaced = await service.remember("Dana prefers light mode in the code editor.", supersedes=[light.id])
    assert light.id not in [s.id for s in replaced.similar] and replaced.superseded == [light.id]


async def test_remember_never_waits_for_a_busy_model_and_says_similar_kept_to_shared_words(
    service: MemoryService,
) -> None:
    dark = await service.remember("Dana prefers dark mode in the code editor at work.")
    assert await service.wait_indexed(30) is None
    with service._model._lock:  # an indexing batch holds the model
        light = await service.remember("Dana prefers light mode in the code editor at work.")
    assert [s.id for s in light.similar] == [dark.id]  # the word side still finds the repeat
    assert light.note is not None and "sharing words only" in light.note
    assert await service.wait_indexed(30) is None  # the model free again
    free = await service.remember("Dana prefers sepia mode in the code editor at work.")
    assert free.note is None and dark.id in [s.id for s in free.similar]


async def test_upkeep_purges_expired_memories_from_store_summaries_and_index(service: MemoryService) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    service.clock = lambda: now
    gone = await service.remember("The guest wifi password is tulip.", ttl=60)
    kept = await service.remember("The office wifi is called acme.")
    assert await service.wait_indexed(30) is None
    await service.summarize_history()
    table = await vector_table(service, HashEmbedder.dim)
    assert gone.id in {i for i, _ in best_memories(table, HashEmbedder().embed(["guest wifi password tulip"])[0], 5)}
    assert await service.upkeep() == 0
    service.clock = lambda: now + timedelta(seconds=60)
    assert await service.upkeep() == 1
    assert [m.id for _, _, m in await service.export_page(user=None, namespace=None, after=0, limit=10)] == [kept.id]
    assert await service._store.summaries.count() == 0
    vector = HashEmbedder().embed(["guest wifi password tulip"])[0]
    table = await vector_table(service, HashEmbedder.dim)  # a reader opened now, as another process
    assert gone.id not in {i for i, _ in best_memories(table, vector, 5)}


async def test_forget_while_the_index_is_closed_deletes_the_vector_later(settings: Settings) -> None:
    first = await open_ready(settings)
    stored = await first.remember("The spare key is under the mat.")
    assert await first.wait_indexed(30) is None
    await first.close()
    closed = await MemoryService.open(settings, HashEmbedder(), without_model="index closed")
    try:
        await closed.forget(stored.id)
        assert await closed._store.tombstones(10) == [stored.id]
    finally:
        await closed.close()
    reopened = await open_ready(settings)
    try:
        await reopened.upkeep()
        assert await reopened._store.tombstones(10) == []
        table = await vector_table(reopened, HashEmbedder.dim)
        vector = HashEmbedder().embed(["spare key under the mat"])[0]
        assert stored.id not in {i for i, _ in best_memories(table, vector, 5)}
    finally:
        await reopened.close()


async def test_of_two_near_twins_nobody_marked_the_newer_ranks_first_and_the_older_is_flagged(
    service: MemoryService,
) -> None:
    old = await service.remember(
        "Dana prefers dark mode in the code editor at work every day.", created_at="2024-01-01"
    )
    other = await service.remember("Dana's cat is called Miso.", created_at="2024-02-01")
    new = await service.remember(
        "Dana prefers light mode in the code editor at work every day.", created_at="2024-03-01"
    )
    assert await service.wait_indexed(30) is None
    hits = (await service.recall("Dana dark mode code editor", limit=5)).hits
    assert [h.id for h in hits if h.id != other.id] == [new.id, old.id]
    flags = {h.id: h.possibly_outdated for h in hits}
    assert flags == {old.id: new.id, new.id: None, other.id: None} or flags == {old.id: new.id, new.id: None}


async def test_tidy_folds_twins_into_the_oldest_by_superseding_and_is_idempotent(service: MemoryService) -> None:
    first = await service.remember("Dana prefers dark mode in the code editor at work every day.")
    retry = await service.remember("Dana prefers dark mode in the code editor at work every single day.")
    other = await service.remember("The deploy script lives in tools/deploy.sh and needs bash.")
    now = datetime.now(UTC)
    service.clock = lambda: now
    await service.remember("Parking slot 4 is free this week.", ttl=60)
    service.clock = lambda: now + timedelta(seconds=120)
    dry = await service.tidy()
    assert [[m.id for m in c] for c in dry.clusters] == [[first.id, retry.id]]
    assert dry.expired == 1 and not dry.applied
    assert len((await service.load_recent()).messages) == 3  # a dry run changes nothing
    done = await service.tidy(apply=True)
    assert (done.superseded, done.purged) == (1, 1)
    assert [m.id for m in (await service.load_recent()).messages] == [first.id, other.id]
    assert [(m.id, m.superseded_by) for m in await service.history(retry.id)] == [
        (retry.id, first.id),
        (first.id, None),
    ]
    again = await service.tidy(apply=True)
    assert (again.clusters, again.expired, again.superseded, again.purged) == ([], 0, 0, 0)


async def test_a_fact_reworded_past_similar_is_found_by_recalling_its_subject_then_superseded(
    service: MemoryService,
) -> None:
    # What the tool descriptions tell a model: `similar` misses a change worded unlike the old fact, a recall of
    # the subject in a few words finds it, and superseding it leaves the new fact alone in recall.
    kim = await service.remember("My manager is Kim, she is very supportive.", role="fact", created_at="2024-01-01")
    await service.remember("The deploy script lives in tools/deploy.sh.", role="fact", created_at="2024-01-02")
    assert await service.wait_indexed(30) is None
    sam = await service.remember("I report to Sam now after the reorg.", role="fact", created_at="2024-06-01")
    assert kim.id not in [s.id for s in sam.similar]
    assert kim.id in await ids(service, "the user's manager")
    again = await service.remember("I report to Sam now after the reorg.", role="fact", supersedes=[kim.id])
    assert again.id == sam.id and again.superseded == [kim.id]
    assert kim.id not in await ids(service, "the user's manager")
    assert [m.id for m in await service.history(kim.id)] == [kim.id, sam.id]
