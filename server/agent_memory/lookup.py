"""What the client hooks inject, read from the store in milliseconds: no service, no model, no vector index.

The prompt hook runs before every prompt, in a fresh process; importing the service (pydantic, numpy, the
indexer) costs more than its whole budget, so these answers are keyword-only (FTS5 BM25) and read-only, with
a relevance bar instead of a model: a memory must hold at least half of the prompt's topic words (and two).
Candidates come from the prompt's rarest words only (fts5vocab document counts): ranking every match of a
common word is what costs time, and rare words say what a prompt is about.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from agent_memory.config import Settings
from agent_memory.recall.terms import search_terms
from agent_memory.store.quick import QuickStore, Row

__all__ = ["Briefing", "Row", "prompt_context", "session_context", "tokens"]

StartSource = Literal["startup", "resume", "clear", "compact"]
_WORD = re.compile(r"\w+", re.UNICODE)
CLIP_CHARS = 600


@dataclass(frozen=True)
class Briefing:
    """Where a project left off: its stored summary, its latest turns and its kept facts."""

    summary: str | None
    turns: list[Row]
    facts: list[Row]


def tokens(text: str) -> int:
    """Return a rough token count (four characters a token), enough to keep a budget."""
    return len(text) // 4 + 1


def prompt_context(
    settings: Settings,
    namespace: str,
    prompt: str,
    session_id: str | None,
    *,
    limit: int = 3,
    max_tokens: int = 300,
    min_share: float = 0.5,
    search_terms_count: int = 5,
) -> list[Row]:
    """Return the memories of other sessions that clear the relevance bar for this prompt, within the budget."""
    terms = search_terms(prompt[: settings.max_content_chars])
    if len(terms) < 2:
        return []  # "yes", "go on": nothing to look up
    needed = max(2, math.ceil(min_share * len(terms)))
    store = QuickStore(settings.sqlite_path)
    try:
        rare = store.rarest(terms, search_terms_count)
        candidates = store.keyword(settings.user, namespace, rare, limit * 4, skip_session=session_id)
    finally:
        store.close()
    wanted = set(terms)
    relevant = [row for row in candidates if len(wanted & {w.lower() for w in _WORD.findall(row.content)}) >= needed]
    return _fit(relevant[:limit], max_tokens)


def session_context(
    settings: Settings,
    namespace: str,
    session_id: str | None,
    source: StartSource,
    *,
    turns: int = 12,
    facts: int = 5,
    max_tokens: int = 1500,
) -> Briefing:
    """Return where this project left off, within the budget (the summary first, then facts, then turns)."""
    # After a compaction the session's own turns are gone from the context, so they are what to bring back;
    # on resume the client reloads them itself.
    skip = None if source == "compact" else session_id
    store = QuickStore(settings.sqlite_path)
    try:
        summary = store.latest_summary(settings.user, namespace)
        kept_facts = store.recent(settings.user, namespace, facts, roles=("fact",))
        latest = store.recent(settings.user, namespace, turns, skip_session=skip)
    finally:
        store.close()
    budget = max_tokens
    if summary is not None:
        summary = summary[: budget * 2]
        budget -= tokens(summary)
    kept_facts = _fit(kept_facts, budget // 3)
    budget -= sum(tokens(r.content) for r in kept_facts)
    # The newest turns matter most: fit from the end.
    latest = _fit(latest[::-1], budget)[::-1]
    return Briefing(summary, latest, kept_facts)


def _fit(rows: list[Row], max_tokens: int) -> list[Row]:
    """Return the leading rows (each clipped) that fit the budget."""
    kept: list[Row] = []
    used = 0
    for row in rows:
        text = row.content if len(row.content) <= CLIP_CHARS else row.content[:CLIP_CHARS] + " [...]"
        cost = tokens(text)
        if used + cost > max_tokens:
            break
        kept.append(Row(row.id, text, row.role, row.namespace, row.session_id, row.created_at, row.tags, row.score))
        used += cost
    return kept
