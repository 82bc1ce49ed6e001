"""recall: keyword and vector candidates, each again inside a time window the query names, fused and packed.

The steps, in order: read a time expression out of the query (`timeframe`); search the store by keyword
while the query is embedded; search the vector index; search both again inside the time window, if any;
fuse the rankings and score each memory (`score`); keep the best that fit the token budget.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial

import numpy as np

from agent_memory.config import RecallMode
from agent_memory.embedding.chunking import speaker
from agent_memory.embedding.pooling import Vectors
from agent_memory.errors import BackendError
from agent_memory.models import Hit, Memory
from agent_memory.recall import near, score, timeframe
from agent_memory.recall.searches import Candidates, Searches, VectorSearch, ts
from agent_memory.recall.speakers import SpeakerHints
from agent_memory.recall.terms import search_terms
from agent_memory.store.protocol import MemoryStore
from agent_memory.store.rows import Filters

logger = logging.getLogger(__name__)


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
    scored = [(value + score.recency_boost((stamp - ts(found[i])) / 86400), found[i]) for i, value in lifted.items()]
    return sorted(scored, key=lambda pair: pair[0], reverse=True)


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
