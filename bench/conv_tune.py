"""Try recall variants on conversations stored once: the tuning loop behind docs/quality.md (issue 13).

bench/conversations.py is the judge (MCP over stdio, a fresh server per conversation); this is the quick loop.
Each conversation is stored once through `MemoryService.remember` with the arguments the MCP tool gets (the
same path below the tool layer) into a cached data dir, then every variant asks every question in-process.
A variant sets recall's tuning constants by name, e.g. `score.WEIGHTS={"keyword":.4,"vector":.6}`.

    .venv/bin/python bench/conv_tune.py --variant base: --variant nb0:neighbours.NEIGHBOUR_SHARE=0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent_memory.config import Settings
from agent_memory.recall import neighbours, score, timeframe
from agent_memory.service import MemoryService
from conv_data import DATA_DIR, Conversation, content, load_conversations
from conversations import KS, mean, turn_recall

MODULES = {"score": score, "neighbours": neighbours, "timeframe": timeframe}


async def stored(conversation: Conversation, cache: Path) -> tuple[Path, dict[str, list[str]]]:
    """Return the data dir holding the conversation (storing it the first time) and memory id -> turn ids."""
    data, owners_file = cache / conversation.cid, cache / f"{conversation.cid}.owners.json"
    if owners_file.exists():
        return data, json.loads(owners_file.read_text())
    service = await MemoryService.open(Settings(data_dir=data))
    owners: dict[str, list[str]] = {}
    try:
        for session in conversation.sessions:
            for turn in session.turns:
                result = await service.remember(
                    content(turn, session.date),
                    role=turn.role,
                    session_id=session.session_id,
                    created_at=session.date.isoformat(),
                )
                owners.setdefault(result.id, []).append(turn.turn_id)
        assert await service.wait_index_open(600)
        assert await service.wait_indexed(3600) is None
    finally:
        await service.close()
    owners_file.write_text(json.dumps(owners))
    return data, owners


def apply(assignments: Sequence[str]) -> dict[tuple[Any, str], Any]:
    """Set module constants (`module.NAME=python literal`); return the old values."""
    old: dict[tuple[Any, str], Any] = {}
    for assignment in assignments:
        target, value = assignment.split("=", 1)
        module_name, name = target.split(".")
        module = MODULES[module_name]
        old[(module, name)] = getattr(module, name)
        setattr(module, name, eval(value))
    return old


async def run(conversations: list[Conversation], cache: Path, variants: list[tuple[str, list[str]]]) -> None:
    """Ask every question under every variant and print r@5 / r@10 per category."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in variants}
    for conversation in conversations:
        data, owners = await stored(conversation, cache)
        service = await MemoryService.open(Settings(data_dir=data))
        try:
            assert await service.wait_index_open(600)
            for name, assignments in variants:
                old = apply(assignments)
                try:
                    for q in conversation.questions:
                        hits = [h.id for h in (await service.recall(q.text, limit=max(KS))).hits]
                        row = {f"r@{k}": turn_recall(hits, owners, q.evidence, k) for k in KS}
                        rows[name].append({"category": q.category, **row})
                finally:
                    for (module, attr), value in old.items():
                        setattr(module, attr, value)
        finally:
            await service.close()
        print(f"{conversation.cid} done", file=sys.stderr)
    for name, mine in rows.items():
        cats = sorted({r["category"] for r in mine})
        parts = [f"{c} {mean([r['r@10'] for r in mine if r['category'] == c]):.3f}" for c in cats]
        overall = f"r@10 {mean([r['r@10'] for r in mine]):.3f}  r@5 {mean([r['r@5'] for r in mine]):.3f}"
        print(f"{name:>28}  {overall}  {'  '.join(parts)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA_DIR / "realtalk_dev.json.gz")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/conv-tune"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--variant", action="append", default=[], help="name:module.NAME=value;module.NAME=value")
    args = parser.parse_args()
    named = [v.split(":", 1) for v in args.variant or ["base:"]]
    variants = [(name, [a for a in assignments.split(";") if a]) for name, assignments in named]
    args.cache.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(load_conversations(args.data)[: args.limit], args.cache, variants))


if __name__ == "__main__":
    main()
