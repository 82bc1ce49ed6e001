"""Backup and restore of the SQLite source of truth, consistent while servers keep writing.

A backup is SQLite's online backup API run in one step: it reads the whole database inside one read
transaction, and in WAL mode readers never block writers, so servers keep writing while it copies and the copy
is the database as of one moment. (A stepwise backup restarts whenever another connection writes, and under a
steady stream of writes it might never finish.) The copy is written beside the target and renamed into place.

A restore copies a backup into the data dir through the same API (so the live -wal file is handled by SQLite),
refusing to overwrite memories unless forced. The vector index is derived: a restore marks every memory for
indexing again and drops the local index, which the next server (or `reindex`) rebuilds.

Postgres has its own tools (pg_dump / pg_restore, see docs/deploy.md); `agent-memory backup` on Postgres writes
the JSONL export instead, and `restore` of a JSONL file imports it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from agent_memory.config import Settings
from agent_memory.errors import InvalidInput
from agent_memory.store.sqlite import SQLiteStore

SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_MS = 30_000


@dataclass(frozen=True)
class BackupReport:
    """What a backup or restore copied."""

    path: str
    memories: int
    bytes: int


def is_sqlite_file(path: Path) -> bool:
    """Return True when the file is an SQLite database (else it is taken for a JSONL export)."""
    with path.open("rb") as f:
        return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


async def backup_sqlite(settings: Settings, target: Path) -> BackupReport:
    """Copy the live database to `target` (written beside it, then renamed), consistent as of one moment."""
    return await asyncio.to_thread(_backup, settings, target)


def _backup(settings: Settings, target: Path) -> BackupReport:
    source_path = settings.sqlite_path
    if not source_path.exists():
        raise InvalidInput(f"There is no store to back up in {settings.data_dir}.")
    target = target.expanduser()
    if target.is_dir():
        raise InvalidInput(f"{target} is a directory: name the backup file, e.g. {target / 'memory-backup.sqlite3'}.")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    # Private like the store itself: a backup holds every memory.
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=BUSY_MS / 1000)
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)  # one step: one read transaction over the whole copy
            copy.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
            memories = _count(copy)
        finally:
            copy.close()
    finally:
        source.close()
    with partial.open("rb+") as f:
        os.fsync(f.fileno())
    partial.replace(target)
    return BackupReport(str(target), memories, target.stat().st_size)


async def restore_sqlite(settings: Settings, backup: Path, *, force: bool) -> BackupReport:
    """Copy a backup into the data dir's database (stop its servers first); refuse to overwrite memories unless `force`.

    The vector index is derived: it is marked for rebuilding from the restored memories.
    """
    report = await asyncio.to_thread(_restore, settings, backup, force)
    await mark_for_reindex(settings)
    return report


def _restore(settings: Settings, backup: Path, force: bool) -> BackupReport:
    backup = backup.expanduser()
    _check_backup(backup)
    target = settings.sqlite_path
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    live = sqlite3.connect(target, timeout=BUSY_MS / 1000)
    try:
        present = _count(live) if _has_memories_table(live) else 0
        if present and not force:
            raise InvalidInput(
                f"{target} holds {present:,} memories: restoring would replace them. Stop the servers using it, "
                "back it up first if needed (`agent-memory backup FILE`), then run restore again with --force."
            )
        source = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
        try:
            source.backup(live)
        finally:
            source.close()
        memories = _count(live)
    finally:
        live.close()
    return BackupReport(str(target), memories, target.stat().st_size)


async def mark_for_reindex(settings: Settings) -> None:
    """Make the restored memories pending and drop the local vector index, so it is rebuilt from them."""
    store = await SQLiteStore.open(settings.sqlite_path)  # also migrates a backup made by an older version
    try:
        # Every memory pending: the indexer re-embeds them all (keyed upserts, so rows already there are replaced).
        await store.mark_all_pending()
    finally:
        await store.close()
    if settings.vector_uri is None and settings.vector_dir.exists():
        # Derived data of the memories just replaced: rebuilt from the restored ones.
        shutil.rmtree(settings.vector_dir)


def _check_backup(path: Path) -> None:
    """Refuse a file that is not a readable agent-memory SQLite backup, before touching the store."""
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file.")
    if not is_sqlite_file(path):
        raise InvalidInput(f"{path} is not an SQLite backup (a JSONL export is restored with `agent-memory import`).")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        ok = conn.execute("PRAGMA quick_check").fetchone()
        if not ok or ok[0] != "ok" or not _has_memories_table(conn):
            raise InvalidInput(f"{path} is damaged or is not an agent-memory backup.")
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"{path} cannot be read as a backup: {exc}.") from None
    finally:
        conn.close()


def _has_memories_table(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'memories'").fetchone()
    return row is not None


def _count(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT COUNT(*) FROM memories").fetchone()
    return int(row[0]) if row else 0
