"""The source of truth behind a protocol: what recall, the indexer and the service need from a store.

SQLite implements it today (store/sqlite.py); a Postgres implementation satisfies the same protocol. Every
value is bound as a parameter by the implementation; callers never build query text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from agent_memory.models import Memory, StoredSummary
from agent_memory.store.browse import BrowseStore
from agent_memory.store.oauth import OAuthStore
from agent_memory.store.rows import Filters, Inserted, Neighbours, NewRow, PendingRow, SummaryKey

# The settings key under which the store remembers which vector table its index rows live in.
VECTOR_TABLE_KEY = "vector_table"


class SummaryStore(Protocol):
    """Stored summaries with the memory ids each covers."""

    async def count(self) -> int:
        """Count stored summaries."""
        ...

    async def latest(self, user: str, namespace: str, session_key: str, focus: str) -> list[StoredSummary]:
        """Return the stored summaries for this key, newest first (a few)."""
        ...

    async def drop_covering(self, user: str, id: str) -> None:
        """Delete stored summaries that covered a forgotten memory."""
        ...

    async def save(self, user: str, namespace: str, session_key: str, focus: str, summary: StoredSummary) -> None:
        """Store a summary with the ids it covers."""
        ...

    async def export_page(self, after: int, limit: int) -> list[tuple[int, SummaryKey, StoredSummary]]:
        """Return (position, key, summary) after `after`, oldest first (for copying a store)."""
        ...


class MemoryStore(Protocol):
    """Memories, keyword search, the indexing bookkeeping, summaries and small settings."""

    @property
    def summaries(self) -> SummaryStore:
        """Return the summaries kept beside the memories."""
        ...

    @property
    def oauth(self) -> OAuthStore:
        """Return the users, OAuth clients, codes and tokens (sign-in over HTTP)."""
        ...

    @property
    def browse(self) -> BrowseStore:
        """Return the web page's read side: pages, counts per day and session, one memory's details."""
        ...

    async def close(self) -> None:
        """Release the connection."""
        ...

    async def insert_many(self, rows: Sequence[NewRow]) -> list[Inserted]:
        """Insert rows atomically, an exact repeat returning the stored memory; return one outcome per row."""
        ...

    async def delete(self, user: str, id: str, namespace: str | None = None) -> bool:
        """Delete one memory of this user (and namespace, when given); return whether it existed."""
        ...

    async def chain(self, user: str, id: str) -> list[Memory]:
        """Return the supersede chain a memory belongs to, oldest first (empty: no such memory)."""
        ...

    async def superseded_of(self, user: str, ids: Sequence[str]) -> dict[str, list[str]]:
        """Return, for each of these ids that replaced memories, the ids it replaced."""
        ...

    async def expired(self, now_ts: float, limit: int) -> list[tuple[str, str]]:
        """Return (user, id) of memories expired at `now_ts`, to purge."""
        ...

    async def add_tombstones(self, ids: Sequence[str]) -> None:
        """Record forgotten memories whose vectors are still to delete."""
        ...

    async def tombstones(self, limit: int) -> list[str]:
        """Return forgotten memories whose vectors are still to delete."""
        ...

    async def drop_tombstones(self, ids: Sequence[str]) -> None:
        """Forget the tombstones of vectors now deleted."""
        ...

    async def current(self, user: str, namespace: str, now_ts: float, limit: int) -> list[Memory]:
        """Return the current memories of a namespace (not superseded, not expired), oldest first."""
        ...

    async def count_expired(self, user: str, now_ts: float) -> int:
        """Count this user's memories expired at `now_ts` that upkeep has not purged yet."""
        ...

    async def supersede(self, user: str, new_id: str, old_ids: Sequence[str]) -> tuple[str, ...]:
        """Mark memories superseded by an existing one (at its time); return the ids linked."""
        ...

    async def keyword_search(
        self, user: str, terms: Sequence[str], filters: Filters, limit: int
    ) -> list[tuple[Memory, float]]:
        """Return memories matching any of the terms, best first, with a relevance score (higher is better)."""
        ...

    async def by_ids(self, user: str, ids: Sequence[str], filters: Filters) -> dict[str, Memory]:
        """Return the memories among `ids` that pass the filters, keyed by id."""
        ...

    async def neighbours(self, user: str, ids: Sequence[str]) -> dict[str, Neighbours]:
        """Return, for each conversation turn among `ids`, the ids of the two turns before and the two after it."""
        ...

    async def count_matching(self, user: str, filters: Filters, *, unindexed: bool = False) -> int:
        """Count the memories that pass the filters (`unindexed`: only those not yet in the vector index)."""
        ...

    async def unindexed(self, user: str, filters: Filters, limit: int) -> list[Memory]:
        """Return up to `limit` memories in scope not yet in the vector index, newest first."""
        ...

    async def recent(self, user: str, filters: Filters, limit: int) -> list[Memory]:
        """Return the newest `limit` memories in scope, oldest first."""
        ...

    async def namespaces(self, user: str, prefix: str, limit: int) -> list[str]:
        """Return the user's namespaces that start with `prefix`, alphabetically."""
        ...

    async def pending(self, limit: int) -> list[PendingRow]:
        """Return up to `limit` memories not yet in the vector index, oldest first."""
        ...

    async def last_pending(self) -> int | None:
        """Return the position of the newest memory waiting for the vector index, or None."""
        ...

    async def pending_through(self, position: int) -> bool:
        """Return whether any memory up to `position` still waits for the vector index."""
        ...

    async def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Return which of these ids are still stored."""
        ...

    async def count_pending(self) -> int:
        """Count memories not yet in the vector index."""
        ...

    async def count_indexed(self) -> int:
        """Count memories recorded as present in the vector index."""
        ...

    async def mark_indexed(self, ids: Sequence[str]) -> None:
        """Record that these memories are in the vector index."""
        ...

    async def mark_unembeddable(self, ids: Sequence[str]) -> None:
        """Record that the model cannot embed these memories (found by keyword, skipped by the indexer)."""
        ...

    async def mark_all_pending(self) -> int:
        """Mark every memory as needing indexing; return how many changed."""
        ...

    async def export_page(
        self, user: str | None, namespace: str | None, after: int, limit: int
    ) -> list[tuple[int, str, Memory]]:
        """Return (position, user, memory) after `after` in insertion order, optionally within a scope."""
        ...

    async def count_scope(self, user: str | None, namespace: str | None) -> int:
        """Count memories, optionally within one user and/or namespace."""
        ...

    async def counts(self) -> list[tuple[str, str, str, int, int]]:
        """Return (user, namespace, role, memories, pending) for every group that has memories."""
        ...

    async def get_value(self, key: str) -> str | None:
        """Return a stored setting."""
        ...

    async def set_value(self, key: str, value: str) -> None:
        """Store a setting."""
        ...
