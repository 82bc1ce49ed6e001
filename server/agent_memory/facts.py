"""Facts that change, part of the service: supersede links on recall hits, a memory's history, expiry, near memories.

Nothing here decides what is true: the caller says what replaces what (`remember(..., supersedes=...)`), and the
server only keeps the chain, answers with the current memory and points at near memories the caller may replace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from agent_memory.config import Settings
from agent_memory.embedding.host import ModelHost
from agent_memory.errors import BackendError, NotFound
from agent_memory.index.indexer import Indexer
from agent_memory.models import Hit, Memory, Similar, TidyReport
from agent_memory.recall import near
from agent_memory.store.protocol import MemoryStore
from agent_memory.store.rows import Filters
from agent_memory.write import prepare
from agent_memory.write import validation as check

logger = logging.getLogger(__name__)

# How often a running service purges expired memories and retries vector deletions that failed.
UPKEEP_SECONDS = 300.0
UPKEEP_BATCH = 500
# Said when `similar` kept to shared words because the model was embedding other memories right then.
BUSY_NOTE = (
    "similar lists memories sharing words only (the model was busy indexing): if the memory this replaces is not"
    " listed, recall its subject in a few words of your own."
)
# `tidy` compares at most this many current memories of a namespace (the oldest).
TIDY_MAX = 50_000


def stamp(moment: datetime) -> str:
    """Return a time as the ISO 8601 UTC text memories carry."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def passed_note(heads: Sequence[str]) -> str:
    """Return the sentence telling the caller that an id it named was already superseded."""
    return (
        f"Some ids you named were already superseded; the newest memory of their chain was superseded instead:"
        f" {', '.join(heads)}."
    )


class Facts:
    """Supersede and expiry methods of MemoryService (which provides the attributes below)."""

    settings: Settings
    clock: Callable[[], datetime]
    _store: MemoryStore
    _model: ModelHost
    _indexer: Indexer

    async def with_links(self, hits: list[Hit]) -> list[Hit]:
        """Return the hits, each saying which memories it superseded, the newer of two near twins first."""
        links = await self._store.superseded_of(self.settings.user, [h.id for h in hits])
        hits = [h.model_copy(update={"supersedes": links[h.id]}) if h.id in links else h for h in hits]
        flagged = near.outdated([(h.id, h.created_at, h.content) for h in hits if h.superseded_by is None])
        if not flagged:
            return hits
        # A flag recall already set (recall/near.py prefer_current) stays when the twin test finds none.
        ordered = [h.model_copy(update={"possibly_outdated": flagged.get(h.id, h.possibly_outdated)}) for h in hits]
        # The newer twin moves up to just before the older when it ranked below it: the older slides down one
        # place and nothing else moves (twins say the same, so what the top ranks say stays the same).
        for old_id, new_id in flagged.items():
            place = {h.id: n for n, h in enumerate(ordered)}
            if place[old_id] < place[new_id]:
                ordered.insert(place[old_id], ordered.pop(place[new_id]))
        return ordered

    async def forget_vectors(self, ids: Sequence[str]) -> None:
        """Delete forgotten memories' vectors; when the index is closed or fails, keep a tombstone to retry."""
        try:
            if self._indexer.vectors is not None:
                await self._indexer.forget(ids)
                return
        except BackendError as exc:
            logger.warning("could not delete %d vectors now, retried by upkeep: %s", len(ids), exc)
        await self._store.add_tombstones(ids)

    async def upkeep(self) -> int:
        """Purge expired memories from the store, summaries and vector index, and retry vector deletions."""
        now, purged = self.clock().timestamp(), 0
        while rows := await self._store.expired(now, UPKEEP_BATCH):
            for user, memory_id in rows:
                await self._store.delete(user, memory_id)
                await self._store.summaries.drop_covering(user, memory_id)
            await self.forget_vectors([memory_id for _, memory_id in rows])
            purged += len(rows)
        if self._indexer.vectors is not None and (waiting := await self._store.tombstones(UPKEEP_BATCH)):
            try:
                await self._indexer.forget(waiting)
                await self._store.drop_tombstones(waiting)
            except BackendError as exc:
                logger.warning("vector deletions still failing, retried later: %s", exc)
        return purged

    async def upkeep_loop(self) -> None:
        """Run upkeep now and every UPKEEP_SECONDS until cancelled; a failure is logged and retried."""
        while True:
            try:
                await self.upkeep()
            except Exception as exc:
                logger.warning("upkeep of expired memories failed, retried later: %s", exc)
            await asyncio.sleep(UPKEEP_SECONDS)

    async def tidy(self, *, namespace: str | None = None, apply: bool = False) -> TidyReport:
        """Report near-twin clusters and expired memories; with `apply`, fold each cluster into its oldest memory
        by superseding (never deleting) and purge the expired ones."""
        space = prepare.namespace(namespace, self.settings)
        now = self.clock().timestamp()
        memories = await self._store.current(self.settings.user, space, now, TIDY_MAX)
        by_id = {m.id: m for m in memories}
        groups = near.clusters([(m.id, m.content) for m in memories])
        report = TidyReport(
            namespace=space,
            clusters=[[by_id[i] for i in g] for g in groups],
            expired=await self._store.count_expired(self.settings.user, now),
            applied=apply,
            scanned=len(memories),
        )
        if apply:
            for oldest, *rest in groups:
                report.superseded += len(await self._store.supersede(self.settings.user, oldest, rest))
            report.purged = await self.upkeep()
        return report

    async def history(self, memory_id: str) -> list[Memory]:
        """Return the chain of memories a memory belongs to, oldest first: what it replaced and what replaced it."""
        if not isinstance(memory_id, str) or not memory_id.strip():
            raise NotFound("id is empty: pass the id returned by remember or recall.")
        found = await self._store.chain(self.settings.user, check.utf8(memory_id, "id").strip())
        if not found:
            raise NotFound(f"No memory with id {memory_id[:80]!r} exists; use recall or load_recent to find ids.")
        return found

    async def similar(
        self, new_id: str, content: str, namespace: str, skip: Sequence[str], *, by_vector: bool = True
    ) -> tuple[list[Similar], str | None]:
        """Return the existing current memories of the namespace very close to a new one (not those it replaced),
        and a note for the caller when the meaning side was skipped because the model was busy.

        `by_vector` False keeps to shared words: a turn of a named conversation is a chat log, not a fact, and
        embedding each turn a second time cut LongMemEval ingest from 175 to 3.5 memories/s.
        """
        user, scope = self.settings.user, Filters(namespace=namespace, now_ts=self.clock().timestamp())
        # The two sides at once: the keyword search runs on the store's thread, the vector side on others.
        words, (cosines, note) = await asyncio.gather(
            self._store.keyword_search(user, near.similar_terms(content), scope, near.POOL),
            self._near_by_vector(content, scope) if by_vector else _nothing(),
        )
        found = {m.id: m for m, _ in words}
        missing = [i for i in cosines if i not in found]
        found.update(await self._store.by_ids(user, missing, scope))
        close: list[Similar] = []
        for memory_id, memory in found.items():
            value = near.closeness(cosines.get(memory_id), near.word_overlap(content, memory.content))
            if value is not None and memory_id != new_id and memory_id not in skip:
                close.append(Similar(id=memory_id, content=memory.content, created_at=memory.created_at, score=value))
        close.sort(key=lambda s: s.score, reverse=True)
        return [s.model_copy(update={"score": round(s.score, 3)}) for s in close[: near.MAX_SIMILAR]], note

    async def _near_by_vector(self, content: str, scope: Filters) -> tuple[dict[str, float], str | None]:
        """Return the cosines of the memories nearest a new one, and a note when the model was too busy to say."""
        cosines: dict[str, float] = {}
        # Never waits for the model or the index: remember answers at once, the word side still finds repeats.
        if not self._model.ready or self._indexer.vectors is None:
            return cosines, None
        try:
            vector = await self._model.embed_query_now(content)
            if vector is None:
                return cosines, BUSY_NOTE
            for memory_id, cosine, _ in await self._indexer.nearest(vector, self.settings.user, scope, near.POOL):
                cosines[memory_id] = max(cosine, cosines.get(memory_id, -1.0))
        except BackendError as exc:
            logger.warning("similar memories by vector failed; by words only: %s", exc)
        return cosines, None


async def _nothing() -> tuple[dict[str, float], str | None]:
    return {}, None
