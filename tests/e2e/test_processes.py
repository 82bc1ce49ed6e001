"""Real processes on one data dir: two servers and a third writer at once, kill -9, a deleted vector index.

Every server here is the installed console script over real stdio with the real MiniLM model. Sizes are
chosen to keep CI reasonable while still interleaving thousands of writes with index commits.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import stat
from collections import Counter
from pathlib import Path

import anyio
import pytest

from agent_memory.config import Settings
from agent_memory.errors import ConfigError
from agent_memory.service import MemoryService
from tests.conftest import HashEmbedder, eventually
from tests.stdio_rpc import StdioServer, console_script, integrity, pending_count, sqlite_ids, vector_ids

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

# Remembers per server in the concurrency test (plus half as many from the in-process writer), and how
# many calls each client keeps in flight.
PER_SERVER = 300
IN_FLIGHT = 4
# Acknowledged remembers before the kill; eight calls are in flight when it lands.
KILL_AFTER = 200
# The model loads in the background; this lets the first recall wait for it (on an event, bounded).
MODEL_WAIT = {
    "AGENT_MEMORY_MODEL_WAIT_SECONDS": "240",
    "AGENT_MEMORY_INDEX_POLL_SECONDS": "0.5",
    "AGENT_MEMORY_LOG_LEVEL": "INFO",
}

TOPICS = ["garden", "invoice", "flight", "recipe", "database", "concert", "dentist", "laptop", "budget", "hiking"]


class NoModel(HashEmbedder):
    """A writer without a model (like a CLI call that stores and exits): it never indexes anything."""

    def load(self) -> int:
        raise ConfigError("this writer has no model")


def _codeword(who: str, n: int) -> str:
    """Return a made-up word unique to one memory, so a recall for it has exactly one right answer."""
    return hashlib.sha1(f"{who}-{n}".encode()).hexdigest()[:12].translate(str.maketrans("0123456789", "ghijklmnop"))


def _text(who: str, n: int) -> str:
    return f"{who} note {n}: the {TOPICS[n % len(TOPICS)]} item {_codeword(who, n)} belongs to {who}"


async def _all_indexed(data_dir: Path, timeout: float = 240) -> None:
    async def done() -> bool:
        return pending_count(data_dir) == 0

    await eventually(done, timeout)


def _assert_exactly_once(data_dir: Path, acknowledged: set[str]) -> None:
    stored = sqlite_ids(data_dir)
    assert len(stored) == len(set(stored))
    assert acknowledged <= set(stored), f"{len(acknowledged - set(stored))} acknowledged memories lost"
    indexed = vector_ids(data_dir)
    duplicates = [i for i, n in Counter(indexed).items() if n > 1]
    assert duplicates == [], f"{len(duplicates)} memories twice in the vector index"
    assert set(indexed) == set(stored)
    assert integrity(data_dir) == "ok"


async def _ready(server: StdioServer) -> None:
    found = await server.call("recall", query="warm up")
    assert found["mode"] == "hybrid", found


async def test_two_servers_and_a_third_writer_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    acknowledged: dict[str, str] = {}  # content -> id
    errors: list[str] = []

    with anyio.fail_after(600):
        servers = [await StdioServer.start(data, tmp_path / f"server-{n}.log", **MODEL_WAIT) for n in range(2)]
        try:
            await asyncio.gather(*(_ready(s) for s in servers))
            # The third writer is another process's view of the store with no model (like a CLI call):
            # it writes and reads, and never indexes.
            third = await MemoryService.open(Settings(data_dir=data), NoModel())
            try:
                await asyncio.gather(
                    *(_client(s, f"s{n}", acknowledged, errors) for n, s in enumerate(servers)),
                    _third_writer(third, acknowledged, errors),
                )
            finally:
                await third.close()
            await _all_indexed(data)
            # Every server recalls what the others wrote.
            for n, server in enumerate(servers):
                other = _text(f"s{1 - n}", PER_SERVER - 1)
                found = await server.call("recall", query=_codeword(f"s{1 - n}", PER_SERVER - 1), limit=5)
                assert acknowledged[other] in [h["id"] for h in found["hits"]]
        finally:
            codes = [await s.close() for s in servers]
    assert errors == []
    assert codes == [0, 0]
    assert len(acknowledged) == 2 * PER_SERVER + PER_SERVER // 2
    _assert_exactly_once(data, set(acknowledged.values()))


async def _client(server: StdioServer, who: str, acknowledged: dict[str, str], errors: list[str]) -> None:
    """Remember PER_SERVER memories with IN_FLIGHT calls at a time; every tenth call is a recall of an earlier one."""
    queue = iter(range(PER_SERVER))

    async def worker() -> None:
        for n in queue:
            text = _text(who, n)
            try:
                stored = await server.call("remember", content=text, tags=[who])
                acknowledged[text] = stored["id"]
                if n % 10 == 9:
                    earlier = _text(who, n - 5)
                    found = await server.call("recall", query=_codeword(who, n - 5), limit=5)
                    if acknowledged.get(earlier) not in [h["id"] for h in found["hits"]] and earlier in acknowledged:
                        errors.append(f"{who}: recall missed {earlier!r}")
            except Exception as exc:  # every failure is collected and fails the test
                errors.append(f"{who} {n}: {exc}")

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))


async def _third_writer(service: MemoryService, acknowledged: dict[str, str], errors: list[str]) -> None:
    for n in range(PER_SERVER // 2):
        text = _text("cli", n)
        try:
            acknowledged[text] = (await service.remember(text)).id
            if n % 10 == 9:
                await service.load_recent(limit=5)
        except Exception as exc:
            errors.append(f"cli {n}: {exc}")


async def test_kill_9_mid_stream_loses_no_acknowledged_memory_and_a_lost_index_is_rebuilt(tmp_path: Path) -> None:
    data = tmp_path / "data"
    acknowledged: dict[str, str] = {}
    with anyio.fail_after(600):
        server = await StdioServer.start(data, tmp_path / "victim.log", **MODEL_WAIT)
        await _ready(server)
        killed = asyncio.Event()

        async def stream() -> None:
            n = 0
            while not killed.is_set():
                n += 1
                text = _text("victim", n)
                try:
                    acknowledged[text] = (await server.call("remember", content=text))["id"]
                except ConnectionError:
                    return  # in flight when the process died: not acknowledged, may or may not be stored
                if len(acknowledged) == KILL_AFTER:
                    server.kill()
                    killed.set()

        await asyncio.gather(*(stream() for _ in range(8)))
        assert await server.process.wait() == -9

        # Restart: the catch-up pass indexes whatever the kill left pending.
        restarted = await StdioServer.start(data, tmp_path / "restarted.log", **MODEL_WAIT)
        await _ready(restarted)
        await _all_indexed(data)
        last = _text("victim", KILL_AFTER)
        if last in acknowledged:
            found = await restarted.call("recall", query=_codeword("victim", KILL_AFTER), limit=5)
            assert acknowledged[last] in [h["id"] for h in found["hits"]]
        _assert_private(data)  # while it runs, with the -wal and -shm files present
        assert await restarted.close() == 0
    assert len(acknowledged) >= KILL_AFTER
    _assert_exactly_once(data, set(acknowledged.values()))

    # Index loss, on demand: `agent-memory reindex` rebuilds it from SQLite.
    _remove_tree(data / "vectors.lance")
    with anyio.fail_after(600):
        done = await anyio.run_process(
            [console_script(), "reindex"],
            env={**os.environ, "AGENT_MEMORY_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"},
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    assert f"re-indexed {len(sqlite_ids(data))} memories" in done.stdout.decode()
    _assert_exactly_once(data, set(acknowledged.values()))

    # (Index loss while nobody looks, rebuilt by the next start, is tests/test_durability.py's in-process case.)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path)
    assert not path.exists()


def _assert_private(data: Path) -> None:
    """Every directory under the data dir is 0700 and every file 0600 (SQLite, -wal, -shm, LanceDB)."""
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    seen = 0
    for path in data.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path} has mode {oct(mode)}"
        seen += 1
    assert (data / "memory.sqlite3").exists() and (data / "vectors.lance").is_dir() and seen > 5
