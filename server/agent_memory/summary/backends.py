"""Summary backends: the Anthropic Messages API, MCP sampling (driven by the face), and a local extractive one.

The LLM backends get one prompt per call: the previous summary (if any) plus only the messages that
arrived since, so summaries are incremental. Input over the size limit is first folded extractively into
the previous summary, so a single call always fits.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agent_memory.errors import BackendError
from agent_memory.models import Backend, Memory, StoredSummary, SummaryRange, SummaryResult
from agent_memory.recall.terms import STOPWORDS, keyword_terms

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You maintain a running summary of a conversation for an assistant's long-term memory. "
    "Write at most 10 short bullet points, each starting with '- ', keeping facts, decisions, preferences, "
    "names, dates and open tasks. Merge the previous summary with the new messages; drop small talk. "
    "Output only the bullets."
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
MAX_BULLETS = 12
_MESSAGE_CHARS = 2_000


@dataclass(frozen=True)
class SummaryRequest:
    """What one summary call has to merge: the previous summary and the new messages."""

    previous: str | None
    messages: Sequence[Memory]
    focus: str | None = None

    def prompt(self) -> str:
        """Render the user turn sent to an LLM."""
        parts = []
        if self.focus:
            parts.append(f"Focus on: {self.focus}")
        parts.append("Previous summary:\n" + (self.previous or "(none)"))
        lines = [
            f"[{m.created_at[:16].replace('T', ' ')}] {m.role}: {m.content[:_MESSAGE_CHARS]}" for m in self.messages
        ]
        parts.append("New messages:\n" + "\n".join(lines))
        return "\n\n".join(parts)


def fit(request: SummaryRequest, max_chars: int) -> SummaryRequest:
    """Return a request whose prompt fits max_chars, folding the oldest overflow into the previous summary."""
    messages = list(request.messages)
    kept: list[Memory] = []
    size = len(request.previous or "") + 200
    for m in reversed(messages):
        cost = min(len(m.content), _MESSAGE_CHARS) + 40
        if size + cost > max_chars and kept:
            break
        kept.append(m)
        size += cost
    kept.reverse()
    overflow = messages[: len(messages) - len(kept)]
    if not overflow:
        return request
    folded = extractive_summary(SummaryRequest(request.previous, overflow, request.focus))
    return SummaryRequest(folded, kept, request.focus)


def extractive_summary(request: SummaryRequest, max_new: int = 8) -> str:
    """Pick the most informative sentences of the new messages and merge them with the previous bullets."""
    sentences: list[tuple[int, str, str]] = []
    for m in request.messages:
        for s in _SENTENCE.split(m.content):
            s = " ".join(s.split())
            if len(s) >= 12:
                sentences.append((len(sentences), m.role, s))
    freq = Counter(t for _, _, s in sentences for t in keyword_terms(s) if t not in STOPWORDS)
    focus = set(keyword_terms(request.focus or ""))

    def score(item: tuple[int, str, str]) -> float:
        _, role, text = item
        terms = [t for t in keyword_terms(text) if t not in STOPWORDS]
        if not terms:
            return 0.0
        value = sum(freq[t] for t in terms) / math.sqrt(len(terms) + 4)
        if role in ("user", "fact"):
            value *= 1.3  # what the person said and stated facts outrank assistant chatter
        if focus & set(terms):
            value *= 2.0
        return value

    best = sorted(sorted(sentences, key=score, reverse=True)[:max_new])
    bullets = [f"- {role}: {_clip(text, 240)}" for _, role, text in best]
    previous = [line for line in (request.previous or "").splitlines() if line.strip()]
    merged = [*previous, *bullets]
    return "\n".join(merged[-MAX_BULLETS:]) if merged else "- (nothing to summarise)"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class SummaryPlan:
    """What a summary call must do: the messages in range, a reusable stored summary and what is new."""

    namespace: str
    session_key: str
    focus: str
    selected: list[Memory]
    cached: StoredSummary | None
    request: SummaryRequest | None


def summary_result(plan: SummaryPlan, text: str, backend: Backend, *, new: int, note: str | None) -> SummaryResult:
    first, last = plan.selected[0], plan.selected[-1]
    return SummaryResult(
        summary=text,
        backend=backend,
        covers=SummaryRange(
            count=len(plan.selected),
            first_id=first.id,
            last_id=last.id,
            first_at=first.created_at,
            last_at=last.created_at,
        ),
        new_messages=new,
        incremental=plan.cached is not None,
        note=note,
    )


class Summarizer(Protocol):
    """An LLM that writes a summary for one request."""

    async def summarize(self, request: SummaryRequest) -> str:
        """Return the summary text; raise BackendError when the backend fails."""
        ...


class AnthropicSummarizer:
    """Summaries from the Anthropic Messages API through the official SDK."""

    def __init__(self, api_key: str, model: str, base_url: str | None = None, max_tokens: int = 600) -> None:
        self._api_key = api_key
        self._model = model
        self._base_url = base_url
        self._max_tokens = max_tokens
        self._client: Any = None

    async def summarize(self, request: SummaryRequest) -> str:
        """Call the Messages API; raise BackendError with the reason on failure."""
        import anthropic

        if self._client is None:
            self._client = anthropic.AsyncAnthropic(
                api_key=self._api_key, base_url=self._base_url, max_retries=2, timeout=60.0
            )
        try:
            response = await self._client.messages.create(
                model=self._model,
                max_tokens=self._max_tokens,
                system=SYSTEM_PROMPT,
                messages=[{"role": "user", "content": request.prompt()}],
            )
        except anthropic.APIError as exc:
            raise BackendError(f"Anthropic API call failed: {exc}") from None
        text = "".join(block.text for block in response.content if getattr(block, "type", "") == "text").strip()
        if not text:
            raise BackendError("Anthropic API returned an empty summary.")
        return text
