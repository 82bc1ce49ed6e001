"""Time the Claude Code hooks as the client runs them: a fresh `agent-memory hook EVENT` process per event.

The clock starts before the process is spawned and stops when it has exited with its answer, so Python's
start-up, the imports, reading the store and writing the JSON are all inside the figure. The store holds
10,000 memories (LongMemEval oracle chat turns, user and assistant, in one project namespace, seeded through
the service); prompts are LongMemEval questions, all distinct.

    .venv/bin/python bench/hooks.py                     # 10k memories, 200 prompts, 40 session starts
    .venv/bin/python bench/hooks.py --memories 10000 --prompts 300 --out bench/results/hooks.json
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agent_memory.config import Settings
from agent_memory.models import NewMemory
from agent_memory.service import MemoryService

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA = next(
    (p / "shared" / "eval" / "data" for p in REPO_ROOT.parents if (p / "shared" / "eval" / "data").is_dir()),
    REPO_ROOT.parent / "shared" / "eval" / "data",
)
NAMESPACE = "bench-project"


def _questions_and_turns() -> tuple[list[str], list[dict[str, Any]]]:
    """Return LongMemEval questions and distinct chat turns (the oracle's, then LongMemEval-S's)."""
    items = json.loads((DATA / "longmemeval_oracle.json").read_text())
    more = json.loads(gzip.decompress((DATA / "longmemeval_s_cleaned_strat60.json.gz").read_bytes()))
    turns: dict[str, dict[str, Any]] = {}
    for q in [*items, *more]:
        for session in q["haystack_sessions"]:
            for turn in session:
                if turn["content"].strip():
                    turns.setdefault(turn["content"].strip(), turn)
    return [q["question"] for q in items], list(turns.values())


async def _seed(data_dir: Path, turns: list[dict[str, Any]], count: int) -> int:
    service = await MemoryService.open(Settings(data_dir=data_dir), without_model="the hooks never use the model")
    try:
        items = [
            NewMemory(
                content=t["content"][:4000],
                role=t["role"],
                session_id=f"s{n // 20}",
                namespace=NAMESPACE,
                created_at=f"2025-01-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z",
            )
            for n, t in enumerate(turns[:count])
        ]
        result = await service.remember_many(items)
    finally:
        await service.close()
    return result.stored


def _time(event: str, payload: dict[str, Any], env: dict[str, str], script: str) -> tuple[float, bool]:
    started = time.perf_counter()
    out = subprocess.run([script, "hook", event], input=json.dumps(payload), capture_output=True, text=True, env=env)
    elapsed = (time.perf_counter() - started) * 1000
    assert out.returncode == 0, out.stderr
    return elapsed, bool(out.stdout.strip())


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 1),
        "max_ms": round(ordered[-1], 1),
        "runs": len(ordered),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--starts", type=int, default=40)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    script = shutil.which("agent-memory", path=os.path.dirname(sys.executable)) or "agent-memory"
    questions, turns = _questions_and_turns()
    work = Path(tempfile.mkdtemp(prefix="agent-memory-hooks-"))
    try:
        data_dir, project = work / "data", work / NAMESPACE
        (project / ".git").mkdir(parents=True)
        stored = asyncio.run(_seed(data_dir, turns, args.memories))
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_MEMORY_")}
        env["AGENT_MEMORY_DATA_DIR"] = str(data_dir)
        base = {"session_id": "bench", "transcript_path": str(work / "t.jsonl"), "cwd": str(project)}
        floor: list[float] = []
        prompts = []
        for question in questions[: args.prompts]:
            # A bare interpreter start next to each hook run: on a loaded machine, what no hook can go below.
            floor.append(_time_floor())
            payload = {**base, "hook_event_name": "UserPromptSubmit", "prompt": question}
            prompts.append(_time("prompt", payload, env, script))
        starts = [
            _time("session-start", {**base, "hook_event_name": "SessionStart", "source": "startup"}, env, script)
            for _ in range(args.starts)
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "memories": stored,
        "python_startup_floor": _stats(floor),
        "prompt": {
            **_stats([t for t, _ in prompts]),
            "injected_share": round(sum(i for _, i in prompts) / len(prompts), 2),
        },
        "session_start": _stats([t for t, _ in starts]),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


def _time_floor() -> float:
    """Time a bare `python -c pass`: what no hook can go below on this machine."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True, capture_output=True)
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    main()
