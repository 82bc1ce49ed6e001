"""The use cases: remember, recall, load_recent, summarize_history, forget. Faces call only this."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from agent_memory.config import Settings
from agent_memory.embedding.embedder import Embedder, SentenceTransformerEmbedder
from agent_memory.embedding.host import BackgroundModel, ModelState
from agent_memory.errors import BackendError, InvalidInput, NotFound
from agent_memory.index.indexer import Indexer
from agent_memory.models import (
    BulkItem,
    BulkResult,
    ForgetResult,
    NewMemory,
    RecallResult,
    RecentResult,
    RememberResult,
    SummaryResult,
)
from agent_memory.recall import pipeline as recall
from agent_memory.store.files import make_private_dir
from agent_memory.store.rows import Filters, NewRow
from agent_memory.store.sqlite import Buffer
from agent_memory.summary import history
from agent_memory.summary.backends import (
    AnthropicSummarizer,
    SummaryPlan,
)
from agent_memory.write import validation as check
from agent_memory.write.scrubber import scrub, scrub_json

logger = logging.getLogger(__name__)


class MemoryService:
    """One user's memory: the SQLite buffer, the vector index and the summarizers."""

    def __init__(self, settings: Settings, buffer: Buffer, model: BackgroundModel) -> None:
        self.settings = settings
        self.buffer = buffer
        self.model = model
        self.indexer = Indexer(settings, buffer, model)
        self.session_id = f"session-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        # "Now" for recall: recency and "last week" are measured from it (an evaluation replays another date).
        self.clock: Callable[[], datetime] = _utc_now
        self._anthropic = (
            AnthropicSummarizer(settings.anthropic_api_key, settings.summary_model, settings.anthropic_base_url)
            if settings.anthropic_api_key and settings.summarizer in ("auto", "anthropic")
            else None
        )

    @classmethod
    async def open(
        cls, settings: Settings, embedder: Embedder | None = None, *, without_model: str | None = None
    ) -> MemoryService:
        """Open the stores, start loading the model and the indexer; returns without waiting for the model.

        `without_model` (the reason) keeps the model unloaded, for CLI commands that need no semantic search.
        """
        make_private_dir(settings)
        buffer = await Buffer.open(settings.sqlite_path)
        make_private_dir(settings)  # again: the -wal and -shm files of a database made by an older version
        model = BackgroundModel(embedder or SentenceTransformerEmbedder.from_settings(settings))
        if without_model is not None:
            model.disable(without_model)
        else:
            model.start()
        service = cls(settings, buffer, model)
        service.indexer.start()
        return service

    async def close(self) -> None:
        """Stop background work and close the database."""
        await self.indexer.stop()
        await self.buffer.close()

    def status(self) -> str:
        """Describe the semantic search state in one sentence."""
        if self.model.state is ModelState.LOADING:
            return "The embedding model is still loading; semantic search starts when it is ready."
        if self.model.state is ModelState.FAILED:
            return f"Semantic search is off: {self.model.error}"
        if self.indexer.error and self.indexer.vectors is None:
            return f"Semantic search is off: {self.indexer.error}."
        if self.indexer.error:
            return (
                f"The vector index is behind: {self.indexer.error}. Memories it does not hold yet are found by"
                " keyword only."
            )
        return "ready"

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
    ) -> RememberResult:
        """Store a memory in SQLite (acknowledged on commit); the vector index follows in the background."""
        row, redacted = self._prepare(
            NewMemory(
                content=content,
                role=role,
                tags=tags,
                session_id=session_id,
                namespace=namespace,
                metadata=metadata,
                created_at=created_at,
            )
        )
        [(memory_id, stamp, duplicate)] = await self.buffer.insert_many([row])
        if not duplicate:
            self.indexer.notify()
        state = self.status()
        notes = [] if state == "ready" else [state]
        if redacted:
            notes.insert(0, _redaction_note(redacted))
        return RememberResult(
            id=memory_id,
            created_at=stamp,
            duplicate=duplicate,
            redacted=list(redacted),
            note=" ".join(notes) or None,
        )

    async def remember_many(self, items: Sequence[NewMemory]) -> BulkResult:
        """Store many memories in one transaction (imports); invalid items are reported, the rest stored."""
        outcomes: list[BulkItem] = []
        rows: list[tuple[int, NewRow, tuple[str, ...]]] = []
        for index, item in enumerate(items):
            try:
                rows.append((index, *self._prepare(item)))
            except InvalidInput as exc:
                outcomes.append(BulkItem(index=index, error=str(exc)))
        inserted = await self.buffer.insert_many([row for _, row, _ in rows])
        outcomes.extend(
            BulkItem(index=index, id=memory_id, created_at=stamp, duplicate=duplicate, redacted=list(redacted))
            for (index, _, redacted), (memory_id, stamp, duplicate) in zip(rows, inserted, strict=True)
        )
        outcomes.sort(key=lambda o: o.index)
        duplicates = sum(o.duplicate for o in outcomes)
        if len(inserted) > duplicates:
            self.indexer.notify()
        failed = len(items) - len(inserted)
        return BulkResult(stored=len(inserted) - duplicates, duplicates=duplicates, failed=failed, items=outcomes)

    def _prepare(self, item: NewMemory) -> tuple[NewRow, tuple[str, ...]]:
        """Check, normalise and scrub one memory; every write path goes through here. Returns the kinds masked."""
        text = check.content(item.content, self.settings)
        role = check.role(item.role)
        when = check.timestamp(item.created_at, "created_at") or datetime.now(UTC)
        tags = check.tags(item.tags, self.settings)
        metadata = check.metadata(item.metadata, self.settings)
        redacted: tuple[str, ...] = ()
        if self.settings.scrub_secrets:
            # Before hashing and storing: the secret never reaches SQLite, FTS, the vector index or a summary.
            scrubbed = scrub(text)
            metadata, in_metadata = scrub_json(metadata)
            tags_scrubbed, in_tags = scrub_json(list(tags))
            text, tags = scrubbed.text, tuple(tags_scrubbed)
            redacted = scrubbed.kinds + in_metadata + in_tags
        row = NewRow(
            id=uuid.uuid4().hex if item.id is None else check.label(item.id, "id"),
            user=self.settings.user,
            namespace=self._namespace(item.namespace),
            session_id=self._session(item.session_id),
            role=role,
            content=text,
            content_hash=hashlib.sha256(f"{role}\x1f{text}".encode()).hexdigest(),
            tags=tags,
            metadata=metadata,
            created_at=when,
        )
        return row, redacted

    def scoped(self, user: str, session_id: str | None = None) -> MemoryService:
        """Return a view of the same stores, model and indexer acting for another user (operator tools, HTTP tokens)."""
        view = copy.copy(self)
        view.settings = replace(self.settings, user=user)
        if session_id is not None:
            view.session_id = session_id
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
    ) -> RecallResult:
        """Return the memories most relevant to the query: keyword and vector candidates, fused."""
        text = check.query(query, self.settings)
        limit = check.limit(limit, "limit", self.settings.max_recall_limit)
        if max_tokens is not None:
            max_tokens = check.limit(max_tokens, "max_tokens", 1_000_000)
        filters = self._filters(namespace, session_id, tags, since, until)
        return await recall.run(self, text, filters, limit, max_tokens)

    async def load_recent(
        self, *, limit: int = 20, session_id: str | None = None, namespace: str | None = None
    ) -> RecentResult:
        """Return the newest memories in scope, oldest first."""
        limit = check.limit(limit, "limit", self.settings.max_recent_limit)
        filters = self._filters(namespace, session_id, None, None, None)
        return RecentResult(messages=await self.buffer.recent(self.settings.user, filters, limit))

    async def namespaces(self, prefix: str = "", limit: int = 100) -> list[str]:
        """Return this user's namespaces starting with `prefix` (for argument completion)."""
        return await self.buffer.namespaces(self.settings.user, prefix[:64], limit)

    async def forget(self, memory_id: str, *, namespace: str | None = None) -> ForgetResult:
        """Delete a memory of this namespace from SQLite, the vector index and any summary that covered it."""
        if not isinstance(memory_id, str) or not memory_id.strip():
            raise NotFound("id is empty: pass the id returned by remember or recall.")
        memory_id = check.utf8(memory_id, "id").strip()
        space = self._namespace(namespace)
        if not await self.buffer.delete(self.settings.user, memory_id, space):
            raise NotFound(
                f"No memory with id {memory_id[:80]!r} exists in namespace {space!r}; use recall or load_recent to"
                " find ids, and pass the hit's namespace for a memory stored in another one."
            )
        await self.buffer.summaries.drop_covering(self.settings.user, memory_id)
        if self.indexer.vectors is not None:
            try:
                await asyncio.to_thread(self.indexer.vectors.delete, [memory_id])
            except BackendError as exc:
                # SQLite decides what exists: a vector left behind is never returned by recall.
                logger.warning("could not delete %s from the vector index: %s", memory_id, exc)
        return ForgetResult(id=memory_id, deleted=True)

    def wants_sampling(self) -> bool:
        """Return True when the client's LLM (MCP sampling) should write summaries, if the client offers it."""
        return self._anthropic is None and self.settings.summarizer in ("auto", "sampling")

    async def plan_summary(
        self,
        *,
        session_id: str | None = None,
        namespace: str | None = None,
        limit: int | None = None,
        since: str | None = None,
        focus: str | None = None,
    ) -> SummaryPlan:
        """Select the messages to summarise and find a stored summary that covers a prefix of them."""
        filters = self._filters(namespace, session_id, None, since, None)
        cap = self.settings.summary_max_messages
        count = check.limit(limit, "limit", cap) if limit is not None else cap
        focus_key = check.optional_text(focus, "focus") or ""
        return await history.plan(self.buffer, self.settings, filters, count, focus_key)

    async def summarize_history(
        self, plan: SummaryPlan | None = None, *, sampled_text: str | None = None, **selection: Any
    ) -> SummaryResult:
        """Summarise the selected messages incrementally; `sampled_text` is what the client's LLM wrote for `plan`."""
        plan = plan or await self.plan_summary(**selection)
        return await history.summarize(self.buffer, self.settings, plan, self._anthropic, sampled_text)

    def _namespace(self, namespace: str | None) -> str:
        return self.settings.namespace if namespace is None else check.label(namespace, "namespace")

    def _session(self, session_id: str | None) -> str:
        return self.session_id if session_id is None else check.label(session_id, "session_id")

    def _filters(
        self,
        namespace: str | None,
        session_id: str | None,
        tags: list[str] | None,
        since: str | None,
        until: str | None,
    ) -> Filters:
        start = check.timestamp(since, "since")
        end = check.timestamp(until, "until", end_of_day=True)
        if start and end and start > end:
            raise InvalidInput("since is after until: swap them or widen the range.")
        return Filters(
            namespace=self._namespace(namespace),
            session_id=None if session_id is None else check.label(session_id, "session_id"),
            tags=check.tags(tags, self.settings),
            since_ts=start.timestamp() if start else None,
            until_ts=end.timestamp() if end else None,
        )


def _redaction_note(kinds: Sequence[str]) -> str:
    counts = ", ".join(f"{kind} x{n}" if n > 1 else kind for kind, n in Counter(kinds).items())
    return (
        f"Masked {len(kinds)} secret{'s' if len(kinds) > 1 else ''} ({counts}) before storing; the stored text"
        " holds [REDACTED:<kind>] instead (AGENT_MEMORY_SCRUB_SECRETS=false keeps text verbatim)."
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)
