"""What only the Postgres store has: migrations under a lock, claims with leases, and a database that goes away."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import psycopg
import pytest

from agent_memory.config import Settings
from agent_memory.errors import BackendError, ConfigError, InvalidInput, NotFound
from agent_memory.service import MemoryService
from agent_memory.store.postgres import PostgresStore
from agent_memory.store.postgres.schema import MIGRATIONS, migrate
from agent_memory.store.rows import Filters, NewRow
from tests.cli.test_cli import run, run_json
from tests.conftest import HashEmbedder
from tests.postgres import PostgresServer

pytestmark = pytest.mark.anyio

NOW = datetime(2025, 3, 1, tzinfo=UTC)
HOSTILE = ["it's", "100%", "a\\b", "_", "%", "x' OR '1'='1", "back\\\\slash", 'dq"uote', "semi;colon--"]


def row(content: str, user: str = "alice", namespace: str = "default", **kw: object) -> NewRow:
    """Return a new memory row."""
    values: dict[str, object] = {
        "id": uuid.uuid4().hex,
        "user": user,
        "namespace": namespace,
        "session_id": "s1",
        "role": "user",
        "content": content,
        "content_hash": hashlib.sha256(content.encode()).hexdigest(),
        "tags": (),
        "metadata": {},
        "created_at": NOW,
    }
    values.update(kw)
    return NewRow(**values)  # type: ignore[arg-type]


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresStore]:
    opened = await PostgresStore.open(pg_url)
    try:
        yield opened
    finally:
        await opened.close()


def scope(namespace: str | None = "default", **kw: object) -> Filters:
    return Filters(namespace=namespace, now_ts=NOW.timestamp(), **kw)  # type: ignore[arg-type]


async def test_two_servers_migrating_at_once_apply_each_migration_once(postgres_server: PostgresServer) -> None:
    url = postgres_server.create(migrated=False)
    versions: list[int] = []

    async def start() -> None:
        versions.append(await migrate(url))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(start)
    assert versions == [len(MIGRATIONS)] * 3
    with psycopg.connect(url) as conn:
        recorded = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert recorded == list(range(1, len(MIGRATIONS) + 1))
    assert {"memories", "summaries", "kv", "users", "oauth_tokens", "vector_tombstones"} <= tables


async def test_a_database_with_a_newer_schema_is_refused_with_a_clear_message(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (len(MIGRATIONS) + 5,))
    with pytest.raises(ConfigError, match=r"newer than this agent-memory knows.*Upgrade agent-memory"):
        await PostgresStore.open(pg_url)


async def test_two_claimers_never_get_the_same_pending_row(pg_url: str, store: PostgresStore) -> None:
    ids = [i.id for i in await store.insert_many([row(f"memory number {n}") for n in range(60)])]
    other = await PostgresStore.open(pg_url)
    claimed: dict[str, list[str]] = {"a": [], "b": []}

    async def drain(name: str, claimer: PostgresStore) -> None:
        # As the indexer does: claim a batch, embed it, mark it indexed.
        while batch := await claimer.pending(7):
            claimed[name].extend(r.id for r in batch)
            await anyio.lowlevel.checkpoint()
            await claimer.mark_indexed([r.id for r in batch])

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain, "a", store)
            tg.start_soon(drain, "b", other)
    finally:
        await other.close()
    assert not set(claimed["a"]) & set(claimed["b"])
    assert sorted(claimed["a"] + claimed["b"]) == sorted(ids)
    assert await store.count_pending() == 0 and await store.last_pending() is None


async def test_claimed_rows_stay_pending_and_only_their_claimer_retries_them(pg_url: str, store: PostgresStore) -> None:
    ids = {i.id for i in await store.insert_many([row(f"fact {n}") for n in range(3)])}
    assert {r.id for r in await store.pending(10)} == ids
    other = await PostgresStore.open(pg_url)
    try:
        assert await other.pending(10) == []  # a live lease keeps other servers off
    finally:
        await other.close()
    # Still pending (drain and wait_indexed wait for them), and the claimer retries a failed batch at once.
    assert await store.count_pending() == 3 and await store.pending_through(await store.last_pending() or 0)
    assert {r.id for r in await store.pending(10)} == ids
    await store.mark_indexed(sorted(ids))
    assert await store.count_pending() == 0 and await store.count_indexed() == 3


async def test_rows_of_a_claimer_that_died_return_when_its_lease_ends(pg_url: str, store: PostgresStore) -> None:
    ids = {i.id for i in await store.insert_many([row(f"fact {n}") for n in range(5)])}
    patient = await PostgresStore.open(pg_url)  # the default lease: its claims hold
    dying = await PostgresStore.open(pg_url, lease_seconds=0.0)  # a lease already over: as if it died long ago
    try:
        first = await patient.pending(2)
        assert len(first) == 2
        lost = await dying.pending(2)  # claimed, never marked indexed
        assert len(lost) == 2 and not {r.id for r in lost} & {r.id for r in first}
        again = await store.pending(10)
    finally:
        await patient.close()
        await dying.close()
    # The dead claimer's rows and the one never claimed come back; the live lease's rows do not.
    assert {r.id for r in again} == ids - {r.id for r in first}


async def test_hostile_filter_values_are_bound_never_spliced(store: PostgresStore) -> None:
    for text in HOSTILE:
        await store.insert_many([row(f"note about {text}", namespace=text, tags=(text,))])
    await store.insert_many([row("the plain one", namespace="plain")])
    for text in HOSTILE:
        found = await store.recent("alice", scope(text), 10)
        assert [m.namespace for m in found] == [text]
        tagged = await store.recent("alice", scope(None, tags=(text,)), 10)
        assert [m.content for m in tagged] == [f"note about {text}"]
        # LIKE wildcards and escapes in a prefix match themselves only.
        assert await store.namespaces("alice", text, 50) == sorted(n for n in [*HOSTILE, "plain"] if n.startswith(text))
    assert len(await store.keyword_search("alice", ["note", "'", "&", "|", "!", "<->", ":*"], scope(None), 50)) == len(
        HOSTILE
    )


async def test_a_nul_character_is_a_clear_error_and_changes_nothing(store: PostgresStore) -> None:
    with pytest.raises(InvalidInput, match="NUL"):
        await store.insert_many([row("fine"), row("fine too", namespace="bad\x00space")])
    with pytest.raises(InvalidInput, match="NUL"):
        await store.insert_many([row("tagged", tags=("t\x00",))])
    with pytest.raises(InvalidInput, match="NUL"):
        await store.recent("alice", scope("x\x00"), 5)
    with pytest.raises(InvalidInput, match="NUL"):
        await store.keyword_search("alice", ["fine\x00"], scope(), 5)
    assert await store.count_scope(None, None) == 0


async def test_one_user_never_sees_another_users_rows(store: PostgresStore) -> None:
    [a] = await store.insert_many([row("the launch code is blue", user="alice")])
    [b] = await store.insert_many([row("the launch code is blue", user="bob", session_id="s1")])
    assert a.id != b.id and not b.duplicate
    assert [m.id for m, _ in await store.keyword_search("bob", ["launch"], scope(), 10)] == [b.id]
    assert list(await store.by_ids("bob", [a.id, b.id], scope())) == [b.id]
    assert [m.id for m in await store.recent("bob", scope(None), 10)] == [b.id]
    assert await store.chain("bob", a.id) == []
    assert await store.browse.detail("bob", a.id) is None
    assert not await store.delete("bob", a.id)
    with pytest.raises(NotFound):
        await store.supersede("bob", b.id, [a.id])
    assert await store.count_scope("alice", None) == 1


async def test_keyword_search_stems_english_and_ranks_the_closer_match_first(store: PostgresStore) -> None:
    await store.insert_many([row("she was running the deploy script"), row("deploy notes: runs nightly, deploy")])
    await store.insert_many([row("nothing relevant here")])
    found = await store.keyword_search("alice", ["runs", "deploys"], scope(), 10)
    assert len(found) == 2 and all(score > 0 for _, score in found)
    assert found[0][1] >= found[1][1]


async def test_a_lost_connection_is_replaced_and_a_slow_query_is_a_clear_error(pg_url: str) -> None:
    store = await PostgresStore.open(pg_url, statement_timeout=0.2)
    try:
        await store.insert_many([row("kept across the restart")])
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid != pg_backend_pid()"
            )
        assert await store.count_scope(None, None) == 1  # the pool checked and reconnected
        with pytest.raises(BackendError, match="statement timeout"):
            await store._db.all("SELECT pg_sleep(2)")
    finally:
        await store.close()


async def test_an_unreachable_database_is_a_clear_error(tmp_path: object) -> None:
    with pytest.raises(BackendError, match=r"Cannot open the memory database at .*AGENT_MEMORY_DATABASE_URL"):
        await PostgresStore.open("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


async def test_expiry_and_supersede_follow_the_same_rules_as_sqlite(store: PostgresStore) -> None:
    soon = NOW + timedelta(days=1)
    [old] = await store.insert_many([row("tea at four", expires_at=soon)])
    [new] = await store.insert_many([row("tea at five", supersedes=(old.id,))])
    assert new.superseded == (old.id,)
    assert [m.id for m in await store.chain("alice", new.id)] == [old.id, new.id]
    assert await store.expired((soon + timedelta(seconds=1)).timestamp(), 10) == [("alice", old.id)]
    assert await store.delete("alice", new.id)
    [again] = await store.insert_many([row("tea at four")])  # current again: an exact repeat
    assert again.duplicate and again.id == old.id


async def test_the_service_opens_postgres_when_a_database_url_is_set(pg_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=pg_url)
    service = await MemoryService.open(settings, HashEmbedder(), without_model="test")
    try:
        stored = await service.remember("The boiler service is due in March")
        assert isinstance(service._store, PostgresStore)
    finally:
        await service.close()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT id FROM memories").fetchall() == [(stored.id,)]
    assert not settings.sqlite_path.exists()


def test_the_cli_flag_and_the_variable_make_postgres_the_store(pg_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(data, "--database-url", pg_url, "remember", "-", stdin="Lunch with Sam on Thursday at noon\n")
    listed = run_json(data, "recent", AGENT_MEMORY_DATABASE_URL=pg_url)
    assert "Lunch with Sam" in json.dumps(listed)
    assert not (data / "memory.sqlite3").exists()
    refused = run(data, "recent", "--database-url", "mysql://somewhere/db", code=2)
    assert "AGENT_MEMORY_DATABASE_URL must be a PostgreSQL URL" in refused.stderr
