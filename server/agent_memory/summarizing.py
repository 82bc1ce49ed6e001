"""Summaries of a session or namespace, part of the service: plan which messages, then summarise incrementally."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent_memory.config import Settings
from agent_memory.models import SummaryResult
from agent_memory.store.protocol import MemoryStore
from agent_memory.store.rows import Filters
from agent_memory.summary import history
from agent_memory.summary.backends import AnthropicSummarizer, SummaryPlan
from agent_memory.write import validation as check


class Summaries:
    """Summary methods of MemoryService (which provides the attributes below)."""

    settings: Settings
    _store: MemoryStore
    _anthropic: AnthropicSummarizer | None

    if TYPE_CHECKING:  # provided by MemoryService

        def _filters(
            self,
            namespace: str | None,
            session_id: str | None,
            tags: list[str] | None,
            since: str | None,
            until: str | None,
        ) -> Filters: ...

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
        return await history.plan(self._store, self.settings, filters, count, focus_key)

    async def summarize_history(
        self, plan: SummaryPlan | None = None, *, sampled_text: str | None = None, **selection: Any
    ) -> SummaryResult:
        """Summarise the selected messages incrementally; `sampled_text` is what the client's LLM wrote for `plan`."""
        plan = plan or await self.plan_summary(**selection)
        return await history.summarize(self._store, self.settings, plan, self._anthropic, sampled_text)
