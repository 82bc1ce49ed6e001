"""The CLI's operations on a whole store: `backup PATH`, `restore PATH` and `migrate --to URL`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from agent_memory import backups, moving
from agent_memory.cli import importers
from agent_memory.cli import output as out
from agent_memory.cli.lifecycle import NO_MODEL, opened
from agent_memory.cli.transfer import export_jsonl, import_text
from agent_memory.config import Settings
from agent_memory.errors import InvalidInput

COMMANDS: dict[str, tuple[str, str]] = {
    "backup": (
        "copy the store to a file while servers keep writing (SQLite: a database file; Postgres: a JSONL export)",
        "agent-memory backup ~/backups/memory-$(date +%F).sqlite3",
    ),
    "restore": (
        "replace the store with a backup (SQLite file or JSONL export); --force to overwrite memories",
        "agent-memory restore ~/backups/memory-2026-11-30.sqlite3 --force",
    ),
    "migrate": (
        "copy every memory and summary into another store (a data dir, an SQLite file or a Postgres URL); resumable",
        "agent-memory migrate --to postgresql://agent@db.internal/memory\n  agent-memory migrate --to /srv/new-data",
    ),
}


def add_flags(cmd: dict[str, argparse.ArgumentParser]) -> None:
    """Add the flags of backup, restore and migrate."""
    cmd["backup"].add_argument("path", help="the backup file to write (replaced if it exists)")
    p = cmd["restore"]
    p.add_argument("path", help="a backup file written by `agent-memory backup` (or an export)")
    p.add_argument("--force", action="store_true", help="replace a store that holds memories")
    cmd["migrate"].add_argument("--to", required=True, metavar="URL", help="postgresql://..., a data dir or a file")


def _database_url(settings: Settings) -> str | None:
    return settings.database_url or None


async def backup(args: argparse.Namespace, settings: Settings) -> int:
    """Back the store up: SQLite's online backup, or on Postgres the JSONL export."""
    if _database_url(settings) is None:
        report = await backups.backup_sqlite(settings, Path(args.path))
        written, kind = report.memories, "SQLite backup"
    else:
        written, kind = await _export(settings, _path(args.path)), "JSONL export"
    if args.json:
        out.emit_json({"backup": args.path, "format": kind, "memories": written})
    else:
        out.note(f"backed up {written:,} memories to {args.path} ({kind})")
    return 0


async def _export(settings: Settings, target: Path) -> int:
    """Write every memory as the JSONL export (written whole, then renamed into place)."""
    partial = target.with_name(target.name + ".partial")
    async with opened(settings) as service:
        progress = out.Progress("backup", await service.count_memories())
        try:
            with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                written = await export_jsonl(service, f, user=None, namespace=None, advance=progress.advance)
                os.fsync(f.fileno())
        finally:
            progress.close()
    partial.replace(target)
    return written


async def restore(args: argparse.Namespace, settings: Settings) -> int:
    """Restore a backup: an SQLite file into the data dir, a JSONL export into any store."""
    path = _path(args.path)
    if backups.is_sqlite_file(path):
        if _database_url(settings) is not None:
            raise InvalidInput(
                "This is an SQLite backup and the store is Postgres: restore it into a data dir "
                "(`agent-memory restore FILE --data-dir DIR`), then `agent-memory migrate --to URL --data-dir DIR`."
            )
        report = await backups.restore_sqlite(settings, path, force=args.force)
        restored = report.memories
    else:
        restored = await _import(settings, path, force=args.force)
    if args.json:
        out.emit_json({"restored": restored, "from": args.path, "reindex": True})
    else:
        out.note(f"restored {restored:,} memories from {args.path}; the vector index is rebuilt by the next server")
    return 0


async def _import(settings: Settings, path: Path, *, force: bool) -> int:
    """Import a JSONL export into the store, refusing a store that holds memories unless `force`."""
    text = _text(path)
    if importers.detect(text) != "agent-memory":
        raise InvalidInput(f"{path} is neither an SQLite backup nor an agent-memory export.")
    async with opened(settings, NO_MODEL) as service:
        present = await service.count_memories()
        if present and not force:
            raise InvalidInput(
                f"The store holds {present:,} memories: restoring adds the backup's to them. "
                "Run again with --force to do it anyway."
            )
        progress = out.Progress("restore", importers.count(text, "agent-memory"))
        try:
            report = await import_text(service, text, "agent-memory", advance=progress.advance)
        finally:
            progress.close()
    return report.stored + report.duplicates


async def migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Copy the configured store into the one at --to; verify the counts per user and namespace."""
    source_at = moving.source_location(settings)
    if not moving.is_postgres(args.to) and _same_file(source_at, args.to):
        raise InvalidInput(f"--to {args.to} is the store being copied: name another data dir, file or URL.")
    source = await moving.open_store(source_at)
    try:
        target = await moving.open_store(args.to)
        try:
            progress = out.Progress("migrate", await source.count_scope(None, None))
            try:
                report = await moving.copy_store(source, target, progress.advance)
            finally:
                progress.close()
        finally:
            await target.close()
    finally:
        await source.close()
    if args.json:
        out.emit_json({"to": _redacted(args.to), **report.__dict__})
    else:
        out.note(
            f"migrated to {_redacted(args.to)}: {report.copied:,} copied, {report.already_there:,} already there, "
            f"{report.same_content:,} same content under another id, {report.summaries:,} summaries"
        )
        for problem in report.mismatches:
            out.note(f"count mismatch: {problem}")
    return 1 if report.mismatches else 0


def _path(name: str) -> Path:
    """Return the file a command names, refusing what is not a file."""
    path = Path(name).expanduser()
    if path.exists() and not path.is_file():
        raise InvalidInput(f"{name} is not a file.")
    return path


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is neither an SQLite backup nor an agent-memory export.") from None


def _same_file(source: str, target: str) -> bool:
    """Return True when `target` names the source's SQLite file or its data dir."""
    if moving.is_postgres(source):
        return False
    path = Path(target).expanduser()
    candidate = path / "memory.sqlite3" if path.is_dir() else path
    return candidate.exists() and candidate.resolve() == Path(source).resolve()


def _redacted(url: str) -> str:
    """Return a location without the password a URL may carry (it is printed)."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"
