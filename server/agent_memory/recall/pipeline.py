"""recall: keyword and vector candidates, each again inside a time window the query names, fused and packed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from agent_memory.embedding.embedder import Vectors
from agent_memory.embedding.host import ModelState
from agent_memory.errors import BackendError
from agent_memory.models import Hit, Memory, RecallResult
from agent_memory.recall import timeframe
from agent_memory.recall.score import fts_query, length_prior, pack, recency_boost, rrf
from agent_memory.store.rows import Filters

if TYPE_CHECKING:
    from agent_memory.service import MemoryService

logger = logging.getLogger(__name__)

CANDIDATES = 50
# How long recall waits for just-written memories to reach the vector index before answering anyway.
DRAIN_TIMEOUT = 2.0


async def run(service: MemoryService, text: str, filters: Filters, limit: int, max_tokens: int | None) -> RecallResult:
    """Return the memories most relevant to a validated query within the filters."""
    pool = max(CANDIDATES, limit * 4)
    now = service.clock()
    # A time expression ("last week") is about when, not what: its words would only add keyword noise.
    frame = timeframe.find(text, now)
    ignore = frame.words if frame else ()
    window = _narrowed(filters, frame) if frame else None
    # An empty window changes nothing: skip it (an index range count, well under a millisecond).
    in_window = await service.buffer.count_matching(service.settings.user, window) if window else 0
    window = window if in_window else None
    found: dict[str, Memory] = {}
    rankings: list[list[str]] = []
    match = fts_query(text, ignore)
    # The query embedding (model thread) runs while SQLite (its own thread) does the keyword search.
    query_vector_task = asyncio.create_task(_query_vector(service, text))
    keyword_done = False
    try:
        if match is not None:
            keyword = await service.buffer.keyword_search(service.settings.user, match, filters, pool)
            found.update((m.id, m) for m, _ in keyword)
            rankings.append([m.id for m, _ in keyword])
            if window:
                rankings.append(await within(service, rankings[-1], window, in_window, pool, found, match=match))
        keyword_done = True
    finally:
        if not keyword_done:
            query_vector_task.cancel()
    semantic = False
    try:
        vector = await query_vector_task
        if vector is not None:
            rankings.append(await nearest(service, vector, filters, pool, found))
            if window:
                rankings.append(await within(service, rankings[-1], window, in_window, pool, found, vector=vector))
            semantic = True
    except BackendError as exc:
        logger.warning("semantic search failed; answering by keyword: %s", exc)
    # Within a time window each search ranks a second time: what was said then counts twice, which lifts it
    # softly; nothing outside the window is dropped, since people misplace dates.
    fused = rrf(rankings)
    stamp = now.timestamp()

    def final(m: Memory) -> float:
        return fused[m.id] * length_prior(len(m.content)) + recency_boost((stamp - _ts(m)) / 86400)

    scored = sorted(((final(found[i]), found[i]) for i in fused if i in found), key=lambda p: p[0], reverse=True)
    scored = scored[:limit]
    fitting = pack([m.content for _, m in scored], max_tokens)
    hits = [
        Hit(
            id=m.id,
            content=m.content,
            role=m.role,
            namespace=m.namespace,
            session_id=m.session_id,
            created_at=m.created_at,
            tags=m.tags,
            score=round(score, 6),
        )
        for score, m in scored[:fitting]
    ]
    state = service.status()
    if not semantic:
        note: str | None = (state if state != "ready" else "Semantic search failed.") + (
            " Results come from keyword search and recency."
        )
    else:
        note = None if state == "ready" else state
    return RecallResult(
        hits=hits,
        mode="hybrid" if semantic else "keyword",
        degraded=not semantic,
        omitted=len(scored) - fitting,
        note=note,
    )


async def _query_vector(service: MemoryService, text: str) -> Vectors | None:
    """Return the query's embedding once the index has caught up, or None when semantic search is unavailable."""
    wait = service.settings.model_wait_seconds
    # Opt-in: trade first-call latency for semantic results while the model loads.
    if service.model.state is ModelState.LOADING and wait > 0:
        await service.model.wait(wait)
    if service.model.ready and not service.indexer.ready.is_set():
        # The model just finished; the index opens right after it (a fraction of a second).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(service.indexer.ready.wait(), max(wait, DRAIN_TIMEOUT))
    if not service.model.ready or service.indexer.vectors is None:
        return None
    await service.indexer.drain(DRAIN_TIMEOUT)
    return await service.model.embed_query(text)


async def nearest(
    service: MemoryService, query_vector: Vectors, filters: Filters, pool: int, found: dict[str, Memory]
) -> list[str]:
    """Return vector-ranked ids that pass the filters, adding their memories to `found`."""
    vectors = service.indexer.vectors
    assert vectors is not None
    nearest = await asyncio.to_thread(
        vectors.search,
        query_vector,
        user=service.settings.user,
        namespace=filters.namespace,
        session_id=filters.session_id,
        since_ts=filters.since_ts,
        until_ts=filters.until_ts,
        limit=pool,
    )
    # SQLite decides what exists and what passes the tag filters; the index may hold a forgotten id.
    missing = [i for i, _ in nearest if i not in found]
    found.update(await service.buffer.by_ids(service.settings.user, missing, filters))
    return [i for i, _ in nearest if i in found]


async def within(
    service: MemoryService,
    ranked: list[str],
    window: Filters,
    in_window: int,
    pool: int,
    found: dict[str, Memory],
    *,
    match: str | None = None,
    vector: Vectors | None = None,
) -> list[str]:
    """Return the ranking restricted to a time window: filtered from `ranked` when that is exact, else searched."""
    assert window.since_ts is not None and window.until_ts is not None
    inside = [i for i in ranked if window.since_ts <= _ts(found[i]) <= window.until_ts]
    # The in-window part of `ranked` is exactly what a search inside the window returns when `ranked` holds the
    # whole window, or a full pool from it, or (keyword search filters tags in SQL) every match there is.
    if len(inside) >= min(in_window, pool) or (match is not None and len(ranked) < pool):
        return inside
    if vector is not None:
        return await nearest(service, vector, window, pool, found)
    assert match is not None
    keyword = await service.buffer.keyword_search(service.settings.user, match, window, pool)
    found.update((m.id, m) for m, _ in keyword)
    return [m.id for m, _ in keyword]


def _narrowed(filters: Filters, frame: timeframe.Timeframe) -> Filters | None:
    """Return the filters narrowed to a time window, or None when the window misses the asked range."""
    since = frame.start.timestamp() if filters.since_ts is None else max(frame.start.timestamp(), filters.since_ts)
    until = frame.end.timestamp() if filters.until_ts is None else min(frame.end.timestamp(), filters.until_ts)
    return replace(filters, since_ts=since, until_ts=until) if since <= until else None


def _ts(memory: Memory) -> float:
    return datetime.fromisoformat(memory.created_at).timestamp()
