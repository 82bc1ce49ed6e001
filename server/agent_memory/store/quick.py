"""Read-only answers straight from the SQLite file, for a short-lived process that must answer in milliseconds.

Only the standard library: no aiosqlite, pydantic or numpy (the prompt hook runs on every prompt and imports
this instead of the store). Opened read-only, so it can never change the source of truth a server is writing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_COLUMNS = "m.id, m.content, m.role, m.namespace, m.session_id, m.created_at, m.tags"


@dataclass(frozen=True)
class Row:
    """One memory as the quick reader returns it."""

    id: str
    content: str
    role: str
    namespace: str
    session_id: str
    created_at: str
    tags: tuple[str, ...]
    score: float = 0.0


class QuickStore:
    """A read-only connection to the memory file."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"no memory file at {path}")
        self._db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=2.0)
        # Another process's write transaction never blocks a WAL reader; this bounds a checkpoint's rare lock.
        self._db.execute("PRAGMA busy_timeout = 2000")
        self._vocab = False

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def rarest(self, terms: Sequence[str], count: int) -> list[str]:
        """Return the `count` terms found in the fewest memories.

        Ranking every match of a common word is what makes a keyword search slow; the rare words are also the
        ones that say what a prompt is about.
        """
        if len(terms) <= count:
            return list(terms)
        if not self._vocab:
            # A temporary table: allowed on a read-only connection, gone when it closes.
            self._db.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, memories_fts, row)")
            self._vocab = True
        marks = ", ".join("?" for _ in terms)
        found = dict(self._db.execute(f"SELECT term, doc FROM temp.vocab WHERE term IN ({marks})", list(terms)))
        # A word missing from the vocabulary is stemmed there (or absent): count it as a middling one.
        known = sorted(found.values())
        middling = known[len(known) // 2] if known else 0
        return sorted(terms, key=lambda t: found.get(t, middling))[:count]

    def keyword(
        self, user: str, namespace: str, terms: Sequence[str], limit: int, skip_session: str | None = None
    ) -> list[Row]:
        """Return the best BM25 matches of any term in one namespace, best first."""
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        scope = "m.user = ? AND m.namespace = ? AND m.session_id != ?"
        params = [user, namespace, skip_session or ""]
        # Rank the matches first and join only the best few (as the store's keyword search does); a narrow
        # scope that holds fewer of them is ranked within itself instead.
        head = (
            f"SELECT {_COLUMNS}, -f.rank FROM (SELECT rowid, rank FROM memories_fts WHERE memories_fts MATCH ?"
            f" ORDER BY rank LIMIT ?) f JOIN memories m ON m.rowid = f.rowid WHERE {scope} ORDER BY f.rank LIMIT ?"
        )
        rows = self._rows(head, [match, limit * 4, *params, limit])
        if len(rows) < limit:
            scoped = (
                f"SELECT {_COLUMNS}, -memories_fts.rank FROM memories_fts JOIN memories m"
                f" ON m.rowid = memories_fts.rowid WHERE memories_fts MATCH ? AND {scope}"
                " ORDER BY memories_fts.rank LIMIT ?"
            )
            rows = self._rows(scoped, [match, *params, limit])
        return rows

    def recent(
        self,
        user: str,
        namespace: str,
        limit: int,
        *,
        roles: Sequence[str] = ("user", "assistant"),
        skip_session: str | None = None,
    ) -> list[Row]:
        """Return the newest memories of these roles in one namespace, oldest first."""
        marks = ", ".join("?" for _ in roles)
        sql = (
            f"SELECT {_COLUMNS}, 0.0 FROM memories m WHERE m.user = ? AND m.namespace = ? AND m.role IN ({marks})"
            " AND m.session_id != ? ORDER BY m.created_ts DESC, m.rowid DESC LIMIT ?"
        )
        return self._rows(sql, [user, namespace, *roles, skip_session or "", limit])[::-1]

    def latest_summary(self, user: str, namespace: str) -> str | None:
        """Return the newest stored summary of the namespace (any session, no focus), if there is one."""
        sql = "SELECT text FROM summaries WHERE user = ? AND namespace = ? AND focus = '' ORDER BY rowid DESC LIMIT 1"
        found = self._db.execute(sql, (user, namespace)).fetchone()
        return str(found[0]) if found else None

    def _rows(self, sql: str, params: list[object]) -> list[Row]:
        rows = self._db.execute(sql, params).fetchall()
        return [
            Row(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), tuple(json.loads(r[6] or "[]")), r[7])
            for r in rows
        ]
