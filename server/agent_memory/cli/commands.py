"""The CLI's commands: each opens the service, calls a use case and prints a table (or JSON with --json).

Indexing: a command that only stores (`remember`, `import --no-index`) returns once SQLite has committed;
the rows stay pending and a running server (its indexer picks up other processes' rows), the next
`recall`/`reindex`, or the next server start indexes them. `import` and `remember --wait-index` load the
model and index what they wrote before exiting; `recall` waits (bounded) for the model and the index.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from agent_memory.cli import importers
from agent_memory.cli import output as out
from agent_memory.cli.transfer import export_jsonl, import_text
from agent_memory.config import Settings
from agent_memory.errors import InvalidInput, NotFound
from agent_memory.service import MemoryService
from agent_memory.service import doctor as doctor_checks

NO_MODEL = "this command does not load the model"


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the parsed command; return the exit code."""
    return await HANDLERS[args.command](args, settings)


@asynccontextmanager
async def _opened(settings: Settings, without_model: str | None = NO_MODEL) -> AsyncIterator[MemoryService]:
    service = await MemoryService.open(settings, without_model=without_model)
    try:
        yield service
    finally:
        await service.close()


async def _index(service: MemoryService, timeout: float | None = None) -> str | None:
    """Wait until every pending memory is indexed, with a progress bar; return the problem if it cannot be."""
    bar: out.Progress | None = None

    def report(done: int, total: int) -> None:
        nonlocal bar
        bar = bar or out.Progress("index", total)
        bar.update(done)

    try:
        return await service.wait_indexed(timeout, report)
    finally:
        if bar is not None:
            bar.close()


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


def _read_input(name: str) -> str:
    try:
        return sys.stdin.read() if name == "-" else Path(name).expanduser().read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{name} is not UTF-8 text.") from None


def _private_file(name: str) -> tuple[Path, Path, TextIO]:
    """Open `name.partial` readable by the user only (an export holds private memories)."""
    target = Path(name).expanduser()
    partial = target.with_name(target.name + ".partial")
    return target, partial, os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w")


def _when(stamp: str) -> str:
    return stamp[:16].replace("T", " ")


async def remember(args: argparse.Namespace, settings: Settings) -> int:
    """Store one memory."""
    text = sys.stdin.read() if args.content == "-" else args.content
    metadata = _json_object(args.metadata, "--metadata")
    async with _opened(settings, None if args.wait_index else NO_MODEL) as service:
        result = await service.remember(
            text,
            role=args.role,
            tags=args.tags,
            session_id=args.session,
            metadata=metadata,
            created_at=args.created_at,
        )
        problem = await _index(service) if args.wait_index else "not waited for"
    if args.json:
        out.emit_json({**result.model_dump(exclude={"note"}), "indexed": problem is None})
    else:
        verb = "already stored as" if result.duplicate else "stored"
        out.line(f"{verb} {result.id} ({result.created_at})")
        if problem and args.wait_index:
            out.line(f"not indexed yet: {problem}")
    return 0


async def recall(args: argparse.Namespace, settings: Settings) -> int:
    """Search memories; waits (bounded) for the model unless --keyword."""
    keyword = "keyword-only search was asked for (--keyword)" if args.keyword else None
    async with _opened(replace(settings, model_wait_seconds=0 if keyword else args.wait), keyword) as service:
        if not keyword:
            await _index(service, timeout=args.wait)
        result = await service.recall(
            args.query,
            limit=args.limit,
            tags=args.tags,
            session_id=args.session,
            since=args.since,
            until=args.until,
            max_tokens=args.max_tokens,
        )
    if args.json:
        out.emit_json(result)
        return 0
    rows = [(h.score, _when(h.created_at), h.role, h.id, h.content) for h in result.hits]
    out.table(["score", "when", "role", "id", "content"], rows)
    out.line(
        f"{len(result.hits)} hits, {result.mode} search" + (f", {result.omitted} over budget" * bool(result.omitted))
    )
    if result.note and not keyword:
        out.line(result.note)
    return 0


async def recent(args: argparse.Namespace, settings: Settings) -> int:
    """List the newest memories."""
    async with _opened(settings) as service:
        result = await service.load_recent(limit=args.limit, session_id=args.session)
    if args.json:
        out.emit_json(result)
    else:
        rows = [(_when(m.created_at), m.role, m.session_id, m.id, m.content) for m in result.messages]
        out.table(["when", "role", "session", "id", "content"], rows)
    return 0


async def summarize(args: argparse.Namespace, settings: Settings) -> int:
    """Summarise history (Anthropic when a key is set, else the local extractive summary)."""
    async with _opened(settings) as service:
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
    async with _opened(settings, None) as service:
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


async def export(args: argparse.Namespace, settings: Settings) -> int:
    """Write memories as JSONL to a file (written whole, then renamed into place) or stdout."""
    user, namespace = getattr(args, "user", None), getattr(args, "namespace", None)
    async with _opened(settings) as service:
        progress = out.Progress("export", await service.count_memories(user=user, namespace=namespace))
        try:
            if args.output == "-":
                written = await export_jsonl(
                    service, sys.stdout, user=user, namespace=namespace, advance=progress.advance
                )
            else:
                target, partial, f = _private_file(args.output)
                with f:
                    written = await export_jsonl(service, f, user=user, namespace=namespace, advance=progress.advance)
                    os.fsync(f.fileno())
                partial.replace(target)
        finally:
            progress.close()
    summary = {"exported": written, "file": args.output, "user": user, "namespace": namespace}
    if args.json and args.output != "-":
        out.emit_json(summary)
    else:
        out.note(f"exported {written:,} memories to {'stdout' if args.output == '-' else args.output}")
    return 0


async def import_(args: argparse.Namespace, settings: Settings) -> int:
    """Import a JSONL export, a server-memory file or a mem0 export; index what was stored."""
    text = _read_input(args.file)
    fmt = importers.detect(text) if args.format == "auto" else args.format
    async with _opened(settings, NO_MODEL if args.no_index else None) as service:
        progress = out.Progress("import", importers.count(text, fmt))
        try:
            report = await import_text(
                service,
                text,
                fmt,
                user=getattr(args, "user", None),
                namespace=getattr(args, "namespace", None),
                advance=progress.advance,
            )
        finally:
            progress.close()
        problem = await _index(service) if report.stored and not args.no_index else None
    indexed = not args.no_index and problem is None
    if args.json:
        out.emit_json({**report.model_dump(mode="json"), "indexed": indexed, "index_problem": problem})
    else:
        out.line(
            f"{args.file} ({fmt}): {report.read:,} read, {report.stored:,} stored, "
            f"{report.duplicates:,} already present, {report.skipped:,} skipped"
        )
        if report.redacted:
            out.line(f"  {report.redacted:,} stored with secrets masked (AGENT_MEMORY_SCRUB_SECRETS)")
        for line in report.problems:
            out.line(f"  skipped {line}")
        if problem:
            out.line(f"not indexed yet: {problem}")
        elif args.no_index:
            out.line("not indexed yet (--no-index): a running server or `agent-memory reindex` indexes them")
    return 1 if report.read == 0 and report.skipped else 0


async def reindex(args: argparse.Namespace, settings: Settings) -> int:
    """Re-embed every memory and rebuild the vector index."""
    async with _opened(settings, None) as service:
        bar: out.Progress | None = None

        def report(done: int, total: int) -> None:
            nonlocal bar
            bar = bar or out.Progress("index", total)
            bar.update(done)

        try:
            total, problem = await service.reindex(report)
        finally:
            if bar is not None:
                bar.close()
    if problem:
        out.note(f"agent-memory: {problem}")
        return 1
    if args.json:
        out.emit_json({"reindexed": total, "vector_dir": str(settings.vector_location)})
    else:
        out.line(f"re-indexed {total:,} memories into {settings.vector_location}")
    return 0


async def stats(args: argparse.Namespace, settings: Settings) -> int:
    """Show what the store holds."""
    async with _opened(settings) as service:
        found = await service.stats()
    if args.json:
        out.emit_json(found)
        return 0
    rows_in_index = "not built" if found.vector_rows is None else f"{found.vector_rows:,} rows"
    out.line(f"data dir   {found.data_dir}")
    out.line(
        f"disk       {out.size(found.sqlite_bytes + found.vector_bytes)} (SQLite {out.size(found.sqlite_bytes)}, "
        f"vectors {out.size(found.vector_bytes)})"
    )
    out.line(f"memories   {found.memories:,} ({found.pending:,} waiting to be indexed), {found.summaries:,} summaries")
    out.line(f"index      {rows_in_index}" + (f" in {found.vector_table}" if found.vector_table else ""))
    if found.groups:
        roles = ["user", "assistant", "system", "fact"]
        out.line()
        out.table(
            ["user", "namespace", *roles, "total", "pending"],
            [(g.user, g.namespace, *(g.roles.get(r, 0) for r in roles), g.total, g.pending) for g in found.groups],
            wrap_last=False,
        )
    return 0


async def doctor(args: argparse.Namespace, settings: Settings) -> int:
    """Check the setup read-only; exit 1 when something needs fixing."""
    checks = await asyncio.to_thread(doctor_checks, settings, check_model=not args.no_model)
    failed = any(c.status == "fail" for c in checks)
    if args.json:
        out.emit_json({"ok": not failed, "checks": [c.model_dump() for c in checks]})
    else:
        out.table(["", "check", "detail"], [(c.status.upper(), c.name, c.detail) for c in checks])
        for c in checks:
            if c.fix and c.status != "ok":
                out.line(f"fix {c.name}: {c.fix}")
        warned = sum(c.status == "warn" for c in checks)
        out.line("problems found" if failed else f"no problems ({warned} warnings)" if warned else "all checks passed")
    return 1 if failed else 0


HANDLERS: dict[str, Callable[[argparse.Namespace, Settings], Awaitable[int]]] = {
    "remember": remember,
    "recall": recall,
    "recent": recent,
    "summarize": summarize,
    "forget": forget,
    "export": export,
    "import": import_,
    "reindex": reindex,
    "stats": stats,
    "doctor": doctor,
}
