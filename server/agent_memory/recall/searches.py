"""The searches of one recall: keyword, vector (with the turns next to each hit) and the newest memories.

Each adds what it finds to the recall's shared candidates; pipeline.py runs them and fuses their rankings.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

import numpy as np

from agent_memory.embedding.pooling import Vectors
from agent_memory.errors import BackendError
from agent_memory.models import Memory
from agent_memory.recall import neighbours, score
from agent_memory.store.protocol import MemoryStore
from agent_memory.store.rows import Filters

logger = logging.getLogger(__name__)

# Up to this many memories in scope not embedded yet are embedded with the query (a client reads its own writes
# by meaning); past it, during a bulk write, recall finds them by keyword and says how many wait.
INLINE_PENDING = 8
# ... as long as their text stays this short together: a few long ones would cost the recall more than its own
# searches.
INLINE_CHARS = 2000


class VectorSearch(Protocol):
    """The semantic side of recall: embeds queries and searches the vector index."""

    async def query_vector(self, text: str) -> Vectors | None:
        """Return the query's embedding, or None when semantic search is unavailable."""
        ...

    async def embed_texts(self, texts: Sequence[str]) -> Vectors:
        """Embed a few memories' texts whole (those not in the index yet), without waiting for indexing."""
        ...

    async def nearest(
        self, vector: Vectors, user: str, filters: Filters, limit: int, ids: Collection[str] | None = None
    ) -> list[tuple[str, float, int]]:
        """Return window rows (memory id, cosine similarity, windows of that memory) in scope (among `ids`)."""
        ...

    def notify(self) -> None:
        """Say that memories are waiting to be embedded (another process may have written them)."""
        ...

    async def first_vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        """Return the index's vector of each memory's first window, for those it holds."""
        ...


@dataclass
class Candidates:
    """What the searches found: memories by id and one ranking per search."""

    found: dict[str, Memory] = field(default_factory=dict)
    rankings: list[score.Ranking] = field(default_factory=list)
    unembedded: set[str] = field(default_factory=set)  # keyword candidates the vector index does not hold


@dataclass
class Searches:
    """The searches of one recall, adding what they find to the shared candidates."""

    store: MemoryStore
    user: str
    vectors: VectorSearch
    candidates: Candidates
    pool: int

    async def keywords(self, terms: Sequence[str], filters: Filters, window: tuple[Filters, int] | None) -> None:
        """Rank by keyword, and again inside the time window."""
        if not terms:
            return
        ranking = await self._keyword(terms, filters)
        self.candidates.rankings.append(ranking)
        if window:
            inside = self._inside(ranking, *window)
            # Keyword search filters in the store, so a short ranking already holds every match in the window.
            if inside is None and len(ranking.ids) < self.pool:
                inside = ranking.where(lambda i: self._in(i, window[0]))
            self.candidates.rankings.append(inside if inside is not None else await self._keyword(terms, window[0]))

    async def semantic(self, vector: Vectors | None, filters: Filters, window: tuple[Filters, int] | None) -> bool:
        """Rank by vector, and again inside the time window; return whether vector search answered."""
        if vector is None:
            return False
        try:
            ranking = await self._nearest(vector, filters)
            self.candidates.rankings.append(ranking)
            if window:
                inside = self._inside(ranking, *window)
                if inside is None:
                    inside = await self._nearest(vector, window[0])
                self.candidates.rankings.append(inside)
        except BackendError as exc:
            logger.warning("semantic search failed; answering by keyword: %s", exc)
            return False
        return True

    async def _keyword(self, terms: Sequence[str], filters: Filters) -> score.Ranking:
        found = await self.store.keyword_search(self.user, terms, filters, self.pool)
        self.candidates.found.update((m.id, m) for m, _ in found)
        return score.Ranking("keyword", [(m.id, value) for m, value in found])

    async def _nearest(self, vector: Vectors, filters: Filters) -> score.Ranking:
        rows = await self.vectors.nearest(vector, self.user, filters, self.pool * score.OVERSAMPLE)
        nearest = await self._with_neighbours(vector, filters, dict(score.best_windows(rows, self.pool)))
        # The store decides what exists and what passes the filters; the index may hold a forgotten id.
        found, kept = self.candidates.found, []
        for start in range(0, len(nearest), self.pool):
            part = nearest[start : start + self.pool]
            found.update(await self.store.by_ids(self.user, [i for i, _ in part if i not in found], filters))
            kept += [(i, value) for i, value in part if i in found and _within(found[i], filters)]
            if len(kept) >= self.pool:
                break
        return score.Ranking("vector", kept[: self.pool])

    async def _with_neighbours(
        self, vector: Vectors, filters: Filters, similar: dict[str, float]
    ) -> list[tuple[str, float]]:
        """Rank the nearest memories, the keyword candidates and the turns next to them, read with their neighbours."""
        found = await self.store.neighbours(self.user, sorted(similar.keys() | self.candidates.found.keys()))
        before, after = neighbours.chain(found)
        missing = (neighbours.related(before, after) | self.candidates.found.keys()) - similar.keys()
        if missing:
            # Neighbours count whenever they were said: a window of time narrows the turns ranked, not their context.
            unbounded = replace(filters, since_ts=None, until_ts=None)
            rows = await self.vectors.nearest(vector, self.user, unbounded, len(missing) * score.OVERSAMPLE, missing)
            similar.update(score.best_windows(rows, len(missing)))
        # Keyword candidates the index does not hold (being embedded, set aside, or written by another process
        # this one has not seen yet) have no vector score: they are scored by keyword alone.
        self.candidates.unembedded |= self.candidates.found.keys() - similar.keys()
        raised = neighbours.propagate(similar, before, after)
        return sorted(raised.items(), key=lambda pair: pair[1], reverse=True)

    async def newest(self, vector: Vectors, filters: Filters) -> int:
        """Rank the few memories in scope not embedded yet by meaning too; return how many are left out."""
        waiting = await self.store.unindexed(self.user, filters, INLINE_PENDING + 1)
        if waiting:
            self.vectors.notify()
        if len(waiting) > INLINE_PENDING:
            return await self.store.count_matching(self.user, filters, unindexed=True)
        rankings = self.candidates.rankings
        place = next((n for n, r in enumerate(rankings) if r.source == "vector"), None)
        # The newest first, while they are cheap to embed with the query; the others are found by keyword.
        inline = _cheap(waiting)
        if not inline or place is None:
            return len(waiting)
        try:
            embedded = await self.vectors.embed_texts([m.content for m in inline])
        except BackendError as exc:
            logger.warning("newest memories could not be embedded; found by keyword: %s", exc)
            return len(waiting)
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        similar = (embedded @ (query / np.linalg.norm(query))).tolist()
        self.candidates.found.update((m.id, m) for m in inline)
        # Read alone: a memory with no neighbour scored stands in for them (see neighbours.propagate).
        raised = neighbours.propagate({m.id: s for m, s in zip(inline, similar, strict=True)}, {}, {})
        self.candidates.unembedded -= raised.keys()
        merged = dict(rankings[place].scored) | raised
        ordered = sorted(merged.items(), key=lambda pair: pair[1], reverse=True)
        rankings[place] = score.Ranking("vector", ordered[: self.pool + len(inline)])
        return len(waiting) - len(inline)

    def _inside(self, ranking: score.Ranking, window: Filters, in_window: int) -> score.Ranking | None:
        """Return the ranking's part inside the window when that is exactly what a search there would return."""
        inside = ranking.where(lambda i: self._in(i, window))
        # It is, when the ranking holds the whole window or a full pool from it.
        return inside if len(inside.ids) >= min(in_window, self.pool) else None

    def _in(self, memory_id: str, window: Filters) -> bool:
        return _within(self.candidates.found[memory_id], window)


def _cheap(waiting: Sequence[Memory]) -> list[Memory]:
    """Return the waiting memories to embed with the query: newest first, as long as INLINE_CHARS holds them."""
    cheap, chars = [], 0
    for memory in waiting:
        if chars + len(memory.content) <= INLINE_CHARS:
            chars += len(memory.content)
            cheap.append(memory)
    return cheap


def _within(memory: Memory, filters: Filters) -> bool:
    """Return whether a memory falls in the filters' time range (the other filters are the store's to check)."""
    at = ts(memory)
    return (filters.since_ts is None or at >= filters.since_ts) and (filters.until_ts is None or at <= filters.until_ts)


def ts(memory: Memory) -> float:
    """Return when a memory was made, as a POSIX timestamp."""
    return datetime.fromisoformat(memory.created_at).timestamp()
