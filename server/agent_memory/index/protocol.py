"""The vector index behind one small interface: rows in, rows out; LanceDB today, Postgres with pgvector later.

An index holds one row per window of a memory (a long memory is embedded as several windows, see
embedding/chunking.py) and answers with rows: ranking memories by their best window is the caller's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np

Vector = np.ndarray[Any, np.dtype[np.float32]]


@dataclass(frozen=True)
class VectorRow:
    """One window's vector of a memory and the columns that filters need."""

    id: str
    user: str
    namespace: str
    session_id: str
    created_ts: float
    vector: Vector
    chunk: int = 0
    windows: int = 1  # how many windows the memory has

    @property
    def key(self) -> str:
        """Return the row key: the memory id and the window number."""
        return f"{self.id}:{self.chunk}"


@dataclass(frozen=True)
class VectorScope:
    """Which rows a search may return: one user's namespace, optionally one session, a time range, some memories."""

    user: str
    namespace: str | None  # None: every namespace of the user
    session_id: str | None = None
    since_ts: float | None = None
    until_ts: float | None = None
    ids: frozenset[str] | None = None


class VectorHit(NamedTuple):
    """One row found by a search: its memory, its cosine similarity to the query, and the memory's windows."""

    id: str
    similarity: float
    windows: int


@dataclass(frozen=True)
class IndexState:
    """What the vector index holds and how it searches (for status reports and tests)."""

    rows: int  # rows (windows) in the table
    fragments: int  # data fragments: compaction keeps them few
    ann_rows: int  # rows the ANN index was trained on; 0 without one
    exact_search_current: bool  # searches go to the exact search in memory
    exact_search_rows: int  # live rows it holds; 0 when none is loaded
    exact_search_capacity: int  # rows it has room for before its arrays grow
    exact_search_bytes: int  # memory its vectors take, room included
    cache_bytes: int = 0  # memory the index library's own caches hold (LanceDB's; bounded by IndexTuning)


class VectorIndex(Protocol):
    """A derived index of memory vectors: it can always be rebuilt from the store.

    Calls are synchronous; callers run them in a worker thread.
    """

    def upsert(self, rows: Sequence[VectorRow]) -> None:
        """Insert or replace rows by key (idempotent, so a retried batch never duplicates)."""
        ...

    def delete(self, ids: Sequence[str]) -> None:
        """Remove every row of these memories."""
        ...

    def search(self, vector: Vector, scope: VectorScope, limit: int) -> list[VectorHit]:
        """Return up to `limit` nearest rows in scope, best first; a memory appears once per window found."""
        ...

    def first_vectors(self, ids: Sequence[str]) -> dict[str, Vector]:
        """Return the vector of each memory's first window (its whole text when chat-sized), for those held."""
        ...

    def count(self) -> int:
        """Count memories in the index."""
        ...

    def needs_upkeep(self) -> bool:
        """Return True when `maintain` has work to do."""
        ...

    def maintain(self, *, compact: bool = False) -> None:
        """Do the upkeep that is due (`compact`: compact now); a no-op while another upkeep runs."""
        ...

    def drop_table(self, name: str) -> None:
        """Delete another table of this database (an index built for an older model or row layout)."""
        ...

    def describe(self) -> IndexState:
        """Return what the index holds and how it searches."""
        ...
