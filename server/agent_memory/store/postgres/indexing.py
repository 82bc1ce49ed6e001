"""The vector index's bookkeeping in Postgres: pending rows claimed with a lease, so N servers embed each once.

`pending` claims rows with FOR UPDATE SKIP LOCKED and stamps `claimed_until` (the database's clock, the same
for every server): another server's claim skips them until `mark_indexed` clears it, or until the lease ends
because the claimer died mid-batch, when the rows return to the others. A server retries its own claims at
once (`claimed_by`): a batch that failed to embed is tried again on the next pass, as on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent_memory.store.connection import UNEMBEDDABLE
from agent_memory.store.postgres.pool import Database
from agent_memory.store.postgres.sql import NOW
from agent_memory.store.rows import PendingRow

# How long a claim keeps other servers off the rows: a batch embeds in seconds; a dead server's rows wait this.
LEASE_SECONDS = 120.0

_CLAIM = (
    f"UPDATE memories SET claimed_until = {NOW} + %s, claimed_by = %s WHERE pos IN ("
    " SELECT pos FROM memories WHERE indexed = 0"
    f" AND (claimed_until IS NULL OR claimed_until <= {NOW} OR claimed_by = %s)"
    " ORDER BY pos LIMIT %s FOR UPDATE SKIP LOCKED)"
    " RETURNING pos, id, content, owner, namespace, session_id, created_ts"
)


class PendingRows:
    """The indexing state of memories: pending (0), in the vector index (1) or set aside (-1), and claims."""

    _db: Database
    lease_seconds: float = LEASE_SECONDS
    # Who claims: one id per open store (a server process), never shared.
    claimer: str = ""

    async def pending(self, limit: int) -> list[PendingRow]:
        """Claim up to `limit` memories not yet in the vector index nor claimed by a live lease, oldest first."""
        rows = await self._db.all(_CLAIM, (self.lease_seconds, self.claimer, self.claimer, limit))
        return [PendingRow(*r[1:]) for r in sorted(rows)]

    async def last_pending(self) -> int | None:
        """Return the position of the newest memory waiting for the vector index, or None."""
        row = await self._db.one("SELECT MAX(pos) FROM memories WHERE indexed = 0")
        return None if row is None or row[0] is None else int(row[0])

    async def pending_through(self, position: int) -> bool:
        """Return whether any memory up to `position` still waits for the vector index (claimed or not)."""
        return (
            await self._db.one("SELECT 1 FROM memories WHERE indexed = 0 AND pos <= %s LIMIT 1", (position,))
            is not None
        )

    async def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Return which of these ids are still stored."""
        if not ids:
            return set()
        rows = await self._db.all("SELECT id FROM memories WHERE id = ANY(%s::text[])", (list(ids),))
        return {str(r[0]) for r in rows}

    async def count_pending(self) -> int:
        """Count memories not yet in the vector index."""
        return await self._db.scalar("SELECT COUNT(*) FROM memories WHERE indexed = 0")

    async def count_indexed(self) -> int:
        """Count memories recorded as present in the vector index."""
        return await self._db.scalar("SELECT COUNT(*) FROM memories WHERE indexed = 1")

    async def _set_indexed(self, ids: Sequence[str], state: int) -> None:
        if not ids:
            return
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE memories SET indexed = %s, claimed_until = NULL, claimed_by = NULL WHERE id = ANY(%s::text[])",
                (state, list(ids)),
            )

    async def mark_indexed(self, ids: Sequence[str]) -> None:
        """Record that these memories are in the vector index (their claims end)."""
        await self._set_indexed(ids, 1)

    async def mark_unembeddable(self, ids: Sequence[str]) -> None:
        """Record that the model cannot embed these memories: keyword search finds them, the indexer skips them."""
        await self._set_indexed(ids, UNEMBEDDABLE)

    async def mark_all_pending(self) -> int:
        """Mark every memory as needing indexing (claims dropped too); return how many changed."""
        async with self._db.transaction() as conn:
            cur = await conn.execute(
                "UPDATE memories SET indexed = 0, claimed_until = NULL, claimed_by = NULL"
                " WHERE indexed != 0 OR claimed_until IS NOT NULL"
            )
            return cur.rowcount
