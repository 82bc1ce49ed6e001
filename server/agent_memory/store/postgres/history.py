"""Supersede chains, expiry and vector tombstones in Postgres (the reads of store/chains.py's ChainStore)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from agent_memory.errors import NotFound
from agent_memory.models import Memory
from agent_memory.store import chains
from agent_memory.store.postgres import writes
from agent_memory.store.postgres.pool import Database, check_text
from agent_memory.store.postgres.sql import COLUMNS, memory_from_row

_CHAIN = (
    "WITH RECURSIVE back(id, hop) AS (SELECT %s::text, 0 UNION SELECT m.id, back.hop + 1 FROM memories m JOIN back"
    " ON m.superseded_by = back.id WHERE m.owner = %s AND back.hop < %s),"
    " fwd(id, hop) AS (SELECT %s::text, 0 UNION SELECT m.superseded_by, fwd.hop + 1 FROM memories m JOIN fwd"
    " ON m.id = fwd.id WHERE m.owner = %s AND m.superseded_by IS NOT NULL AND fwd.hop < %s)"
    f" SELECT {COLUMNS} FROM memories m WHERE m.owner = %s AND m.id IN (SELECT id FROM back UNION SELECT id FROM fwd)"
    " ORDER BY m.created_ts, m.pos"
)


class History:
    """Reads and links of supersede chains, expiry, and the vectors still to delete."""

    _db: Database

    async def chain(self, user: str, id: str) -> list[Memory]:
        """Return the supersede chain a memory belongs to, oldest first (empty: no such memory)."""
        hops = chains.MAX_HOPS
        rows = await self._db.all(_CHAIN, (id, user, hops, id, user, hops, user))
        return chains.linked_order([memory_from_row(r) for r in rows])

    async def superseded_of(self, user: str, ids: Sequence[str]) -> dict[str, list[str]]:
        """Return, for each of these ids that superseded memories, the ids it superseded (oldest first)."""
        if not ids:
            return {}
        rows = await self._db.all(
            "SELECT superseded_by, id FROM memories WHERE superseded_by = ANY(%s::text[]) AND owner = %s"
            " ORDER BY created_ts, pos",
            (list(ids), user),
        )
        found: dict[str, list[str]] = {}
        for newer, older in rows:
            found.setdefault(str(newer), []).append(str(older))
        return found

    async def expired(self, now_ts: float, limit: int) -> list[tuple[str, str]]:
        """Return (user, id) of memories expired at `now_ts`, oldest expiry first."""
        rows = await self._db.all(
            "SELECT owner, id FROM memories WHERE expires_ts IS NOT NULL AND expires_ts <= %s"
            " ORDER BY expires_ts LIMIT %s",
            (now_ts, limit),
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    async def add_tombstones(self, ids: Sequence[str]) -> None:
        """Record forgotten memories whose vectors are still to delete."""
        check_text(ids)
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO vector_tombstones SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", (list(ids),)
            )

    async def tombstones(self, limit: int) -> list[str]:
        """Return forgotten memories whose vectors are still to delete."""
        return [str(r[0]) for r in await self._db.all("SELECT id FROM vector_tombstones LIMIT %s", (limit,))]

    async def drop_tombstones(self, ids: Sequence[str]) -> None:
        """Forget the tombstones of vectors now deleted."""
        check_text(ids)
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM vector_tombstones WHERE id = ANY(%s::text[])", (list(ids),))

    async def current(self, user: str, namespace: str, now_ts: float, limit: int) -> list[Memory]:
        """Return the current memories of a namespace (not superseded, not expired), oldest first, at most `limit`."""
        rows = await self._db.all(
            f"SELECT {COLUMNS} FROM memories m WHERE m.owner = %s AND m.namespace = %s AND m.superseded_by IS NULL"
            " AND (m.expires_ts IS NULL OR m.expires_ts > %s) ORDER BY m.created_ts, m.pos LIMIT %s",
            (user, namespace, now_ts, limit),
        )
        return [memory_from_row(r) for r in rows]

    async def count_expired(self, user: str, now_ts: float) -> int:
        """Count this user's memories expired at `now_ts` that upkeep has not purged yet."""
        return await self._db.scalar(
            "SELECT COUNT(*) FROM memories WHERE owner = %s AND expires_ts IS NOT NULL AND expires_ts <= %s",
            (user, now_ts),
        )

    async def supersede(self, user: str, new_id: str, old_ids: Sequence[str]) -> tuple[str, ...]:
        """Mark memories superseded by an existing one (at its time); return the ids linked."""
        check_text([new_id, *old_ids])
        async with self._db.transaction() as conn:
            cur = await conn.execute("SELECT created_at FROM memories WHERE owner = %s AND id = %s", (user, new_id))
            row = await cur.fetchone()
            if row is None:
                raise NotFound(f"No memory with id {new_id[:80]!r} exists for this user.")
            return await writes.link(conn, user, new_id, datetime.fromisoformat(str(row[0])), old_ids)
