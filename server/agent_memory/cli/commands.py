"""The CLI's commands that store and search (remember, recall, recent, summarize, forget), as tables or JSON.

Indexing: a command that only stores (`remember`, `import --no-index`) returns once SQLite has committed;
the rows stay pending and a running server (its indexer picks up other processes' rows), the next
`recall`/`reindex`, or the next server start indexes them. `import` and `remember --wait-index` load the
model and index what they wrote before exiting; `recall` waits (bounded) for the model and the index.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from agent_memory.cli import admin, facts, operate, signin
from agent_memory.cli import output as out
from agent_memory.cli.lifecycle import NO_MODEL, index, opened
from agent_memory.config import Settings
from agent_memory.errors import InvalidInput, NotFound


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the parsed command; return the exit code."""
    return await HANDLERS[args.command](args, settings)


def _json_object(text: str | None, flag: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{flag} is not valid JSON: {exc.msg}.") from None
    if not isinstance(value, dict):
        raise InvalidInput(f'{flag} must be a JSON object such as {{"source": "notes"}}.')
    return value


def _when(stamp: str) -> str:
    return stamp[:16].replace("T", " ")


async def remember(args: argparse.Namespace, settings: Settings) -> int:
    """Store one memory."""
    text = sys.stdin.read() if args.content == "-" else args.content
    metadata = _json_object(args.metadata, "--metadata")
    async with opened(settings, None if args.wait_index else NO_MODEL) as service:
        result = await service.remember(
            text,
            role=args.role,
            tags=args.tags,
            session_id=args.session,
            metadata=metadata,
            created_at=args.created_at,
            supersedes=args.supersedes,
            expires_at=args.expires_at,
            ttl=args.ttl,
        )
        problem = await index(service) if args.wait_index else "not waited for"
    if args.json:
        out.emit_json({**result.model_dump(exclude={"note"}), "indexed": problem is None})
    else:
        verb = "already stored as" if result.duplicate else "stored"
        out.line(f"{verb} {result.id} ({result.created_at})")
        for old in result.superseded:
            out.line(f"superseded {old}")
        for near in result.similar:
            out.line(f"similar: {near.id} {near.content[:60]!r} (--supersedes {near.id} if this replaces it)")
        if problem and args.wait_index:
            out.line(f"not indexed yet: {problem}")
    return 0


async def recall(args: argparse.Namespace, settings: Settings) -> int:
    """Search memories; waits (bounded) for the model unless --keyword."""
    keyword = "keyword-only search was asked for (--keyword)" if args.keyword else None
    async with opened(replace(settings, model_wait_seconds=0 if keyword else args.wait), keyword) as service:
        if not keyword:
            await index(service, timeout=args.wait)
        result = await service.recall(
            args.query,
            limit=args.limit,
            tags=args.tags,
            session_id=args.session,
            since=args.since,
            until=args.until,
            max_tokens=args.max_tokens,
            as_of=args.as_of,
            include_superseded=args.include_superseded,
        )
    if args.json:
        out.emit_json(result)
        return 0
    rows = [
        (
            h.score,
            _when(h.created_at),
            h.role,
            h.id,
            h.content + (f" [superseded by {h.superseded_by}]" if h.superseded_by else ""),
        )
        for h in result.hits
    ]
    out.table(["score", "when", "role", "id", "content"], rows)
    out.line(
        f"{len(result.hits)} hits, {result.mode} search" + (f", {result.omitted} over budget" * bool(result.omitted))
    )
    if result.note and not keyword:
        out.line(result.note)
    return 0


async def recent(args: argparse.Namespace, settings: Settings) -> int:
    """List the newest memories."""
    async with opened(settings) as service:
        result = await service.load_recent(limit=args.limit, session_id=args.session)
    if args.json:
        out.emit_json(result)
    else:
        rows = [(_when(m.created_at), m.role, m.session_id, m.id, m.content) for m in result.messages]
        out.table(["when", "role", "session", "id", "content"], rows)
    return 0


async def summarize(args: argparse.Namespace, settings: Settings) -> int:
    """Summarise history (Anthropic when a key is set, else the local extractive summary)."""
    async with opened(settings) as service:
        result = await service.summarize_history(
            session_id=args.session, limit=args.limit, since=args.since, focus=args.focus
        )
    if args.json:
        out.emit_json(result)
        return 0
    out.line(result.summary)
    out.line(f"\n({result.backend} summary of {result.covers.count:,} messages, {result.new_messages:,} new)")
    if result.note:
        out.line(result.note)
    return 0


async def forget(args: argparse.Namespace, settings: Settings) -> int:
    """Delete memories; loads the model (bounded) so their vectors leave the index too."""
    done: list[dict[str, Any]] = []
    async with opened(settings, None) as service:
        await service.wait_index_open(args.wait)
        for memory_id in args.ids:
            try:
                await service.forget(memory_id)
                done.append({"id": memory_id, "deleted": True})
            except NotFound as exc:
                done.append({"id": memory_id, "deleted": False, "error": str(exc)})
    if args.json:
        out.emit_json(done)
    for item in [] if args.json else done:
        out.line(f"forgot {item['id']}" if item["deleted"] else f"not found: {item['id']}")
    return 0 if all(item["deleted"] for item in done) else 1


HANDLERS: dict[str, Callable[[argparse.Namespace, Settings], Awaitable[int]]] = {
    "remember": remember,
    "recall": recall,
    "recent": recent,
    "summarize": summarize,
    "forget": forget,
    "export": admin.export,
    "import": admin.import_,
    "reindex": admin.reindex,
    "stats": admin.stats,
    "doctor": admin.doctor,
    "user": signin.user,
    "token": signin.token,
    "history": facts.history,
    "tidy": facts.tidy,
    "backup": operate.backup,
    "restore": operate.restore,
    "migrate": operate.migrate,
}
