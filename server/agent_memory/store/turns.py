"""The SQL that reads a conversation as a sequence of turns: each turn's context and its neighbours.

A conversation turn is a memory with a non-NULL `context` (migration 2): a user or assistant message of a named
session. Turns are ordered by (created_ts, rowid) within their user, namespace and session.
"""

from __future__ import annotations

from collections.abc import Sequence

# The turn before (ts, rowid): its content is the context of the turn at (ts, rowid).
CONTEXT_OF = (
    "SELECT COALESCE(group_concat(content, char(10)), '') FROM (SELECT p.content FROM memories p"
    " WHERE p.user = ? AND p.namespace = ? AND p.session_id = ? AND p.context IS NOT NULL"
    " AND (p.created_ts < ? OR (p.created_ts = ? AND p.rowid < ?)) ORDER BY p.created_ts DESC, p.rowid DESC LIMIT 1)"
)
NEXT_TURN = (
    "SELECT rowid, created_ts FROM memories WHERE user = ? AND namespace = ? AND session_id = ?"
    " AND context IS NOT NULL"
    " AND (created_ts > ? OR (created_ts = ? AND rowid > ?)) ORDER BY created_ts, rowid LIMIT 1"
)

_SAME_SESSION = (
    "SELECT t.id FROM memories t WHERE t.user = m.user AND t.namespace = m.namespace"
    " AND t.session_id = m.session_id AND t.context IS NOT NULL AND "
)
# Row values: SQLite seeks (time, rowid) in the session's time index, which ends in rowid, instead of scanning
# the session (a chat's turns often share one time).
_BEFORE = "(t.created_ts, t.rowid) < (m.created_ts, m.rowid)"
_AFTER = "(t.created_ts, t.rowid) > (m.created_ts, m.rowid)"
_EARLIER = " ORDER BY t.created_ts DESC, t.rowid DESC LIMIT 1 OFFSET "
_LATER = " ORDER BY t.created_ts, t.rowid LIMIT 1 OFFSET "


def neighbours_query(user: str, ids: Sequence[str]) -> tuple[str, list[str]]:
    """Return SQL selecting (id, two turns before, one before, one after, two after) for the turns among `ids`."""
    around = ", ".join(
        f"({_SAME_SESSION}{side}{order}{offset})"
        for side, order, offset in (
            (_BEFORE, _EARLIER, 1),
            (_BEFORE, _EARLIER, 0),
            (_AFTER, _LATER, 0),
            (_AFTER, _LATER, 1),
        )
    )
    marks = ", ".join("?" * len(ids))
    # `+m.user`: look the turns up by id, not by scanning the user's rows.
    sql = f"SELECT m.id, {around} FROM memories m WHERE +m.user = ? AND m.id IN ({marks}) AND m.context IS NOT NULL"
    return sql, [user, *ids]
