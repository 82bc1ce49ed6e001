"""recall: keyword and vector candidates, each again inside a time window the query names, fused and packed.

The steps, in order: read a time expression out of the query (`timeframe`); search the store by keyword
while the query is embedded; search the vector index; search both again inside the time window, if any;
fuse the rankings and score each memory (`score`); keep the best that fit the token budget.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Protocol

import numpy as np

from agent_memory.config import RecallMode
from agent_memory.embedding.chunking import speaker
from agent_memory.embedding.pooling import Vectors
from agent_memory.errors import BackendError
from agent_memory.models import Hit, Memory
from agent_memory.recall import near, neighbours, score, timeframe
from agent_memory.recall.speakers import SpeakerHints
from agent_memory.recall.terms import search_terms
from agent_memory.store.protocol import MemoryStore
from agent_memory.store.rows import Filters

logger = logging.getLogger(__name__)

# Up to this many memories in scope not embedded yet are embedded with the query (a client reads its own writes
# by meaning); past it, during a bulk write, recall finds them by keyword and says how many wait.
INLINE_PENDING = 8


class VectorSearch(Protocol):
    """The semantic side of recall: embeds queries and searches the vector index."""

    async def query_vector(self, text: str) -> Vectors | None:
        """Return the query's embedding, or None when semantic search is unavailable."""
        ...

    async def embed_texts(self, texts: Sequence[str]) -> Vectors:
        """Embed memories' texts whole (those not in the index yet)."""
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


@dataclass(frozen=True)
class Request:
    """A validated recall: the query, its scope and how much to return."""

    text: str
    filters: Filters
    limit: int
    max_tokens: int | None
    now: datetime
    mode: RecallMode = "hybrid"


@dataclass
class Outcome:
    """The hits that fit the budget, how many did not, and whether vector search took part."""

    hits: list[Hit]
    omitted: int
    semantic: bool
    unindexed: int = 0  # memories in scope not yet searchable by meaning


@dataclass
class Candidates:
    """What the searches found: memories by id and one ranking per search."""

    found: dict[str, Memory] = field(default_factory=dict)
    rankings: list[score.Ranking] = field(default_factory=list)
    unembedded: set[str] = field(default_factory=set)  # keyword candidates the vector index does not hold


async def run(
    store: MemoryStore, user: str, vectors: VectorSearch, request: Request, hints: SpeakerHints | None = None
) -> Outcome:
    """Return the memories most relevant to a validated query within its filters."""
    frame = timeframe.find(request.text, request.now)
    window = await _window(store, user, request.filters, frame)
    # A time expression ("last week") is about when, not what: its words would only add keyword noise.
    terms = search_terms(request.text, frame.words if frame else ())
    pool = score.pool_size(request.limit)
    candidates = Candidates()
    search = Searches(store, user, vectors, candidates, pool)
    # The query embedding (model thread) runs while the store (its own thread) searches by keyword, without the
    # speaker names earlier recalls met (checked below against this one's candidates).
    guessed = hints.guess(request.text) if hints is not None and request.mode == "hybrid" else set()
    first = score.without_names(request.text, guessed) if guessed else request.text
    embedding = asyncio.create_task(_embed(vectors, request, first))
    try:
        if request.mode != "vector":
            await search.keywords(terms, request.filters, window)
    except BaseException:
        embedding.cancel()
        raise
    # A question about a speaker ("What does Kate like?") is embedded without the name: turns are embedded
    # without theirs, and the named speaker's turns are lifted in the score instead. A question naming every
    # speaker ("What do Kate and Elise both play?") loses the names too: they say nothing about which turn
    # answers, and only pull its vector towards greetings ("Hey Kate!").
    talking = {speaker(m.content) for m in candidates.found.values()}
    names = score.speakers_named(request.text, talking)
    if hints is not None:
        hints.saw(talking)
    wanted = score.without_names(request.text, names) if names else request.text
    if wanted != first:
        embedding.cancel()
        embedding = asyncio.create_task(_embed(vectors, request, wanted))
    vector = await embedding
    semantic = await search.semantic(vector, request.filters, window)
    unindexed = await search.newest(vector, request.filters) if semantic and vector is not None else 0
    ranked = _ranked(candidates, request.text, request.now)[: request.limit]
    # Issue 15 (facts that change), kept apart from the ranking above: of two close statements said on different
    # days among the hits, the newer first and the older flagged possibly_outdated (recall/near.py). Not when the
    # query names a time: it asks what was said then, not what holds now.
    outdated: dict[str, str] = {}
    if semantic and frame is None:
        ranked, outdated = await near.prefer_current(ranked, partial(_vectors_of, vectors), request.limit)
    fitting = score.pack([m.content for _, m in ranked], request.max_tokens)
    hits = [_hit(m, value, outdated.get(m.id)) for value, m in ranked[:fitting]]
    return Outcome(hits=hits, omitted=len(ranked) - fitting, semantic=semantic, unindexed=unindexed)


async def _vectors_of(vectors: VectorSearch, memories: Sequence[Memory]) -> Vectors:
    """Return memories' vectors: the index's, embedded only for those it does not hold yet."""
    held = await vectors.first_vectors([m.id for m in memories])
    missing = [m for m in memories if m.id not in held]
    if missing:
        held.update(zip([m.id for m in missing], await vectors.embed_texts([m.content for m in missing]), strict=True))
    return np.stack([held[m.id] for m in memories])


async def _window(
    store: MemoryStore, user: str, filters: Filters, frame: timeframe.Timeframe | None
) -> tuple[Filters, int] | None:
    """Return the filters narrowed to the query's time window and how many memories it holds, if any."""
    window = _narrowed(filters, frame) if frame else None
    if window is None:
        return None
    # An empty window changes nothing: skip it (an index range count, well under a millisecond).
    count = await store.count_matching(user, window)
    return (window, count) if count else None


async def _embed(vectors: VectorSearch, request: Request, text: str) -> Vectors | None:
    if request.mode == "keyword":
        return None
    try:
        return await vectors.query_vector(text)
    except BackendError as exc:  # a failing model must not fail the recall: keyword search still answers
        logger.warning("the query could not be embedded; answering by keyword: %s", exc)
        return None


def _ranked(candidates: Candidates, query: str, now: datetime) -> list[tuple[float, Memory]]:
    """Fuse the rankings and score each memory found; best first."""
    # Within a time window each search ranks a second time: what was said then counts twice, which lifts it
    # softly; nothing outside the window is dropped, since people misplace dates.
    found = candidates.found
    fused = score.fuse(candidates.rankings, score.FUSION)
    for i in candidates.unembedded & fused.keys():
        # Not searchable by meaning yet: its keyword score stands for both searches, so a fresh exact match
        # is not outranked merely for lacking a vector.
        fused[i] *= score.KEYWORD_ALONE
    shortened = {
        i: value * score.length_prior(len(found[i].content)) * score.asking_prior(found[i].content)
        for i, value in fused.items()
        if i in found
    }
    lifted = score.lift_sessions(shortened, {i: found[i].session_id for i in shortened})
    lifted = score.lift_named_speakers(lifted, query, {i: found[i].content for i in lifted})
    stamp = now.timestamp()
    scored = [(value + score.recency_boost((stamp - _ts(found[i])) / 86400), found[i]) for i, value in lifted.items()]
    return sorted(scored, key=lambda pair: pair[0], reverse=True)


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
        if not waiting or place is None:
            return len(waiting)
        try:
            embedded = await self.vectors.embed_texts([m.content for m in waiting])
        except BackendError as exc:
            logger.warning("newest memories could not be embedded; found by keyword: %s", exc)
            return len(waiting)
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        similar = (embedded @ (query / np.linalg.norm(query))).tolist()
        self.candidates.found.update((m.id, m) for m in waiting)
        # Read alone: a memory with no neighbour scored stands in for them (see neighbours.propagate).
        raised = neighbours.propagate({m.id: s for m, s in zip(waiting, similar, strict=True)}, {}, {})
        self.candidates.unembedded -= raised.keys()
        merged = dict(rankings[place].scored) | raised
        ordered = sorted(merged.items(), key=lambda pair: pair[1], reverse=True)
        rankings[place] = score.Ranking("vector", ordered[: self.pool + len(waiting)])
        return 0

    def _inside(self, ranking: score.Ranking, window: Filters, in_window: int) -> score.Ranking | None:
        """Return the ranking's part inside the window when that is exactly what a search there would return."""
        inside = ranking.where(lambda i: self._in(i, window))
        # It is, when the ranking holds the whole window or a full pool from it.
        return inside if len(inside.ids) >= min(in_window, self.pool) else None

    def _in(self, memory_id: str, window: Filters) -> bool:
        return _within(self.candidates.found[memory_id], window)


def _narrowed(filters: Filters, frame: timeframe.Timeframe) -> Filters | None:
    """Return the filters narrowed to a time window, or None when the window misses the asked range."""
    since = frame.start.timestamp() if filters.since_ts is None else max(frame.start.timestamp(), filters.since_ts)
    until = frame.end.timestamp() if filters.until_ts is None else min(frame.end.timestamp(), filters.until_ts)
    return replace(filters, since_ts=since, until_ts=until) if since <= until else None


def _hit(memory: Memory, value: float, outdated: str | None = None) -> Hit:
    return Hit(
        id=memory.id,
        content=memory.content,
        role=memory.role,
        namespace=memory.namespace,
        session_id=memory.session_id,
        created_at=memory.created_at,
        tags=memory.tags,
        score=round(value, 6),
        superseded_by=memory.superseded_by,
        superseded_at=memory.superseded_at,
        expires_at=memory.expires_at,
        possibly_outdated=outdated,
    )


def _within(memory: Memory, filters: Filters) -> bool:
    """Return whether a memory falls in the filters' time range (the other filters are the store's to check)."""
    ts = _ts(memory)
    return (filters.since_ts is None or ts >= filters.since_ts) and (filters.until_ts is None or ts <= filters.until_ts)


def _ts(memory: Memory) -> float:
    return datetime.fromisoformat(memory.created_at).timestamp()
