"""The CLI's commands that move, rebuild and check the store: export, import, reindex, stats, doctor."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TextIO

from agent_memory.cli import chats, importers
from agent_memory.cli import output as out
from agent_memory.cli.lifecycle import NO_MODEL, index, opened, progress_bar
from agent_memory.cli.transfer import export_jsonl, import_text
from agent_memory.config import Settings
from agent_memory.errors import InvalidInput
from agent_memory.service import doctor as doctor_checks


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


async def export(args: argparse.Namespace, settings: Settings) -> int:
    """Write memories as JSONL to a file (written whole, then renamed into place) or stdout."""
    user, namespace = getattr(args, "user", None), getattr(args, "namespace", None)
    async with opened(settings) as service:
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
    """Import an export, a server-memory or mem0 file, or conversations; index what was stored."""
    text = _import_source(args.file)
    fmt = importers.detect(text) if args.format == "auto" else args.format
    async with opened(settings, NO_MODEL if args.no_index else None) as service:
        progress = out.Progress("import", importers.count(text, fmt))
        try:
            report = await import_text(
                service,
                text,
                fmt,
                user=getattr(args, "user", None),
                namespace=getattr(args, "namespace", None),
                advance=progress.advance,
                tools=getattr(args, "tools", "skip"),
            )
        finally:
            progress.close()
        problem = await index(service) if report.stored and not args.no_index else None
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


def _import_source(name: str) -> str:
    """Return the text to import: conversations from a directory or an export zip, else the file or stdin."""
    source = Path(name).expanduser()
    if name != "-" and (source.is_dir() or source.suffix == ".zip"):
        return chats.read_source(source)
    return _read_input(name)


async def reindex(args: argparse.Namespace, settings: Settings) -> int:
    """Re-embed every memory and rebuild the vector index."""
    async with opened(settings, None) as service:
        with progress_bar("index") as report:
            total, problem = await service.reindex(report)
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
    async with opened(settings) as service:
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
