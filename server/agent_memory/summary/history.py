"""summarize_history: reuse the stored summary for the messages it covers and summarise only what is new."""

from __future__ import annotations

import logging

from agent_memory.config import Settings
from agent_memory.errors import BackendError
from agent_memory.models import Backend, StoredSummary, SummaryRange, SummaryResult
from agent_memory.store.protocol import MemoryStore
from agent_memory.store.rows import Filters
from agent_memory.summary.backends import (
    Summarizer,
    SummaryPlan,
    SummaryRequest,
    extractive_summary,
    fit,
    summary_result,
)
from agent_memory.write.scrubber import scrub

logger = logging.getLogger(__name__)


async def plan(store: MemoryStore, settings: Settings, filters: Filters, count: int, focus_key: str) -> SummaryPlan:
    """Select the newest `count` messages in scope and find a stored summary that covers a prefix of them."""
    selected = await store.recent(settings.user, filters, count)
    # Summaries are kept per namespace; only recall searches every namespace (filters.namespace None).
    namespace = filters.namespace or settings.namespace
    session_key = filters.session_id or ""
    ids = [m.id for m in selected]
    cached = next(
        (
            s
            for s in await store.summaries.latest(settings.user, namespace, session_key, focus_key)
            if s.covered_ids and s.covered_ids == ids[: len(s.covered_ids)]
        ),
        None,
    )
    new = selected[len(cached.covered_ids) :] if cached else selected
    request = None
    if new:
        request = fit(
            SummaryRequest(cached.text if cached else None, new, focus_key or None),
            settings.summary_max_input_chars,
        )
    return SummaryPlan(namespace, session_key, focus_key, selected, cached, request)


async def summarize(
    store: MemoryStore,
    settings: Settings,
    plan: SummaryPlan,
    summarizer: Summarizer | None,
    sampled_text: str | None,
) -> SummaryResult:
    """Summarise the plan's new messages onto its stored summary, store the result and return it."""
    sampled_text = (sampled_text or "").strip() or None  # a blank LLM reply is no summary
    note = None
    backend: Backend
    if plan.request is None:
        text, backend = (plan.cached.text, plan.cached.backend) if plan.cached else ("", "extractive")
        if not plan.selected:
            return SummaryResult(
                summary="No messages to summarise in this scope.",
                backend="extractive",
                covers=SummaryRange(count=0),
                new_messages=0,
                incremental=False,
            )
        return summary_result(plan, text, backend, new=0, note="Nothing new since the stored summary.")
    if sampled_text:
        text, backend = sampled_text.strip(), "sampling"
    elif summarizer is not None:
        try:
            text, backend = await summarizer.summarize(plan.request), "anthropic"
        except BackendError as exc:
            logger.warning("%s; falling back to the extractive summary", exc)
            text, backend = extractive_summary(plan.request), "extractive"
            note = f"{exc} The local extractive summary was used instead."
    else:
        text, backend = extractive_summary(plan.request), "extractive"
    if settings.scrub_secrets:
        text = scrub(text).text  # a summary written by an outside LLM is stored too
    stored = StoredSummary(text=text, backend=backend, covered_ids=[m.id for m in plan.selected])
    await store.summaries.save(settings.user, plan.namespace, plan.session_key, plan.focus, stored)
    new = len(plan.selected) - (len(plan.cached.covered_ids) if plan.cached else 0)
    return summary_result(plan, text, backend, new=new, note=note)
