"""Supersede chains and expiry in SQLite: links made inside the caller's write transaction, chains read back.

A memory superseded by a newer one keeps its row; `superseded_by` names the newer one and `superseded_at` is the
newer one's time. Only current memories take part in the exact-repeat check: superseding moves the old row's
content hash out of the way (a suffix after the 64 hex digits), so saying an old fact again stores it anew.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import aiosqlite

from agent_memory.errors import InvalidInput, NotFound
from agent_memory.models import Memory
from agent_memory.store.connection import Connection
from agent_memory.store.rows import COLUMNS, memory_from_row

# A chain longer than this is a loop in damaged data, not history.
MAX_HOPS = 10_000
HASH_DIGITS = 64


def stamp(moment: datetime) -> str:
    """Return the stored ISO 8601 UTC text of a time."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def retired_hash(content_hash: str, memory_id: str) -> str:
    """Return the content hash a superseded memory keeps, out of the exact-repeat check."""
    return f"{content_hash[:HASH_DIGITS]}:{memory_id}"


async def link(
    db: aiosqlite.Connection, user: str, new_id: str, at: datetime, old_ids: Sequence[str]
) -> tuple[str, ...]:
    """Mark each old memory superseded by `new_id`; return the ids linked (the heads of their chains).

    An old memory another call already superseded passes the link on to the newest memory of its chain, so two
    writers superseding the same memory at once make one chain (A -> B -> C) and lose nothing. Runs inside the
    caller's transaction: an unknown id rolls the whole write back.
    """
    linked: list[str] = []
    for old in dict.fromkeys(old_ids):
        if old == new_id:
            raise InvalidInput(f"memory {old[:80]!r} cannot supersede itself: it holds this exact content already.")
        head = await _link_one(db, user, new_id, at, old)
        if head is not None and head not in linked:
            linked.append(head)
    return tuple(linked)


async def _link_one(db: aiosqlite.Connection, user: str, new_id: str, at: datetime, old: str) -> str | None:
    current = old
    for _ in range(MAX_HOPS):
        if current == new_id:
            return None  # already in this memory's chain: a repeated call changes nothing
        cur = await db.execute(
            "UPDATE memories SET superseded_by = ?, superseded_at = ?, superseded_ts = ?,"
            " content_hash = substr(content_hash, 1, ?) || ':' || id"
            " WHERE user = ? AND id = ? AND superseded_by IS NULL",
            (new_id, stamp(at), at.timestamp(), HASH_DIGITS, user, current),
        )
        if cur.rowcount == 1:
            return current
        async with db.execute("SELECT superseded_by FROM memories WHERE user = ? AND id = ?", (user, current)) as c:
            row = await c.fetchone()
        if row is None:
            raise NotFound(
                f"Cannot supersede {old[:80]!r}: no memory with that id exists for this user (it may have been"
                " forgotten). Use recall or load_recent to find the id of the memory this one replaces."
            )
        current = str(row[0])
    raise InvalidInput(f"the chain of {old[:80]!r} is longer than {MAX_HOPS} memories.")


async def unlink(db: aiosqlite.Connection, user: str, gone: str) -> None:
    """Pass the memories a deleted one had superseded to its successor (none: they are current again)."""
    async with db.execute(
        "SELECT superseded_by, superseded_at, superseded_ts FROM memories WHERE user = ? AND id = ?", (user, gone)
    ) as cur:
        row = await cur.fetchone()
    successor, at, ts = row if row else (None, None, None)
    await db.execute(
        "UPDATE memories SET superseded_by = ?, superseded_at = ?, superseded_ts = ?"
        " WHERE user = ? AND superseded_by = ?",
        (successor, at, ts, user, gone),
    )
    if successor is None:
        # Current again: back in the exact-repeat check, unless the same content was stored anew meanwhile.
        await db.execute(
            "UPDATE memories SET content_hash = substr(content_hash, 1, ?) WHERE user = ? AND superseded_by IS NULL"
            " AND length(content_hash) > ? AND NOT EXISTS (SELECT 1 FROM memories d WHERE d.user = memories.user"
            " AND d.namespace = memories.namespace AND d.content_hash = substr(memories.content_hash, 1, ?))",
            (HASH_DIGITS, user, HASH_DIGITS, HASH_DIGITS),
        )


async def chain(db: aiosqlite.Connection, user: str, memory_id: str) -> list[Memory]:
    """Return the chain a memory belongs to, oldest first (every memory it replaced and that replaced it)."""
    async with db.execute(
        f"WITH RECURSIVE back(id, hop) AS (SELECT ?, 0 UNION SELECT m.id, back.hop + 1 FROM memories m JOIN back"
        f" ON m.superseded_by = back.id WHERE m.user = ? AND back.hop < {MAX_HOPS}),"
        f" fwd(id, hop) AS (SELECT ?, 0 UNION SELECT m.superseded_by, fwd.hop + 1 FROM memories m JOIN fwd"
        f" ON m.id = fwd.id WHERE m.user = ? AND m.superseded_by IS NOT NULL AND fwd.hop < {MAX_HOPS})"
        # +m.user: look the chain's ids up by id, not through the user's index (a scan of the whole scope).
        f" SELECT {COLUMNS} FROM memories m WHERE +m.user = ?"
        " AND m.id IN (SELECT id FROM back UNION SELECT id FROM fwd)"
        " ORDER BY m.created_ts, m.rowid",
        (memory_id, user, memory_id, user, user),
    ) as cur:
        rows = await cur.fetchall()
    return linked_order([memory_from_row(r) for r in rows])


def linked_order(memories: list[Memory]) -> list[Memory]:
    """Return memories ordered so each comes before the one that superseded it, else by time (as given)."""
    waiting = {m.id: 0 for m in memories}
    for m in memories:
        if m.superseded_by in waiting:
            waiting[m.superseded_by] += 1
    by_id = {m.id: m for m in memories}
    ordered: list[Memory] = []
    ready = [m for m in memories if waiting[m.id] == 0]
    while ready:
        ordered.extend(ready)
        following: list[str] = []
        for m in ready:
            if m.superseded_by in waiting:
                waiting[m.superseded_by] -= 1
                if waiting[m.superseded_by] == 0:
                    following.append(m.superseded_by)
        ready = [by_id[i] for i in sorted(following, key=[m.id for m in memories].index)]
    return ordered


class ChainStore(Connection):
    """The store's reads of supersede chains, expiry and the vectors still to delete."""

    async def chain(self, user: str, id: str) -> list[Memory]:
        """Return the supersede chain a memory belongs to, oldest first (empty: no such memory)."""
        return await chain(self._db, user, id)

    async def superseded_of(self, user: str, ids: Sequence[str]) -> dict[str, list[str]]:
        """Return, for each of these ids that superseded memories, the ids it superseded (oldest first)."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        async with self._db.execute(
            # The unary + keeps SQLite on the superseded_by index: by the user's index it read every row in scope
            # (35 ms a recall at 100k memories).
            f"SELECT superseded_by, id FROM memories WHERE superseded_by IN ({marks}) AND +user = ?"
            " ORDER BY created_ts, rowid",
            [*ids, user],
        ) as cur:
            rows = await cur.fetchall()
        found: dict[str, list[str]] = {}
        for newer, older in rows:
            found.setdefault(str(newer), []).append(str(older))
        return found

    async def expired(self, now_ts: float, limit: int) -> list[tuple[str, str]]:
        """Return (user, id) of memories expired at `now_ts`, oldest expiry first."""
        async with self._db.execute(
            "SELECT user, id FROM memories WHERE expires_ts IS NOT NULL AND expires_ts <= ?"
            " ORDER BY expires_ts LIMIT ?",
            (now_ts, limit),
        ) as cur:
            return [(str(r[0]), str(r[1])) for r in await cur.fetchall()]

    async def add_tombstones(self, ids: Sequence[str]) -> None:
        """Record forgotten memories whose vectors are still to delete."""
        async with self._transaction() as db:
            await db.executemany("INSERT OR IGNORE INTO vector_tombstones VALUES (?)", [(i,) for i in ids])

    async def tombstones(self, limit: int) -> list[str]:
        """Return forgotten memories whose vectors are still to delete."""
        async with self._db.execute("SELECT id FROM vector_tombstones LIMIT ?", (limit,)) as cur:
            return [str(r[0]) for r in await cur.fetchall()]

    async def drop_tombstones(self, ids: Sequence[str]) -> None:
        """Forget the tombstones of vectors now deleted."""
        async with self._transaction() as db:
            await db.executemany("DELETE FROM vector_tombstones WHERE id = ?", [(i,) for i in ids])

    async def current(self, user: str, namespace: str, now_ts: float, limit: int) -> list[Memory]:
        """Return the current memories of a namespace (not superseded, not expired), oldest first, at most `limit`."""
        async with self._db.execute(
            f"SELECT {COLUMNS} FROM memories m WHERE m.user = ? AND m.namespace = ? AND m.superseded_by IS NULL"
            " AND (m.expires_ts IS NULL OR m.expires_ts > ?) ORDER BY m.created_ts, m.rowid LIMIT ?",
            (user, namespace, now_ts, limit),
        ) as cur:
            return [memory_from_row(r) for r in await cur.fetchall()]

    async def count_expired(self, user: str, now_ts: float) -> int:
        """Count this user's memories expired at `now_ts` that upkeep has not purged yet."""
        sql = "SELECT COUNT(*) FROM memories WHERE user = ? AND expires_ts IS NOT NULL AND expires_ts <= ?"
        async with self._db.execute(sql, (user, now_ts)) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def supersede(self, user: str, new_id: str, old_ids: Sequence[str]) -> tuple[str, ...]:
        """Mark memories superseded by an existing one (at its time); return the ids linked."""
        async with self._transaction() as db:
            async with db.execute("SELECT created_at FROM memories WHERE user = ? AND id = ?", (user, new_id)) as cur:
                row = await cur.fetchone()
            if row is None:
                raise NotFound(f"No memory with id {new_id[:80]!r} exists for this user.")
            return await link(db, user, new_id, datetime.fromisoformat(str(row[0])), old_ids)
