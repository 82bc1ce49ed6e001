"""Three real HTTP servers on one Postgres database: concurrent writers, kill -9 and restart, user isolation.

Each server is the installed console script (`serve --transport http --database-url URL`) with the real MiniLM
model and a data dir of its own; the clients are real streamable HTTP MCP clients with bearer tokens of one
user. PER_CLIENT is 1000 remembers per client (3000 in all, plus the retries after the kill): about 3 minutes
on the shared 2-core box (AGENT_MEMORY_TEST_PER_CLIENT=300 for a quicker run). The checks read Postgres directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from mcp.client import Client

from tests.conftest import call, eventually
from tests.postgres import PostgresServer
from tests.serving import bearer, clean_env, http_process, transport

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

PER_CLIENT = int(os.environ.get("AGENT_MEMORY_TEST_PER_CLIENT", "1000"))
IN_FLIGHT = 4
# Acknowledged remembers of the first client before its server is killed (calls are in flight when it lands).
KILL_AFTER = PER_CLIENT // 3
# How long a memory written through one server may take to be embedded and recalled through another.
CROSS_SERVER_SECONDS = 60
TOKENS = [secrets.token_urlsafe(24) for _ in range(3)]  # three clients of alice
BOB = secrets.token_urlsafe(24)
TOPICS = ["garden", "invoice", "flight", "recipe", "database", "concert", "dentist", "laptop", "budget", "hiking"]


def _codeword(who: str, n: int) -> str:
    """Return a made-up word unique to one memory, so a recall for it has exactly one right answer."""
    return hashlib.sha1(f"{who}-{n}".encode()).hexdigest()[:12].translate(str.maketrans("0123456789", "ghijklmnop"))


def _text(who: str, n: int) -> str:
    return f"{who} note {n}: the {TOPICS[n % len(TOPICS)]} item {_codeword(who, n)} belongs to {who}"


def _env(data: Path) -> dict[str, str]:
    return clean_env(
        AGENT_MEMORY_DATA_DIR=str(data),
        AGENT_MEMORY_HTTP_TOKENS=",".join([*(f"{t}:alice" for t in TOKENS), f"{BOB}:bob"]),
        AGENT_MEMORY_MODEL_WAIT_SECONDS="240",
        AGENT_MEMORY_INDEX_POLL_SECONDS="0.5",
    )


class Servers:
    """The three servers: start, kill and restart one by number; stopped at the end of the test."""

    def __init__(self, tmp: Path, database_url: str, stack: ExitStack) -> None:
        self.tmp, self.database_url, self.stack = tmp, database_url, stack
        self.urls: list[str] = []
        self.procs: list[Any] = []

    def start(self, n: int) -> None:
        args = ["--database-url", self.database_url]
        url, _, proc = self.stack.enter_context(http_process(args, _env(self.tmp / f"data-{n}"), timeout=240))
        if n < len(self.urls):
            self.urls[n], self.procs[n] = url, proc
        else:
            self.urls.append(url)
            self.procs.append(proc)


@pytest.fixture
def database(postgres_server: PostgresServer) -> str:
    return postgres_server.create()


@pytest.fixture
def servers(tmp_path: Path, database: str) -> Iterator[Servers]:
    with ExitStack() as stack:
        started = Servers(tmp_path, database, stack)
        for n in range(3):
            started.start(n)
        yield started


def _rows(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT id, owner, content FROM memories").fetchall()  # type: ignore[return-value]


def _vector_keys(url: str) -> list[tuple[str, str, int]]:
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'embedding'"
            " AND table_schema = 'public'"
        ).fetchall()
        assert len(tables) == 1, tables
        query = f'SELECT key, id, chunk FROM "{tables[0][0]}"'
        return conn.execute(query).fetchall()  # type: ignore[arg-type,return-value]


def _pending(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM memories WHERE indexed = 0").fetchone()
    assert row is not None
    return int(row[0])


async def _client(
    url: str,
    token: str,
    who: str,
    numbers: list[int],
    acknowledged: dict[str, str],
    errors: list[str],
    kill: Any = None,
) -> None:
    """Remember `numbers` with IN_FLIGHT calls at a time, recalling an earlier one every tenth; `kill` ends it."""
    queue = iter(numbers)
    killed = asyncio.Event()

    async def worker(client: Client) -> None:
        for n in queue:
            if killed.is_set():
                return
            text = _text(who, n)
            try:
                acknowledged[text] = (await call(client, "remember", content=text, tags=[who]))["id"]
                if kill is not None and sum(1 for t in acknowledged if t.startswith(who)) == KILL_AFTER:
                    kill()
                    killed.set()
                if n % 10 == 9 and _text(who, n - 5) in acknowledged:
                    found = await call(client, "recall", query=_codeword(who, n - 5), limit=5)
                    if acknowledged[_text(who, n - 5)] not in [h["id"] for h in found["hits"]]:
                        errors.append(f"{who}: recall missed note {n - 5}")
            except Exception as exc:  # after the kill, in-flight calls fail: not acknowledged
                if not killed.is_set():
                    errors.append(f"{who} {n}: {exc!r}")
                return

    try:
        async with Client(transport(url, bearer(token)), mode="auto") as client:
            await asyncio.gather(*(worker(client) for _ in range(IN_FLIGHT)))
    except Exception:
        if not killed.is_set():
            raise  # the transport fails on the way out only when its server was killed


async def test_three_servers_on_one_database_lose_duplicate_and_leak_nothing(servers: Servers) -> None:
    url = servers.database_url
    acknowledged: dict[str, str] = {}  # content -> id
    errors: list[str] = []
    numbers = list(range(PER_CLIENT))

    def kill() -> None:
        servers.procs[0].kill()

    with anyio.fail_after(1500):
        await asyncio.gather(
            _client(servers.urls[0], TOKENS[0], "c0", numbers, acknowledged, errors, kill),
            *(_client(servers.urls[n], TOKENS[n], f"c{n}", numbers, acknowledged, errors) for n in (1, 2)),
        )
        assert await anyio.to_thread.run_sync(servers.procs[0].wait) == -9
        assert KILL_AFTER <= sum(1 for t in acknowledged if t.startswith("c0")) < PER_CLIENT
        # Restart on the same database; the client retries everything it had no answer for (a retry of a
        # memory stored before the kill must come back as the same memory, not a second one).
        await anyio.to_thread.run_sync(servers.start, 0)
        missing = [n for n in numbers if _text("c0", n) not in acknowledged]
        await _client(servers.urls[0], TOKENS[0], "c0", missing, acknowledged, errors)

        async def all_indexed() -> bool:
            return await anyio.to_thread.run_sync(_pending, url) == 0

        await eventually(all_indexed, 600)
    assert errors == []
    assert len(acknowledged) == 3 * PER_CLIENT

    rows = await anyio.to_thread.run_sync(_rows, url)
    ids = [r[0] for r in rows]
    contents = Counter(r[2] for r in rows)
    assert len(ids) == len(set(ids)) == len(rows) == 3 * PER_CLIENT
    assert [c for c, k in contents.items() if k > 1] == []
    assert {r[2]: r[0] for r in rows} == acknowledged
    assert {r[1] for r in rows} == {"alice"}

    keys = await anyio.to_thread.run_sync(_vector_keys, url)
    assert [k for k, n in Counter(k for k, _, _ in keys).items() if n > 1] == []
    assert all(key == f"{memory}:{chunk}" for key, memory, chunk in keys)
    assert {memory for _, memory, chunk in keys if chunk == 0} == set(ids)
    assert {memory for _, memory, _ in keys} == set(ids)


async def test_a_memory_written_through_one_server_is_recalled_through_another(servers: Servers) -> None:
    text = f"The spare key is taped under the {_codeword('cross', secrets.randbelow(10**6))} birdhouse."
    with anyio.fail_after(300):
        async with Client(transport(servers.urls[1], bearer(TOKENS[1])), mode="auto") as writer:
            stored = await call(writer, "remember", content=text)
        async with Client(transport(servers.urls[2], bearer(TOKENS[2])), mode="auto") as reader:

            async def recalled_and_embedded() -> bool:
                found = await call(reader, "recall", query="where is the spare key hidden", limit=5)
                keys = await anyio.to_thread.run_sync(_vector_keys, servers.database_url)
                embedded = (f"{stored['id']}:0", stored["id"], 0) in keys
                return embedded and stored["id"] in [h["id"] for h in found["hits"]]

            await eventually(recalled_and_embedded, CROSS_SERVER_SECONDS)


async def test_a_token_of_another_user_never_sees_alices_rows_on_any_server(servers: Servers) -> None:
    secret = f"Alice's locker code is {secrets.randbelow(10**6):06d}."
    with anyio.fail_after(300):
        async with Client(transport(servers.urls[0], bearer(TOKENS[0])), mode="auto") as alice:
            alice_id = (await call(alice, "remember", content=secret))["id"]
            assert alice_id in [h["id"] for h in (await call(alice, "recall", query="locker code", limit=10))["hits"]]
        for url in servers.urls:
            async with Client(transport(url, bearer(BOB)), mode="auto") as bob:
                await call(bob, "remember", content=f"Bob likes green tea ({url}).")
                found = await call(bob, "recall", query="Alice locker code", limit=50)
                assert found["hits"] and all(
                    h["id"] != alice_id and "locker" not in h["content"] for h in found["hits"]
                )
                recent = await call(bob, "load_recent", limit=200)
                assert all("locker" not in m["content"] for m in recent["messages"])
                assert (await bob.call_tool("forget", {"id": alice_id})).is_error
    owners = {r[1] for r in await anyio.to_thread.run_sync(_rows, servers.database_url)}
    assert owners == {"alice", "bob"}
