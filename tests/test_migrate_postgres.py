"""`migrate --to postgresql://` at 10,000 memories: everything copied and counted, and recall answers alike."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest

from agent_memory import moving
from agent_memory.config import Settings
from agent_memory.index.pgvector import PgVectorIndex
from agent_memory.models import Hit, Memory, NewMemory, StoredSummary
from agent_memory.service import MemoryService
from agent_memory.store.protocol import MemoryStore
from agent_memory.store.sqlite import SQLiteStore
from agent_memory.write.prepare import new_row
from tests.conftest import HashEmbedder
from tests.postgres import PostgresServer

pytestmark = pytest.mark.anyio

MEMORIES = 10_000
# Made-up words, so that memories rarely share a word set: recall's order then has no ties to break either way.
_SYLLABLES = ["ka", "lo", "mi", "ren", "tu", "sa", "vel", "dor", "pi", "na", "gus", "te", "bra", "on", "li", "mer"]
WORDS = [a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in ("", "n", "s", "x")][:900]
TARGETS = [17, 404, 1999, 3210, 5555, 7001, 8642, 9876, 9999]  # alice's and bob's memories, the queries' targets


def _memory(i: int) -> tuple[str, NewMemory]:
    """Return the owner and content of memory i: two users, three namespaces, tags and metadata on some."""
    rng = random.Random(i)
    user = "bob" if i % 10 == 9 else "alice"
    text = " ".join(rng.sample(WORDS, rng.randint(6, 12))) + f" ({i})"
    namespace = ("work", "home", "travel")[i % 3]
    return user, NewMemory(content=text, namespace=namespace, tags=[f"t{i % 4}"], metadata={"n": i} if i % 5 else {})


def _query(i: int) -> str:
    """Return a query for memory i: three of its words."""
    words = _memory(i)[1].content.split()[:-1]
    return " ".join(random.Random(-i).sample(words, 3))


async def _seed(settings: Settings) -> SQLiteStore:
    """Write the memories (as remember_many does: prepared rows, one transaction a page) and a few summaries."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await SQLiteStore.open(settings.sqlite_path)
    rows = []
    for i in range(MEMORIES):
        user, memory = _memory(i)
        rows.append(new_row(memory, Settings(data_dir=settings.data_dir, user=user), f"s{i % 5}")[0])
    for start in range(0, MEMORIES, 2000):
        await store.insert_many(rows[start : start + 2000])
    for n, (user, namespace) in enumerate([("alice", "work"), ("alice", "home"), ("bob", "travel")]):
        summary = StoredSummary(text=f"Summary {n} of {user}.", backend="extractive", covered_ids=[rows[n].id])
        await store.summaries.save(user, namespace, f"s{n}", "", summary)
    return store


async def test_a_10k_store_migrates_to_postgres_and_recalls_the_same_ids(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    started = time.monotonic()
    lite = Settings(data_dir=tmp_path / "lite", model_wait_seconds=30)
    source = await _seed(lite)
    url = postgres_server.create()
    target = await moving.open_store(url)
    seeded = time.monotonic()
    try:
        report = await moving.copy_store(source, target)
        assert (report.memories, report.copied, report.already_there, report.same_content) == (MEMORIES, MEMORIES, 0, 0)
        assert report.summaries == 3 and report.mismatches == []
        assert sorted(await target.counts()) == sorted(await source.counts())
        assert await target.summaries.count() == await source.summaries.count() == 3
        assert await target.count_pending() == MEMORIES
        # Ids, owners, namespaces, sessions, tags, metadata and times, all as they were.
        assert await _everything(target) == await _everything(source)
    finally:
        await source.close()
        await target.close()
    copied = time.monotonic()
    pg = Settings(data_dir=tmp_path / "pg", model_wait_seconds=30, database_url=url)
    services = await asyncio.gather(*(MemoryService.open(s, HashEmbedder()) for s in (lite, pg)))
    try:
        # Both index all 10,000 from scratch (the Postgres one the bulk way: pgvector_bulk.py).
        assert await asyncio.gather(*(s.wait_indexed(240) for s in services)) == [None, None]
        assert await asyncio.gather(*(s.settle(240) for s in services)) == [True, True]
        indexed = time.monotonic()
        vectors = services[1]._indexer.vectors
        assert isinstance(vectors, PgVectorIndex) and vectors.ann_state() == "valid"  # built after the bulk load
        for i in TARGETS:
            user, memory = _memory(i)
            query, ns = _query(i), memory.namespace
            on_lite, on_pg = [(await s.scoped(user).recall(query, limit=8, namespace=ns)).hits for s in services]
            # The memory the query was made from comes first on both; the rest agree but for the keyword rankers'
            # differences (FTS5's bm25 against ts_rank_cd), which move a hit or two near the end.
            assert on_lite[0].content == on_pg[0].content == memory.content, query
            assert len({h.id for h in on_lite} & {h.id for h in on_pg}) >= 6, query
            near_lite, near_pg = [
                (await s.scoped(user).recall(query, limit=8, namespace=ns, mode="vector")).hits for s in services
            ]
            # The same vectors (LanceDB's exact search, pgvector's HNSW): the same ids in the same order, but for
            # memories of equal similarity (the hash embedder gives many), in either order.
            assert _ranked(near_pg) == _ranked(near_lite), query
    finally:
        for service in services:
            await service.close()
    print(  # the test runs in CI on every push: where its time goes
        f"seed {seeded - started:.1f} s, copy {copied - seeded:.1f} s, index both {indexed - copied:.1f} s, "
        f"recalls {time.monotonic() - indexed:.1f} s"
    )


def _ranked(hits: list[Hit]) -> list[frozenset[str]]:
    """Return the ids in rank order, equal scores (within float16's rounding) as one group; the last group dropped.

    The last group may be cut short by the limit, differently on each side.
    """
    groups: list[tuple[float, set[str]]] = []
    for hit in hits:
        if groups and abs(groups[-1][0] - hit.score) < 2e-3:
            groups[-1][1].add(hit.id)
        else:
            groups.append((hit.score, {hit.id}))
    return [frozenset(ids) for _, ids in groups[:-1]]


async def _everything(store: MemoryStore) -> list[tuple[str, Memory]]:
    out: list[tuple[str, Memory]] = []
    after = 0
    while page := await store.export_page(None, None, after, 2000):
        out.extend((owner, m) for _, owner, m in page)
        after = page[-1][0]
    return out
