"""Time the web page at scale: first contentful paint and server time of the timeline and of a search.

Seeds a store in-process through the service (default 100,000 memories spread over a year, cached under --cache),
serves the page from this process (the `agent-memory ui` app on loopback) and drives Debian's Chromium through
Playwright: each timeline page and each search is a fresh navigation; server time is the navigation's
requestStart → responseStart, first paint is the browser's first-contentful-paint.

Embeddings are synthetic (a fixed random 384-dimension unit vector per text): the vector search does the real
amount of work at this scale, without embedding 100k texts with the model (hours on this machine); what it
ranks first means nothing, which this benchmark does not measure.

    .venv/bin/python bench/ui.py                      # 100k memories
    .venv/bin/python bench/ui.py --size 10000 --runs 10
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import shutil
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import uvicorn
from playwright.sync_api import Page, sync_playwright

import perf
from agent_memory.config import Settings
from agent_memory.models import NewMemory
from agent_memory.service import MemoryService
from agent_memory.web.security import Guard
from agent_memory.web.serve import ui_app

DIM = 384
WORDS = [
    "garden",
    "shed",
    "bicycle",
    "dentist",
    "flight",
    "lisbon",
    "plumber",
    "kitchen",
    "locker",
    "code",
    "meeting",
    "budget",
    "invoice",
    "recipe",
    "cardamom",
    "holiday",
    "train",
    "ticket",
    "doctor",
    "report",
    "deadline",
    "project",
    "database",
    "staging",
    "server",
    "backup",
    "password",
    "birthday",
    "gift",
    "concert",
    "piano",
    "lesson",
    "school",
    "teacher",
    "homework",
    "football",
    "match",
    "weather",
    "rain",
    "umbrella",
    "coffee",
]
QUERIES = [
    "where is the bicycle",
    "when is the dentist",
    "flight to lisbon gate",
    "staging database server",
    "birthday gift ideas",
    "piano lesson teacher",
    "coffee and rain",
    "project deadline budget",
    "backup password",
    "concert tickets",
]


class SyntheticEmbedder:
    """A fixed random unit vector per text: real vector-search work, no model."""

    dim = DIM

    @property
    def name(self) -> str:
        return "synthetic-384"

    def load(self) -> int:
        return DIM

    def embed(self, texts: Any) -> np.ndarray[Any, np.dtype[np.float32]]:
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            out[row] = np.random.default_rng(seed).standard_normal(DIM)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def corpus(n: int) -> list[str]:
    """Return n chat-sized texts: LongMemEval-S snippets as bench/perf.py makes them, else made-up sentences."""
    if (perf.DATA / "longmemeval_s_cleaned_strat60.json.gz").exists():
        return perf.corpus(perf.DATA, n)
    rng = np.random.default_rng(7)
    return [f"{i}: " + " ".join(rng.choice(WORDS, size=int(rng.integers(8, 40)))) + "." for i in range(n)]


def queries() -> list[str]:
    """Return distinct questions: LongMemEval's when available."""
    if (perf.DATA / "longmemeval_s_cleaned_strat60.json.gz").exists():
        return perf.questions(perf.DATA)
    return [f"{q} {i}" for i in range(10) for q in QUERIES]


def texts(n: int) -> list[NewMemory]:
    """Return n chat-sized memories spread over the last 365 days, in 200 sessions."""
    rng = np.random.default_rng(7)
    start = datetime.now(UTC) - timedelta(days=365)
    items = []
    for i, content in enumerate(corpus(n)):
        when = start + timedelta(seconds=int(365 * 86400 * i / n))
        items.append(
            NewMemory(
                content=content,
                role=str(rng.choice(["user", "assistant", "fact"])),
                session_id=f"s{i * 200 // n}",
                tags=[str(rng.choice(WORDS[:8]))],
                created_at=when.isoformat(),
            )
        )
    return items


async def seed(settings: Settings, n: int) -> None:
    """Store n memories through the service's bulk path and wait until they are indexed."""
    service = await MemoryService.open(settings, SyntheticEmbedder())
    try:
        items = texts(n)
        for at in range(0, n, 2000):
            await service.remember_many(items[at : at + 2000])
            print(f"seeded {min(at + 2000, n)}/{n}", flush=True)
        problem = await service.wait_indexed(progress=None)
        assert problem is None, problem
        assert await service.settle()
    finally:
        await service.close()


def measure(page: Page, url: str) -> tuple[float, float]:
    """Navigate and return (server ms, first contentful paint ms)."""
    page.goto(url, wait_until="load")
    timing = page.evaluate(
        "() => { const n = performance.getEntriesByType('navigation')[0];"
        " const p = performance.getEntriesByName('first-contentful-paint')[0];"
        " return [n.responseStart - n.requestStart, p ? p.startTime : -1]; }"
    )
    return float(timing[0]), float(timing[1])


def p50(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def p95(values: list[float]) -> float:
    return round(statistics.quantiles(values, n=20, method="inclusive")[-1], 1)


def main() -> None:
    """Seed (or reuse) the store, serve it, and time the timeline and searches in Chromium."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/agent-memory-ui-bench"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cached = args.cache / str(args.size)
    if not (cached / "done").exists():
        shutil.rmtree(cached, ignore_errors=True)
        asyncio.run(seed(Settings(data_dir=cached / "data"), args.size))
        (cached / "done").touch()
    settings = Settings(data_dir=cached / "data", model_wait_seconds=120)
    guard = Guard(settings)
    token = guard.issue_one_time(settings.user)
    config = uvicorn.Config(ui_app(settings, guard, SyntheticEmbedder()), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:  # a thread of this process: no event to wait on
        assert time.monotonic() < deadline, "the page did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}/ui"
    results: dict[str, Any] = {"size": args.size, "runs": args.runs}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page()
        page.goto(f"{base}/login?token={token}")
        measure(page, f"{base}/search?q=warm+up")  # the first query waits for the index to open
        timeline = [measure(page, f"{base}/") for _ in range(args.runs)]
        filtered = [measure(page, f"{base}/?role=fact&tags=garden") for _ in range(args.runs)]
        asked = queries()
        searches = [measure(page, f"{base}/search?{urlencode({'q': asked[i]})}") for i in range(args.runs)]
        browser.close()
    for name, runs in (("timeline", timeline), ("timeline_filtered", filtered), ("search", searches)):
        server_ms = [s for s, _ in runs]
        results[name] = {
            "server_ms_p50": p50(server_ms),
            "server_ms_p95": p95(server_ms),
            # -1: Chromium recorded no first-contentful-paint for that navigation; left out.
            "first_paint_ms_p50": p50([f for _, f in runs if f >= 0] or [-1.0]),
        }
    server.should_exit = True
    thread.join(timeout=30)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
