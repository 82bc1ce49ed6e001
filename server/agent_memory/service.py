"""The use cases, and the only way in for every face: MCP, HTTP, the CLI and the benchmarks call these methods.

The service owns the store (the source of truth), the model host and the indexer that keeps the vector index
in step; none of them is reachable from outside. Operator methods (waiting for the index, reindex, stats,
export pages, doctor) are here too, so a face never needs more than this class.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from agent_memory import diagnostics, facts
from agent_memory.accounts import Accounts, Grant, Issued, UserInfo, has_users
from agent_memory.browse import Browsing
from agent_memory.config import RecallMode, Settings
from agent_memory.embedding import malloc
from agent_memory.embedding.embedder import Embedder, ModelEmbedder
from agent_memory.embedding.host import ModelHost
from agent_memory.errors import InvalidInput, NotFound
from agent_memory.facts import Facts
from agent_memory.index.indexer import Indexer
from agent_memory.models import (
    BulkItem,
    BulkResult,
    Check,
    ForgetResult,
    NewMemory,
    RecallResult,
    RecentResult,
    RememberResult,
    Stats,
)
from agent_memory.operations import Operations
from agent_memory.recall import pipeline
from agent_memory.recall.speakers import SpeakerHints
from agent_memory.store.files import make_private_dir
from agent_memory.store.protocol import MemoryStore
from agent_memory.store.rows import Filters
from agent_memory.store.sqlite import SQLiteStore
from agent_memory.summarizing import Summaries
from agent_memory.summary.backends import SYSTEM_PROMPT as SUMMARY_SYSTEM_PROMPT
from agent_memory.summary.backends import AnthropicSummarizer, SummaryPlan
from agent_memory.write import facts as facts_check
from agent_memory.write import prepare
from agent_memory.write import validation as check

logger = logging.getLogger(__name__)
# recall(namespace=ALL_NAMESPACES) searches all of the user's namespaces, never another user's.
ALL_NAMESPACES = "*"

__all__ = [
    "ALL_NAMESPACES",
    "SUMMARY_SYSTEM_PROMPT",
    "Accounts",
    "Check",
    "Embedder",
    "Grant",
    "Issued",
    "MemoryService",
    "Stats",
    "SummaryPlan",
    "UserInfo",
    "doctor",
    "has_users",
    "tune_process",
]


def tune_process() -> None:
    """Tune a long-running server (fewer malloc arenas, numpy's BLAS on one thread); call once at start-up."""
    malloc.cap_arenas()
    malloc.one_blas_thread()


def doctor(settings: Settings, *, check_model: bool = True) -> list[Check]:
    """Run every read-only check of the data dir, store, model, index and API key."""
    return diagnostics.doctor(settings, check_model=check_model)


class MemoryService(Facts, Operations, Browsing, Summaries):
    """One user's memory: the store, the vector index and the summarizers."""

    def __init__(self, settings: Settings, store: MemoryStore, model: ModelHost) -> None:
        self.settings = settings
        self._store = store
        self._model = model
        self._indexer = Indexer(settings, store, model)
        self._speakers = SpeakerHints()  # who speaks in this user's chats, as recalls meet them
        # Sign-in over HTTP: users, OAuth clients and tokens (accounts.py).
        self.accounts = Accounts(store.oauth, settings.data_dir)
        self.session_id = f"session-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        # "Now" for recall: recency and "last week" are measured from it (an evaluation replays another date).
        self.clock: Callable[[], datetime] = _utc_now
        self._upkeep: asyncio.Task[None] | None = None
        self._anthropic = (
            AnthropicSummarizer(settings.anthropic_api_key, settings.summary_model, settings.anthropic_base_url)
            if settings.anthropic_api_key and settings.summarizer in ("auto", "anthropic")
            else None
        )

    @classmethod
    async def open(
        cls,
        settings: Settings,
        embedder: Embedder | None = None,
        *,
        without_model: str | None = None,
        store: MemoryStore | None = None,
    ) -> MemoryService:
        """Open the store, start loading the model and the indexer; returns without waiting for the model.

        `without_model` (the reason) keeps the model unloaded, for CLI commands that need no semantic search.
        `store` replaces the configured store (tests hand in one opened with their own tuning).
        """
        if store is None and settings.database_url:
            from agent_memory.store.postgres import PostgresStore  # here: psycopg loads only for Postgres

            # The vector index stays in the data dir (LanceDB) until pgvector takes over: see Indexer._open.
            settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            store = await PostgresStore.open(settings.database_url)
        if store is None:
            make_private_dir(settings)
            store = await SQLiteStore.open(settings.sqlite_path)
            make_private_dir(settings)  # again: the -wal and -shm files of a database made by an older version
        model = ModelHost(embedder or ModelEmbedder.from_settings(settings), settings.query_cache_size)
        if without_model is not None:
            model.disable(without_model)
        else:
            model.start()
        service = cls(settings, store, model)
        await service.accounts.share_client_key()
        service._indexer.start()
        service._upkeep = asyncio.create_task(service.upkeep_loop())
        return service

    async def close(self) -> None:
        """Stop background work and close the store."""
        if self._upkeep is not None:
            self._upkeep.cancel()
            await asyncio.wait({self._upkeep})  # not `suppress(CancelledError)`: a cancel of close() itself propagates
        await self._indexer.stop()
        await self._store.close()

    async def remember(
        self,
        content: str,
        *,
        role: str = "user",
        tags: list[str] | None = None,
        session_id: str | None = None,
        namespace: str | None = None,
        metadata: dict[str, Any] | None = None,
        created_at: str | None = None,
        supersedes: list[str] | None = None,
        expires_at: str | None = None,
        ttl: float | None = None,
    ) -> RememberResult:
        """Store a memory (acknowledged on commit), replacing `supersedes`; the vector index follows."""
        replaced = facts_check.supersedes(supersedes)
        expires = facts_check.expiry(expires_at, ttl, self.clock())
        item = NewMemory(
            content=content,
            role=role,
            tags=tags,
            session_id=session_id,
            namespace=namespace,
            metadata=metadata,
            created_at=created_at,
        )
        row, redacted = prepare.new_row(item, self.settings, self.session_id)
        row = replace(row, supersedes=replaced, expires_at=expires)
        [inserted] = await self._store.insert_many([row])
        try:
            # Before the indexer wakes: it would take the model for this very memory, and `similar` would wait.
            similar, busy = await self.similar(
                inserted.id, row.content, row.namespace, replaced, by_vector=not row.in_conversation
            )
        finally:
            if not inserted.duplicate:
                self._indexer.notify()
        status = self.status()
        notes = [m for m in (status.message, busy) if m]
        if redacted:
            notes.insert(0, prepare.redaction_note(redacted))
        passed = [i for i in inserted.superseded if i not in replaced]
        if passed:
            notes.insert(0, facts.passed_note(passed))
        return RememberResult(
            id=inserted.id,
            created_at=inserted.created_at,
            duplicate=inserted.duplicate,
            redacted=list(redacted),
            superseded=list(inserted.superseded),
            expires_at=None if expires is None else facts.stamp(expires),
            similar=similar,
            note=" ".join(notes) or None,
        )

    async def remember_many(self, items: Sequence[NewMemory]) -> BulkResult:
        """Store many memories in one transaction (imports); invalid items are reported, the rest stored."""
        outcomes: list[BulkItem] = []
        rows = []
        for index, item in enumerate(items):
            try:
                rows.append((index, *prepare.new_row(item, self.settings, self.session_id)))
            except InvalidInput as exc:
                outcomes.append(BulkItem(index=index, error=str(exc)))
        inserted = await self._store.insert_many([row for _, row, _ in rows])
        outcomes.extend(
            BulkItem(index=index, id=i.id, created_at=i.created_at, duplicate=i.duplicate, redacted=list(redacted))
            for (index, _, redacted), i in zip(rows, inserted, strict=True)
        )
        outcomes.sort(key=lambda o: o.index)
        duplicates = sum(o.duplicate for o in outcomes)
        if len(inserted) > duplicates:
            self._indexer.notify()
        failed = len(items) - len(inserted)
        return BulkResult(stored=len(inserted) - duplicates, duplicates=duplicates, failed=failed, items=outcomes)

    def scoped(self, user: str, session_id: str | None = None) -> MemoryService:
        """Return a view of the same store, model and indexer acting for another user (operator tools, HTTP tokens)."""
        view = copy.copy(self)
        view.settings = replace(self.settings, user=user)
        if session_id is not None:
            view.session_id = session_id
        return view

    def in_namespace(self, namespace: str) -> MemoryService:
        """Return a view whose default namespace is `namespace` (the workspace's project, resolved by a face)."""
        view = copy.copy(self)
        view.settings = replace(self.settings, namespace=namespace)
        return view

    async def recall(
        self,
        query: str,
        *,
        limit: int = 5,
        tags: list[str] | None = None,
        session_id: str | None = None,
        namespace: str | None = None,
        since: str | None = None,
        until: str | None = None,
        max_tokens: int | None = None,
        mode: RecallMode | None = None,
        as_of: str | None = None,
        include_superseded: bool = False,
    ) -> RecallResult:
        """Return the memories most relevant to the query: keyword and vector candidates, fused.

        `namespace="*"` searches every namespace of this user; each hit names its own.
        `mode` searches by keyword or by vector alone (to measure each); the default is the configured one.
        Only current memories answer, unless `include_superseded`; `as_of` answers with what was current then.
        """
        request = pipeline.Request(
            text=check.query(query, self.settings),
            filters=self._read_filters(namespace, session_id, tags, since, until, as_of, include_superseded),
            limit=check.limit(limit, "limit", self.settings.max_recall_limit),
            max_tokens=None if max_tokens is None else check.limit(max_tokens, "max_tokens", 1_000_000),
            now=self.clock(),
            mode=mode or self.settings.recall_mode,
        )
        outcome = await pipeline.run(self._store, self.settings.user, self._indexer, request, self._speakers)
        status = self.status()
        note = status.message
        if not outcome.semantic and request.mode != "keyword":
            note = (note or "Semantic search failed.") + " Results come from keyword search and recency."
        elif outcome.unindexed:
            waiting = f"{outcome.unindexed} memories in scope are still being embedded: found by keyword only for now."
            note = f"{note} {waiting}" if note else waiting
        return RecallResult(
            hits=await self.with_links(outcome.hits),
            mode="hybrid" if outcome.semantic else "keyword",
            degraded=not outcome.semantic and request.mode != "keyword",
            omitted=outcome.omitted,
            unindexed=outcome.unindexed,
            note=note,
        )

    async def load_recent(
        self, *, limit: int = 20, session_id: str | None = None, namespace: str | None = None
    ) -> RecentResult:
        """Return the newest memories in scope, oldest first."""
        limit = check.limit(limit, "limit", self.settings.max_recent_limit)
        filters = self._read_filters(namespace, session_id, None, None, None)
        return RecentResult(messages=await self._store.recent(self.settings.user, filters, limit))

    async def namespaces(self, prefix: str = "", limit: int = 100) -> list[str]:
        """Return this user's namespaces starting with `prefix` (for argument completion)."""
        return await self._store.namespaces(self.settings.user, prefix[:64], limit)

    async def forget(self, memory_id: str, *, namespace: str | None = None) -> ForgetResult:
        """Delete a memory of this namespace from the store, the vector index and any summary that covered it."""
        if not isinstance(memory_id, str) or not memory_id.strip():
            raise NotFound("id is empty: pass the id returned by remember or recall.")
        memory_id = check.utf8(memory_id, "id").strip()
        space = prepare.namespace(namespace, self.settings)
        if not await self._store.delete(self.settings.user, memory_id, space):
            raise NotFound(
                f"No memory with id {memory_id[:80]!r} exists in namespace {space!r}; use recall or load_recent to"
                " find ids, and pass the hit's namespace for a memory stored in another one."
            )
        await self._store.summaries.drop_covering(self.settings.user, memory_id)
        # The store decides what exists: a vector left behind is never returned, and upkeep deletes it later.
        await self.forget_vectors([memory_id])
        return ForgetResult(id=memory_id, deleted=True)

    def _filters(
        self,
        namespace: str | None,
        session_id: str | None,
        tags: list[str] | None,
        since: str | None,
        until: str | None,
        as_of: str | None = None,
        include_superseded: bool = False,
    ) -> Filters:
        """Return the checked filters of current memories (at the service clock, or `as_of`)."""
        return prepare.filters(
            self.settings,
            namespace,
            session_id,
            tags,
            since,
            until,
            now=self.clock(),
            as_of=as_of,
            include_superseded=include_superseded,
        )

    def _read_filters(self, namespace: str | None, *rest: Any) -> Filters:
        """Return the filters of a read, where ALL_NAMESPACES means every namespace of this user."""
        if namespace != ALL_NAMESPACES:
            return self._filters(namespace, *rest)
        return replace(self._filters(None, *rest), namespace=None)


def _utc_now() -> datetime:
    return datetime.now(UTC)
