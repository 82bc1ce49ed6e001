"""Stop and pre-compact: store the transcript's turns added since the last capture, each exactly once.

A cursor file per transcript remembers how far the last capture read, so a long session is not re-read at
every stop; the turns' stable ids (see conversations/turns.py) make a repeat harmless when the cursor is lost
or two hooks run at once. Writes go through the service (checked, scrubbed, one transaction), without the
model: a running server's indexer, or the next start, indexes them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

from agent_memory.config import Settings
from agent_memory.conversations import claude_code
from agent_memory.conversations.memory import as_memory
from agent_memory.conversations.turns import Turn
from agent_memory.service import MemoryService

CURSOR_DIR = "hook-cursors"


def capture(settings: Settings, transcript: Path, namespace: str) -> int:
    """Store the new turns of a Claude Code transcript in `namespace`; return how many were new."""
    cursor = settings.data_dir / CURSOR_DIR / (hashlib.sha256(str(transcript).encode()).hexdigest()[:32] + ".json")
    start = _offset(cursor, transcript)
    with transcript.open("rb") as file:
        file.seek(start)
        data = file.read()
    end = data.rfind(b"\n") + 1  # a line still being written is read next time
    lines = data[:end].decode("utf-8", errors="replace").splitlines()
    turns = [t for t in claude_code.read_lines(lines, lambda _: namespace) if isinstance(t, Turn)]
    stored = asyncio.run(_store(settings, turns, namespace)) if turns else 0
    if settings.data_dir.is_dir():
        _save(cursor, transcript, start + end)
    return stored


async def _store(settings: Settings, turns: list[Turn], namespace: str) -> int:
    service = await MemoryService.open(settings, without_model="hooks store turns; a server indexes them")
    try:
        result = await service.remember_many([as_memory(t, namespace) for t in turns])
    finally:
        await service.close()
    return result.stored


def _offset(cursor: Path, transcript: Path) -> int:
    """Return where the last capture stopped; 0 when the transcript is new, replaced or shorter."""
    try:
        saved = json.loads(cursor.read_text())
        stat = transcript.stat()
    except (OSError, ValueError):
        return 0
    if not isinstance(saved, dict) or saved.get("inode") != stat.st_ino or not isinstance(saved.get("offset"), int):
        return 0
    offset: int = saved["offset"]
    return offset if 0 <= offset <= stat.st_size else 0


def _save(cursor: Path, transcript: Path, offset: int) -> None:
    cursor.parent.mkdir(mode=0o700, exist_ok=True)
    temporary = cursor.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"offset": offset, "inode": transcript.stat().st_ino, "path": str(transcript)}))
    temporary.replace(cursor)
