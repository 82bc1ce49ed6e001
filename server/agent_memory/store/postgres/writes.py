"""Writing memories in Postgres: inserts with the exact-repeat check, deletes, turn context and supersede links.

Each function runs inside the caller's transaction (a connection from Database.transaction), so a batch is
acknowledged whole or not at all, as on SQLite. The rules are those of store/sqlite.py and store/chains.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from agent_memory.errors import BackendError, InvalidInput, NotFound
from agent_memory.store import chains
from agent_memory.store.postgres.pool import Conn, check_text, run
from agent_memory.store.rows import Inserted, NewRow

# The turn before (ts, pos) in a session: its content is the context of the turn at (ts, pos).
CONTEXT_OF = (
    "SELECT p.content FROM memories p WHERE p.owner = %s AND p.namespace = %s AND p.session_id = %s"
    " AND p.context IS NOT NULL AND (p.created_ts, p.pos) < (%s, %s) ORDER BY p.created_ts DESC, p.pos DESC LIMIT 1"
)
NEXT_TURN = (
    "SELECT pos, created_ts FROM memories WHERE owner = %s AND namespace = %s AND session_id = %s"
    " AND context IS NOT NULL AND (created_ts, pos) > (%s, %s) ORDER BY created_ts, pos LIMIT 1"
)
_INSERT = (
    "INSERT INTO memories (id, owner, namespace, session_id, role, content, content_hash, tags, metadata,"
    " created_at, created_ts, context, expires_at, expires_ts, superseded_by, superseded_at, superseded_ts)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT DO NOTHING RETURNING pos"
)
# Larger than any identity value: every row already stored at a time precedes a new row at that time.
_LAST = 2**62


def _timed(moment: datetime | None) -> tuple[str | None, float | None]:
    return (None, None) if moment is None else (chains.stamp(moment), moment.timestamp())


async def _context(conn: Conn, user: str, namespace: str, session: str, ts: float, pos: int) -> str:
    cur = await run(conn, CONTEXT_OF, (user, namespace, session, ts, pos))
    found = await cur.fetchone()
    return str(found[0]) if found else ""


async def insert(conn: Conn, row: NewRow) -> Inserted:
    """Insert one row, an exact repeat returning the stored memory (its expiry set anew)."""
    check_text(row.tags)
    ts = row.created_at.timestamp()
    context = await _context(conn, row.user, row.namespace, row.session_id, ts, _LAST) if row.in_conversation else None
    content_hash = row.content_hash
    if row.superseded_by:  # an imported superseded memory stays out of the exact-repeat check
        content_hash = chains.retired_hash(row.content_hash, row.id)
    expires = _timed(row.expires_at)
    values: list[Any] = [
        row.id,
        row.user,
        row.namespace,
        row.session_id,
        row.role,
        row.content,
        content_hash,
        json.dumps(list(row.tags)),
        json.dumps(row.metadata, ensure_ascii=False),
        chains.stamp(row.created_at),
        ts,
        context,
        *expires,
        row.superseded_by,
        *_timed(row.superseded_at if row.superseded_by else None),
    ]
    for _ in range(2):
        cur = await run(conn, _INSERT, values)
        made = await cur.fetchone()
        if made is not None:
            if row.in_conversation:
                # A turn stored out of order is the context of the turn after it.
                await refresh_next_context(conn, row.user, row.namespace, row.session_id, ts, int(made[0]))
            return Inserted(str(values[0]), str(values[9]), False)
        cur = await run(
            conn,
            "SELECT id, created_at FROM memories WHERE owner = %s AND namespace = %s AND content_hash = %s",
            (row.user, row.namespace, content_hash),
        )
        existing = await cur.fetchone()
        if existing is not None:
            # Saying it again sets its expiry anew (none: it no longer expires).
            await run(
                conn,
                "UPDATE memories SET expires_at = %s, expires_ts = %s WHERE id = %s AND expires_ts IS DISTINCT FROM %s",
                (*expires, existing[0], expires[1]),
            )
            return Inserted(str(existing[0]), str(existing[1]), True)
        # A kept id (import) already names another memory: store this one under a fresh id.
        values[0] = uuid.uuid4().hex
    raise BackendError(f"could not insert memory {row.id!r}: its id and a fresh one are both taken.")


async def refresh_next_context(conn: Conn, user: str, namespace: str, session: str, ts: float, pos: int) -> None:
    """Recompute the context of the chat turn that follows (ts, pos) in its session, if any."""
    cur = await run(conn, NEXT_TURN, (user, namespace, session, ts, pos))
    following = await cur.fetchone()
    if following is None:
        return
    next_pos, next_ts = following
    context = await _context(conn, user, namespace, session, float(next_ts), int(next_pos))
    await run(
        conn,
        "UPDATE memories SET context = %s WHERE pos = %s AND context IS DISTINCT FROM %s",
        (context, next_pos, context),
    )


async def delete(conn: Conn, user: str, id: str, namespace: str | None) -> bool:
    """Delete one memory of this user, passing its supersede links on and refreshing the next turn's context."""
    sql = "SELECT pos, namespace, session_id, created_ts FROM memories WHERE owner = %s AND id = %s"
    params: list[Any] = [user, id]
    if namespace is not None:
        sql, params = sql + " AND namespace = %s", [*params, namespace]
    cur = await run(conn, sql + " FOR UPDATE", params)
    found = await cur.fetchone()
    if found is None:
        return False
    pos, space, session, ts = found
    await unlink(conn, user, id)
    await run(conn, "DELETE FROM memories WHERE pos = %s", (pos,))
    await refresh_next_context(conn, user, space, session, float(ts), int(pos))
    return True


async def link(conn: Conn, user: str, new_id: str, at: datetime, old_ids: Sequence[str]) -> tuple[str, ...]:
    """Mark each old memory superseded by `new_id`; return the heads of the chains linked (see chains.link)."""
    linked: list[str] = []
    for old in dict.fromkeys(old_ids):
        if old == new_id:
            raise InvalidInput(f"memory {old[:80]!r} cannot supersede itself: it holds this exact content already.")
        head = await _link_one(conn, user, new_id, at, old)
        if head is not None and head not in linked:
            linked.append(head)
    return tuple(linked)


async def _link_one(conn: Conn, user: str, new_id: str, at: datetime, old: str) -> str | None:
    current = old
    for _ in range(chains.MAX_HOPS):
        if current == new_id:
            return None  # already in this memory's chain: a repeated call changes nothing
        cur = await run(
            conn,
            "UPDATE memories SET superseded_by = %s, superseded_at = %s, superseded_ts = %s,"
            " content_hash = substr(content_hash, 1, %s) || ':' || id"
            " WHERE owner = %s AND id = %s AND superseded_by IS NULL",
            (new_id, chains.stamp(at), at.timestamp(), chains.HASH_DIGITS, user, current),
        )
        if cur.rowcount == 1:
            return current
        cur = await run(conn, "SELECT superseded_by FROM memories WHERE owner = %s AND id = %s", (user, current))
        row = await cur.fetchone()
        if row is None:
            raise NotFound(
                f"Cannot supersede {old[:80]!r}: no memory with that id exists for this user (it may have been"
                " forgotten). Use recall or load_recent to find the id of the memory this one replaces."
            )
        current = str(row[0])
    raise InvalidInput(f"the chain of {old[:80]!r} is longer than {chains.MAX_HOPS} memories.")


async def unlink(conn: Conn, user: str, gone: str) -> None:
    """Pass the memories a deleted one had superseded to its successor (none: they are current again)."""
    cur = await run(
        conn,
        "SELECT superseded_by, superseded_at, superseded_ts FROM memories WHERE owner = %s AND id = %s",
        (user, gone),
    )
    row = await cur.fetchone()
    successor, at, ts = row if row else (None, None, None)
    await run(
        conn,
        "UPDATE memories SET superseded_by = %s, superseded_at = %s, superseded_ts = %s"
        " WHERE owner = %s AND superseded_by = %s",
        (successor, at, ts, user, gone),
    )
    if successor is None:
        # Current again: back in the exact-repeat check, unless the same content was stored anew meanwhile.
        await run(
            conn,
            "UPDATE memories u SET content_hash = substr(u.content_hash, 1, %s) WHERE u.owner = %s"
            " AND u.superseded_by IS NULL AND length(u.content_hash) > %s AND NOT EXISTS (SELECT 1 FROM memories d"
            " WHERE d.owner = u.owner AND d.namespace = u.namespace"
            " AND d.content_hash = substr(u.content_hash, 1, %s))",
            (chains.HASH_DIGITS, user, chains.HASH_DIGITS, chains.HASH_DIGITS),
        )
