"""Recall latency as users meet it: memories poured in through the MCP tools, then the next session (issue 14).

bench/perf.py times recall on a seeded, settled store. This bench starts from an empty store and goes through
the real console script over stdio only: `--memories` (10k) realistic texts (LongMemEval-S chat turns of every
length, cut at 2,000 characters) are stored with one `remember` call each, while recall is asked fresh
questions (never a query-embedding cache hit: a question seen before gets a round number appended) every
`--probe-every` seconds. Reported, each as p50/p95 of the client's round trip:

- during the ingest;
- the minute after the last remember was acknowledged (the indexer still embedding the backlog);
- the next session: a new server process on the same store, the 10 s after its semantic search is ready;
- steady state: once nothing is pending, `--queries` fresh questions one after the other;

plus the ingest rate, the indexing rate (texts/s until nothing is pending) and the servers' RSS.

    .venv/bin/python bench/live.py                   # 10k memories, about 20 minutes on 2 idle cores
    .venv/bin/python bench/live.py --memories 2000   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mcp.client import Client

from mcp_driver import pending
from perf import DATA, dist, params, rss_mb, server_pids, wait_semantic

ROOT = Path(__file__).resolve().parent.parent
MAX_CHARS = 2000


def texts(n: int) -> list[str]:
    """Return n distinct chat turns of every length (cut at MAX_CHARS), from LongMemEval-S haystacks."""
    seen: dict[str, None] = {}
    for name in ("longmemeval_s_cleaned_strat60.json.gz", "longmemeval_s_cleaned_more110.json.gz"):
        with gzip.open(DATA / name, "rt") as f:
            for q in json.load(f):
                for session in q["haystack_sessions"]:
                    for turn in session:
                        seen.setdefault(turn["content"].strip()[:MAX_CHARS], None)
    found = [t for t in seen if t]
    if len(found) < n:
        raise SystemExit(f"only {len(found)} distinct texts available")
    return found[:n]


def fresh_questions() -> Iterator[str]:
    """Yield questions never asked before in this run: LongMemEval's, then again with a round number."""
    with open(DATA / "longmemeval_oracle.json") as f:
        base = sorted({q["question"] for q in json.load(f)})
    for round_ in range(1000):
        for q in base:
            yield q if round_ == 0 else f"{q} ({round_})"


async def recall_once(client: Client, queries: Iterator[str], out: list[float]) -> None:
    """Ask one fresh question and record the round trip."""
    start = time.perf_counter()
    result = await client.call_tool("recall", {"query": next(queries), "limit": 10})
    if result.is_error:
        raise RuntimeError(f"recall failed: {result.content}")
    out.append(time.perf_counter() - start)


async def probe(client: Client, queries: Iterator[str], every: float, stop: asyncio.Event, out: list[float]) -> None:
    """Recall every `every` seconds until stopped."""
    while not stop.is_set():
        await recall_once(client, queries, out)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every):
                await stop.wait()


async def for_seconds(client: Client, queries: Iterator[str], seconds: float, every: float) -> list[float]:
    """Recall every `every` seconds for `seconds`; return the round trips."""
    out: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        await recall_once(client, queries, out)
        await asyncio.sleep(every)
    return out


async def first_session(data_dir: Path, items: list[str], queries: Iterator[str], every: float) -> dict[str, Any]:
    """Ingest through one server while probing recall, then probe the minute after."""
    async with Client(params(data_dir)) as client:
        await wait_semantic(client, time.perf_counter() + 600)
        during: list[float] = []
        writes: list[float] = []
        stop = asyncio.Event()
        prober = asyncio.create_task(probe(client, queries, every, stop, during))
        started = time.perf_counter()
        for n, text in enumerate(items):
            t = time.perf_counter()
            result = await client.call_tool("remember", {"content": text, "session_id": f"s{n // 20}"})
            if result.is_error:
                raise RuntimeError(f"remember failed: {result.content}")
            writes.append(time.perf_counter() - t)
        acknowledged = time.perf_counter()
        stop.set()
        await prober
        after = await for_seconds(client, queries, 60, every)
        left = pending(data_dir)
        while pending(data_dir):  # noqa: ASYNC110 - the state lives in the server process's SQLite file
            await asyncio.sleep(1)
        indexed = time.perf_counter()
        pid = server_pids()
        return {
            "remember": dist(writes),
            "remember_per_s": round(len(items) / (acknowledged - started), 1),
            "indexed_per_s": round(len(items) / (indexed - started), 1),
            "during_ingest": {**dist(during), "n": len(during)},
            "minute_after": {**dist(after), "n": len(after), "pending_at_end": left},
            "rss_peak_mb": round(rss_mb(pid[0]), 0) if pid else None,
        }


async def next_session(data_dir: Path, queries: Iterator[str], steady: int, every: float) -> dict[str, Any]:
    """Start a new server on the store: the 10 s after semantic search is ready, then steady state."""
    async with Client(params(data_dir)) as client:
        await wait_semantic(client, time.perf_counter() + 600)
        first = await for_seconds(client, queries, 10, every)
        settled: list[float] = []
        for _ in range(steady):
            await recall_once(client, queries, settled)
        pid = server_pids()
        return {
            "next_session": {**dist(first), "n": len(first)},
            "steady": {**dist(settled), "n": len(settled)},
            "rss_mb": round(rss_mb(pid[0], "VmRSS"), 0) if pid else None,
            "rss_peak_mb": round(rss_mb(pid[0]), 0) if pid else None,
        }


def table(result: dict[str, Any]) -> str:
    """Return the Markdown table of the phases."""
    lines = ["| phase | p50 ms | p95 ms | recalls |", "|---|---|---|---|"]
    for phase in ("during_ingest", "minute_after", "next_session", "steady"):
        row = result[phase]
        lines.append(f"| {phase.replace('_', ' ')} | {row['p50_ms']} | {row['p95_ms']} | {row['n']} |")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200, help="steady-state recalls")
    parser.add_argument("--probe-every", type=float, default=0.5, help="seconds between recalls while probing")
    parser.add_argument("--keep", type=Path, help="store the memories here (a new directory) and keep it afterwards")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / f"live-{time.strftime('%H%M%S')}.json")
    args = parser.parse_args()
    items, queries = texts(args.memories), fresh_questions()
    with tempfile.TemporaryDirectory(prefix="live-", ignore_cleanup_errors=True) as tmp:
        data_dir = args.keep or Path(tmp) / "data"
        if data_dir.exists():
            raise SystemExit(f"{data_dir} exists: --keep wants a new directory")
        result = await first_session(data_dir, items, queries, args.probe_every)
        second = await next_session(data_dir, queries, args.queries, args.probe_every)
    result = {"memories": args.memories, "mean_chars": round(sum(map(len, items)) / len(items)), **result}
    result["next_session"], result["steady"] = second["next_session"], second["steady"]
    result["second_server"] = {"rss_mb": second["rss_mb"], "rss_peak_mb": second["rss_peak_mb"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(table(result))
    print(json.dumps({k: v for k, v in result.items() if k not in ("during_ingest", "minute_after")}, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
