"""The CLI's part of facts that change: `history ID` prints a memory's supersede chain, oldest first."""

from __future__ import annotations

import argparse

from agent_memory.cli import output as out
from agent_memory.cli.lifecycle import opened
from agent_memory.config import Settings


def add_flags(cmd: dict[str, argparse.ArgumentParser]) -> None:
    """Add the flags of supersede, expiry and looking back to remember, recall and history."""
    p = cmd["remember"]
    p.add_argument("--supersedes", action="append", metavar="ID", help="id of a memory this one replaces; repeat")
    p.add_argument("--expires-at", help="when it stops being recalled (ISO 8601)")
    p.add_argument("--ttl", type=float, help="seconds until it stops being recalled")
    p = cmd["recall"]
    p.add_argument("--as-of", help="answer with what was current at this ISO 8601 date/time")
    p.add_argument("--include-superseded", action="store_true", help="also show memories newer ones replaced")
    cmd["history"].add_argument("id", metavar="ID")
    cmd["tidy"].add_argument("--apply", action="store_true", help="supersede the twins (never deletes) and purge")


async def history(args: argparse.Namespace, settings: Settings) -> int:
    """Print a memory's chain."""
    async with opened(settings) as service:
        chain = await service.history(args.id)
    if args.json:
        out.emit_json([m.model_dump(mode="json") for m in chain])
        return 0
    rows = [
        (m.created_at[:16].replace("T", " "), m.id, m.superseded_by or "current", m.namespace, m.content) for m in chain
    ]
    out.table(["when", "id", "superseded by", "namespace", "content"], rows)
    return 0


async def tidy(args: argparse.Namespace, settings: Settings) -> int:
    """Report (and with --apply fold) near-duplicate clusters and expired memories; a dry run by default."""
    async with opened(settings) as service:
        report = await service.tidy(apply=args.apply)
    if args.json:
        out.emit_json(report)
        return 0
    for cluster in report.clusters:
        out.line(f"keep {cluster[0].id} {cluster[0].content[:70]!r}")
        for twin in cluster[1:]:
            out.line(f"  twin {twin.id} {twin.content[:70]!r}")
    verb = "folded" if report.applied else "would fold (dry run; --apply to do it)"
    twins = sum(len(c) - 1 for c in report.clusters)
    out.line(
        f"{len(report.clusters)} clusters in {report.namespace!r}, {verb} {twins} memories; {report.expired} expired"
    )
    return 0
