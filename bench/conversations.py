"""Turn-level recall on conversations, stored and asked through the MCP tools over real stdio (issue 13).

Each conversation gets a fresh data dir and a fresh `agent-memory serve` process. Every turn goes in as one
`remember` call (content "[1:56 pm on 8 May, 2023] Kate: text", role, one session_id per session, created_at the
session date; see conv_data.py). Once the server has indexed every turn, each question is one
`recall(query=question, limit=10)`. Then one server per other mode (AGENT_MEMORY_RECALL_MODE=keyword, vector) is
started on the same data dir and asked the same questions. Gold turn ids stay in the bench.

Scores: turn recall@5/@10 (share of a question's evidence turns among the hits, averaged per category); for
LongMemEval also recall_all@5 as bench/longmemeval.py defines it (sessions ranked by their best turn among 50
recalled, all answer sessions in the top 5). Recall p50/p95 (warm, client round trip) and ingest rate.
The server's clock is the real one (MCP cannot set it), so "last week" in a question means the week before the run.

    .venv/bin/python bench/conversations.py --limit 2
    .venv/bin/python bench/conversations.py --format longmemeval --data ../shared/eval/data/...more110.json.gz
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from mcp.client import Client

from conv_data import DATA_DIR, REPO_ROOT, Conversation, Question, isolated, load_conversations, load_longmemeval
from mcp_driver import ingest, recall, server, wait_indexed

MODES = ("hybrid", "keyword", "vector")
KS = (5, 10)
DEEP = 50  # turns recalled to rank sessions (LongMemEval's recall_all@5)
WARMUP_QUERY = "what did we talk about"


def session_of(turn_id: str) -> str:
    """Return the session a turn id belongs to (LongMemEval turn ids are '<session>#<n>:<k>')."""
    return turn_id.rsplit(":", 1)[0]


def turn_recall(hits: Sequence[str], owners: dict[str, list[str]], evidence: Sequence[str], k: int) -> float:
    """Return the share of evidence turns among the top-k hits."""
    found = {t for memory in hits[:k] for t in owners.get(memory, [])}
    return sum(e in found for e in evidence) / len(evidence)


def recall_all(deep: Sequence[str], owners: dict[str, list[str]], gold: frozenset[str], k: int) -> float:
    """Return 1.0 when every answer session is among the top-k sessions ranked by their best turn."""
    ranked = list(dict.fromkeys(session_of(owners[m][0]) for m in deep if m in owners))
    return float(gold <= set(ranked[:k]))


async def ask(client: Client, question: Question, owners: dict[str, list[str]], mode: str) -> dict[str, Any]:
    """Ask one question and return its scored row."""
    hits, ms, found = await recall(client, question.text, max(KS))
    row: dict[str, Any] = {"qid": question.qid, "category": question.category, "mode": mode, "ms": round(ms, 2)}
    row["degraded"] = bool(found["degraded"])
    if question.evidence:
        for k in KS:
            row[f"r@{k}"] = turn_recall(hits, owners, question.evidence, k)
    if question.gold_sessions:
        deep, _, _ = await recall(client, question.text, DEEP)
        row["recall_all@5"] = recall_all(deep, owners, question.gold_sessions, 5)
    return row


async def ask_all(client: Client, conversation: Conversation, owners: dict[str, list[str]], mode: str) -> list[Any]:
    """Warm the server up with one throwaway recall, then ask every question."""
    await recall(client, WARMUP_QUERY, max(KS))
    return [await ask(client, q, owners, mode) for q in conversation.questions]


async def run_conversation(conversation: Conversation, modes: Sequence[str], timeout: float) -> dict[str, Any]:
    """Ingest one conversation into a fresh server, wait for indexing, and ask its questions in every mode."""
    turns = sum(len(s.turns) for s in conversation.sessions)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="conv-", ignore_cleanup_errors=True) as tmp:
        data = Path(tmp) / "data"
        with anyio.fail_after(timeout):
            async with server(data, "hybrid") as client:
                start = time.monotonic()
                owners, refused = await ingest(client, conversation)
                written = time.monotonic()
                indexed = await wait_indexed(data, timeout)
                if "hybrid" in modes:
                    rows += await ask_all(client, conversation, owners, "hybrid")
            for mode in (m for m in modes if m != "hybrid"):
                async with server(data, mode) as client:
                    rows += await ask_all(client, conversation, owners, mode)
    return {
        "conversation": conversation.cid,
        "turns": turns,
        "refused": refused,
        "remember_s": round(written - start, 2),
        "indexed_s": round(indexed - start, 2),
        "rows": rows,
    }


def mean(values: Sequence[float]) -> float | None:
    """Return the mean, or None for no values."""
    return round(statistics.fmean(values), 4) if values else None


def percentile(values: Sequence[float], share: float) -> float | None:
    """Return a nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)


def summarize(runs: Sequence[dict[str, Any]], modes: Sequence[str]) -> dict[str, Any]:
    """Aggregate rows per mode and category, with latency and ingest rate."""
    rows = [r for run in runs for r in run["rows"]]
    metrics = [m for m in ("r@5", "r@10", "recall_all@5") if any(m in r for r in rows)]
    out: dict[str, Any] = {"modes": {}}
    for mode in modes:
        mine = [r for r in rows if r["mode"] == mode]
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in mine:
            groups[r["category"]].append(r)
        groups["all"] = mine
        out["modes"][mode] = {
            "categories": {
                c: {"n": len(g)} | {m: mean([r[m] for r in g if m in r]) for m in metrics} for c, g in groups.items()
            },
            "recall_ms_p50": percentile([r["ms"] for r in mine], 0.5),
            "recall_ms_p95": percentile([r["ms"] for r in mine], 0.95),
            "degraded": sum(r["degraded"] for r in mine),
        }
    turns = sum(r["turns"] - r["refused"] for r in runs)
    out["ingest"] = {
        "memories": turns,
        "refused": sum(r["refused"] for r in runs),
        "remember_per_s": round(turns / max(sum(r["remember_s"] for r in runs), 1e-9), 1),
        "indexed_per_s": round(turns / max(sum(r["indexed_s"] for r in runs), 1e-9), 1),
    }
    out["metrics"] = metrics
    return out


def print_table(summary: dict[str, Any], title: str) -> None:
    """Print one line per category: each metric for each mode."""
    modes, metrics = list(summary["modes"]), summary["metrics"]
    first = summary["modes"][modes[0]]["categories"]
    cats = [*sorted(c for c in first if c != "all"), "all"]
    print(f"\n{title}")
    print(f"{'category':<26}{'n':>5}  " + "  ".join(f"{m[:3]}:{x:<12}" for m in modes for x in metrics))
    for c in cats:
        cells = [summary["modes"][m]["categories"].get(c, {}).get(x) for m in modes for x in metrics]
        shown = "  ".join(f"{'-' if v is None else f'{v:.3f}':<16}" for v in cells)
        print(f"{c:<26}{first[c]['n']:>5}  {shown}")
    for m in modes:
        s = summary["modes"][m]
        print(f"{m}: recall p50 {s['recall_ms_p50']} ms, p95 {s['recall_ms_p95']} ms, degraded {s['degraded']}")
    print("ingest:", summary["ingest"])


def pick(conversations: list[Conversation], limit: int | None) -> list[Conversation]:
    """Return the first `limit` conversations, taken round-robin over their first question's category."""
    if limit is None or limit >= len(conversations):
        return conversations
    queues: dict[str, list[Conversation]] = defaultdict(list)
    for c in conversations:
        queues[c.questions[0].category if c.questions else ""].append(c)
    chosen: list[Conversation] = []
    while len(chosen) < limit:
        for queue in queues.values():
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    return chosen


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA_DIR / "realtalk_dev.json.gz")
    parser.add_argument("--format", choices=("realtalk", "longmemeval"), default="realtalk")
    parser.add_argument("--limit", type=int, help="conversations (LongMemEval: questions), round-robin by type")
    parser.add_argument("--questions", type=int, help="at most this many questions per conversation")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--isolated", action="store_true", help="every turn in a session of its own")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per conversation")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    args.modes = [m for m in args.modes.split(",") if m]
    if not args.modes or set(args.modes) - set(MODES):
        parser.error(f"--modes takes a comma list of {', '.join(MODES)}")
    return args


def git_head() -> str:
    """Return the short commit the bench ran at."""
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT)
    return git.stdout.strip()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Run every chosen conversation and return the JSON report."""
    load = load_longmemeval if args.format == "longmemeval" else load_conversations
    chosen = pick(load(args.data), args.limit)
    if args.questions is not None:
        chosen = [Conversation(c.cid, c.sessions, c.questions[: args.questions]) for c in chosen]
    if args.isolated:
        chosen = [isolated(c) for c in chosen]
    runs, started = [], time.monotonic()
    for n, conversation in enumerate(chosen, 1):
        run = await run_conversation(conversation, args.modes, args.timeout)
        runs.append(run)
        by_mode = {m: mean([r["r@10"] for r in run["rows"] if r["mode"] == m and "r@10" in r]) for m in args.modes}
        print(f"[{n}/{len(chosen)}] {conversation.cid} turns={run['turns']} index={run['indexed_s']}s r@10={by_mode}",
              file=sys.stderr, flush=True)  # fmt: skip
    return {
        "benchmark": "conversations",
        "data_file": args.data.name,
        "format": args.format,
        "isolated": args.isolated,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "git": git_head(),
        "conversations": len(chosen),
        "runtime_s": round(time.monotonic() - started, 1),
        "summary": summarize(runs, args.modes),
        "runs": runs,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run, print the table, write the JSON."""
    args = parse_args(argv)
    report = anyio.run(main_async, args)
    label = args.data.name.split(".")[0] + ("-isolated" if args.isolated else "")
    print_table(report["summary"], f"{label}: {report['conversations']} conversations, {report['runtime_s']} s")
    out = args.out or REPO_ROOT / "bench" / "results" / f"conversations-{label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
