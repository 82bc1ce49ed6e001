"""Soak test (not part of CI): mixed operations from several servers on one data dir at a steady rate.

Each client is its own `agent-memory serve` process over real stdio. Operations are issued open-loop at
`--rate` per second in total (a slow answer does not slow the schedule), mixed as remember 50%, recall 30%,
load_recent 10%, forget 7%, summarize_history 3%. At the end, after the index caught up, every acknowledged
memory must be in SQLite and in the vector index exactly once, and every forgotten one in neither.

Prints JSON: errors (must be 0), lost writes (must be 0), duplicates, and latency per window (p50/p95/p99)
with the drift between the first and last window.

    .venv/bin/python bench/soak.py                                   # 50k operations, 3 clients, 60 ops/s
    .venv/bin/python bench/soak.py --ops 3000 --clients 2 --rate 40  # a short run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.stdio_rpc import StdioServer, pending_count, sqlite_ids, vector_ids

MIX = [("remember", 50), ("recall", 30), ("load_recent", 10), ("forget", 7), ("summarize_history", 3)]
WORDS = [
    "garden",
    "invoice",
    "flight",
    "recipe",
    "database",
    "concert",
    "dentist",
    "laptop",
    "budget",
    "hiking",
    "piano",
    "visa",
    "tax",
    "lease",
]


class Client:
    """One server process and what it was told."""

    def __init__(self, name: str, server: StdioServer, rng: random.Random) -> None:
        self.name = name
        self.server = server
        self.rng = rng
        self.stored: list[str] = []
        self.n = 0

    def next_call(self) -> tuple[str, dict[str, Any]]:
        op = self.rng.choices([m for m, _ in MIX], [w for _, w in MIX])[0]
        if op == "forget" and not self.stored:
            op = "remember"
        if op == "remember":
            self.n += 1
            words = " ".join(self.rng.choices(WORDS, k=6))
            return op, {"content": f"{self.name} memory {self.n}: {words} (serial {self.name}-{self.n})"}
        if op == "recall":
            return op, {"query": " ".join(self.rng.choices(WORDS, k=3)), "limit": 5}
        if op == "load_recent":
            return op, {"limit": 20}
        if op == "forget":
            return op, {"id": self.stored.pop(self.rng.randrange(len(self.stored)))}
        return op, {"limit": 50}


async def soak(ops: int, clients: int, rate: float, windows: int, data: Path) -> dict[str, Any]:
    """Run the soak and return the report."""
    env = {"AGENT_MEMORY_MODEL_WAIT_SECONDS": "300", "AGENT_MEMORY_LOG_LEVEL": "WARNING"}
    servers = await asyncio.gather(
        *(StdioServer.start(data, data.parent / f"soak-{n}.log", **env) for n in range(clients))
    )
    pool = [Client(f"c{n}", s, random.Random(n)) for n, s in enumerate(servers)]
    await asyncio.gather(*(c.server.call("recall", query="warm up") for c in pool))  # waits for the model
    acknowledged: set[str] = set()
    forgotten: set[str] = set()
    errors: list[str] = []
    samples: list[tuple[int, str, float]] = []  # (op index, op, seconds)
    in_flight = asyncio.Semaphore(16 * clients)
    lag = 0.0

    async def run(index: int, client: Client, op: str, args: dict[str, Any]) -> None:
        async with in_flight:
            start = time.perf_counter()
            try:
                result = await client.server.call(op, **args)
            except Exception as exc:  # every failure is counted and reported
                errors.append(f"{client.name} {op}: {exc}"[:300])
                return
            samples.append((index, op, time.perf_counter() - start))
            if op == "remember" and not result["duplicate"]:
                acknowledged.add(result["id"])
                client.stored.append(result["id"])
            elif op == "forget":
                forgotten.add(args["id"])

    started = time.perf_counter()
    tasks = []
    for index in range(ops):
        due = started + index / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        else:
            lag = max(lag, -wait)
        client = pool[index % clients]
        op, args = client.next_call()
        tasks.append(asyncio.create_task(run(index, client, op, args)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started

    deadline = time.monotonic() + 600
    while pending_count(data) and time.monotonic() < deadline:  # noqa: ASYNC110 - state of other processes
        await asyncio.sleep(0.5)
    codes = [await s.close() for s in servers]

    stored = sqlite_ids(data)
    indexed = vector_ids(data)
    kept = acknowledged - forgotten
    per_window: list[dict[str, Any]] = []
    size = max(1, ops // windows)
    grouped: dict[int, list[float]] = defaultdict(list)
    for index, _, seconds in samples:
        grouped[min(index // size, windows - 1)].append(seconds * 1000)
    for w in range(windows):
        values = sorted(grouped.get(w, [0.0]))
        per_window.append(
            {
                "window": w,
                "ops": len(grouped.get(w, [])),
                "p50_ms": round(statistics.median(values), 1),
                "p95_ms": round(values[int(0.95 * (len(values) - 1))], 1),
                "p99_ms": round(values[int(0.99 * (len(values) - 1))], 1),
            }
        )
    by_op = {op: round(statistics.median([s * 1000 for _, o, s in samples if o == op] or [0.0]), 1) for op, _ in MIX}
    return {
        "ops": ops,
        "clients": clients,
        "rate_per_s": rate,
        "seconds": round(elapsed, 1),
        "achieved_rate_per_s": round(ops / elapsed, 1),
        "max_schedule_lag_s": round(lag, 2),
        "errors": len(errors),
        "first_errors": errors[:5],
        "acknowledged": len(acknowledged),
        "forgotten": len(forgotten),
        "lost_writes": len(kept - set(stored)),
        "missing_from_vector_index": len(kept - set(indexed)),
        "forgotten_still_present": len(forgotten & (set(stored) | set(indexed))),
        "duplicates_in_vector_index": sum(n - 1 for n in Counter(indexed).values() if n > 1),
        "pending_after_run": pending_count(data),
        "exit_codes": codes,
        "p50_ms_by_op": by_op,
        "windows": per_window,
        "p50_drift_last_over_first": round(per_window[-1]["p50_ms"] / max(per_window[0]["p50_ms"], 0.1), 2),
    }


def main() -> None:
    """Parse flags, run the soak in a temp dir (or --data-dir) and print the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--rate", type=float, default=60.0, help="operations per second, all clients together")
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="agent-memory-soak-")) / "data"
    report = asyncio.run(soak(args.ops, args.clients, args.rate, args.windows, data))
    report["data_dir"] = str(data)
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["errors"] == 0 and report["lost_writes"] == 0 else 1)


if __name__ == "__main__":
    main()
