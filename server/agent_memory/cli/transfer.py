"""Export to and import from JSONL files, in batches through the service's bulk write path.

The export is one header line, then one {"type": "memory", ...} line per memory with everything needed
to reproduce it: id, user, namespace, session, role, content, tags, metadata, created_at. Importing it
keeps all of these, so a round trip into an empty data dir reproduces the store, and importing the
same file twice changes nothing (the content hash and the kept ids make repeats duplicates).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from pydantic import BaseModel, Field

from agent_memory import __version__
from agent_memory.cli import importers
from agent_memory.cli.chats import ChatOptions
from agent_memory.cli.importers import Format, Parsed
from agent_memory.conversations.turns import ToolPolicy
from agent_memory.models import Memory, NewMemory
from agent_memory.service import MemoryService

EXPORT_FORMAT = "agent-memory"
EXPORT_VERSION = 1
PAGE = 1_000
BATCH = 500
MAX_REPORTED = 20

Advance = Callable[[int], None]


class ImportReport(BaseModel):
    """What an import read, stored, found already present and skipped (with reasons)."""

    format: Format
    read: int = 0
    stored: int = 0
    duplicates: int = Field(default=0, description="Already present (same content in the same scope).")
    skipped: int = 0
    redacted: int = Field(default=0, description="Memories stored with secrets masked.")
    problems: list[str] = Field(default_factory=list, description=f"The first {MAX_REPORTED} skipped items.")


def header_line(user: str | None, namespace: str | None) -> str:
    """Return the JSONL header of an export of this scope (None: every user, every namespace)."""
    header = {
        "type": "header",
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "agent_memory": __version__,
        "scope": {"user": user, "namespace": namespace},
    }
    return json.dumps(header) + "\n"


def memory_line(user: str, memory: Memory) -> str:
    """Return one memory of an export as a JSONL line."""
    record = {"type": "memory", "user": user, **memory.model_dump(mode="json")}
    return json.dumps(record, ensure_ascii=False) + "\n"


async def export_jsonl(
    service: MemoryService, out: TextIO, *, user: str | None, namespace: str | None, advance: Advance | None = None
) -> int:
    """Write memories (all, or one user's and/or namespace's) as JSONL; return how many."""
    out.write(header_line(user, namespace))
    written, after = 0, 0
    while page := await service.export_page(user=user, namespace=namespace, after=after, limit=PAGE):
        for rowid, owner, memory in page:
            out.write(memory_line(owner, memory))
            after = rowid
        written += len(page)
        if advance:
            advance(len(page))
    out.flush()
    return written


async def count_export(service: MemoryService, *, user: str | None, namespace: str | None) -> int:
    """Return how many memories an export with these filters writes (for progress)."""
    return await service.count_memories(user=user, namespace=namespace)


async def import_text(
    service: MemoryService,
    text: str,
    fmt: Format,
    *,
    user: str | None = None,
    namespace: str | None = None,
    advance: Advance | None = None,
    tools: ToolPolicy = "skip",
) -> ImportReport:
    """Import a file's text; `user`/`namespace` override what the records say (foreign formats use the settings)."""
    report = ImportReport(format=fmt)
    batch: list[Parsed] = []
    done = [0]  # the last record (line or item number) reported to `advance`

    async def flush() -> None:
        owner = batch[0].user
        scoped = service.scoped(owner) if owner and owner != service.settings.user else service
        items = [_into(p.memory, namespace) for p in batch]
        result = await scoped.remember_many(items)
        report.stored += result.stored
        report.duplicates += result.duplicates
        report.redacted += sum(bool(item.redacted) for item in result.items)
        for parsed, item in zip(batch, result.items, strict=True):
            if item.error:
                _skip(report, parsed.line, item.error)
        if advance:
            advance(batch[-1].line - done[0])
        done[0] = batch[-1].line
        batch.clear()

    for entry in importers.read(text, fmt, ChatOptions(service.settings, tools)):
        if isinstance(entry, importers.Skipped):
            _skip(report, entry.line, entry.reason)
            continue
        report.read += 1
        parsed = entry if user is None else Parsed(entry.line, entry.memory, user)
        if batch and (len(batch) >= BATCH or batch[-1].user != parsed.user):
            await flush()
        batch.append(parsed)
    if batch:
        await flush()
    return report


def _into(memory: NewMemory, namespace: str | None) -> NewMemory:
    return memory if namespace is None else memory.model_copy(update={"namespace": namespace})


def _skip(report: ImportReport, line: int, reason: str) -> None:
    report.skipped += 1
    if len(report.problems) < MAX_REPORTED:
        report.problems.append(f"item {line}: {reason}")
