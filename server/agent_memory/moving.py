"""Copy every memory and summary of one store into another (`agent-memory migrate --to`), through MemoryStore only.

Written against the store protocol (export_page, existing_ids, insert_many, summaries), so it copies between any
two backends. Memories keep their ids, users, namespaces, sessions, roles, tags, metadata, times, expiry and
supersede links. It is resumable and idempotent: ids already in the target are skipped (a copy cut short goes
on where it stopped), and a summary whose text the target already holds under the same key is not saved again.
At the end the memories per user and namespace are counted on both sides.

The target's vector index is not copied: it is derived, and the first server on the target embeds every
memory (they arrive pending). Conversation context (keyword search reading a turn with the one before it) is
not carried by export_page: copied turns are searched alone. OAuth users and grants are not copied either.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from agent_memory.config import Settings
from agent_memory.errors import InvalidInput
from agent_memory.models import Memory
from agent_memory.store.protocol import MemoryStore
from agent_memory.store.rows import NewRow
from agent_memory.store.sqlite import SQLiteStore
from agent_memory.write.prepare import content_hash

PAGE = 500
POSTGRES_SCHEMES = ("postgresql://", "postgres://")

Advance = Callable[[int], None]


@dataclass
class CopyReport:
    """What a copy did, and how the two stores compare afterwards."""

    memories: int = 0  # read from the source
    copied: int = 0
    already_there: int = 0  # the same id was in the target (a resumed or repeated copy)
    same_content: int = 0  # the target held the same text in the same scope under another id
    summaries: int = 0
    # (user, namespace) whose count in the target is below the source's: "user/namespace: source N, target M".
    mismatches: list[str] = field(default_factory=list)


def is_postgres(location: str) -> bool:
    """Return True for a Postgres connection URL."""
    return location.startswith(POSTGRES_SCHEMES)


async def open_store(location: str) -> MemoryStore:
    """Open the store at a Postgres URL, an SQLite file, or a data dir (its memory.sqlite3)."""
    if is_postgres(location):
        try:
            postgres = importlib.import_module("agent_memory.store.postgres")
        except ImportError:  # psycopg is an optional extra
            raise InvalidInput("Postgres needs psycopg: pip install 'agent-memory[postgres]'.") from None
        store: MemoryStore = await postgres.PostgresStore.open(location)
        return store
    return await SQLiteStore.open(sqlite_file(location))


def sqlite_file(location: str) -> Path:
    """Return the SQLite file a location names: the file itself, or a data dir's memory.sqlite3 (created)."""
    path = Path(location.removeprefix("sqlite:///")).expanduser()
    if path.is_dir() or not path.suffix:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = path / "memory.sqlite3"
    return path


def source_location(settings: Settings) -> str:
    """Return where the configured store lives: the database URL, else the data dir's SQLite file."""
    return settings.database_url or str(settings.sqlite_path)


async def copy_store(source: MemoryStore, target: MemoryStore, advance: Advance | None = None) -> CopyReport:
    """Copy every memory, then every summary, from `source` into `target`; count both sides at the end."""
    report = CopyReport()
    after = 0
    while page := await source.export_page(None, None, after, PAGE):
        after = page[-1][0]
        present = await target.existing_ids([m.id for _, _, m in page])
        report.memories += len(page)
        rows = [_row(owner, m) for _, owner, m in page if m.id not in present]
        report.already_there += len(page) - len(rows)
        if rows:
            inserted = await target.insert_many(rows)
            report.same_content += sum(i.duplicate for i in inserted)
            report.copied += sum(not i.duplicate for i in inserted)
        if advance:
            advance(len(page))
    report.summaries = await _copy_summaries(source, target)
    report.mismatches = await _compare(source, target)
    return report


async def _copy_summaries(source: MemoryStore, target: MemoryStore) -> int:
    """Copy summaries the target lacks (same key and text); return how many were saved."""
    saved, after = 0, 0
    while page := await source.summaries.export_page(after, PAGE):
        after = page[-1][0]
        for _, key, summary in page:
            held = await target.summaries.latest(key.user, key.namespace, key.session_key, key.focus)
            if all(s.text != summary.text for s in held):
                await target.summaries.save(key.user, key.namespace, key.session_key, key.focus, summary)
                saved += 1
    return saved


async def _compare(source: MemoryStore, target: MemoryStore) -> list[str]:
    """Return every (user, namespace) holding fewer memories in the target than in the source."""

    async def per_scope(store: MemoryStore) -> dict[tuple[str, str], int]:
        totals: dict[tuple[str, str], int] = {}
        for user, namespace, _role, memories, _pending in await store.counts():
            totals[(user, namespace)] = totals.get((user, namespace), 0) + memories
        return totals

    had, has = await per_scope(source), await per_scope(target)
    return [
        f"{user}/{namespace}: source {n:,}, target {has.get((user, namespace), 0):,}"
        for (user, namespace), n in sorted(had.items())
        if has.get((user, namespace), 0) < n
    ]


def _row(user: str, memory: Memory) -> NewRow:
    """Return a stored memory as a row to insert as it is: same id, times, expiry and supersede link."""
    return NewRow(
        id=memory.id,
        user=user,
        namespace=memory.namespace,
        session_id=memory.session_id,
        role=memory.role,
        content=memory.content,
        content_hash=content_hash(memory.role, memory.content),
        tags=tuple(memory.tags),
        metadata=dict(memory.metadata),
        created_at=datetime.fromisoformat(memory.created_at),
        expires_at=_moment(memory.expires_at),
        superseded_by=memory.superseded_by,
        superseded_at=_moment(memory.superseded_at),
    )


def _moment(stamp: str | None) -> datetime | None:
    return None if stamp is None else datetime.fromisoformat(stamp)
