"""How close two memories are, for `remember`'s `similar`: the vector index's cosine, or shared content words.

The thresholds are measured, not guessed: bench/similar.py on LongMemEval's knowledge-update facts (pairs that
should be found) and the other turns of the same histories (which should not); the figures are in
docs/quality.md. Either side alone can find a near memory: the vector side a reworded one, the word side one
stored while the model was loading or the index was behind.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import numpy as np

from agent_memory.embedding.pooling import Vectors
from agent_memory.errors import BackendError
from agent_memory.models import Memory
from agent_memory.recall.terms import keyword_terms

logger = logging.getLogger(__name__)

# Cosine of the new memory's vector with an existing memory's best window, at or above which it is similar.
VECTOR_THRESHOLD = 0.55
# Share of content words in common (Dice coefficient) at or above which it is similar.
WORD_THRESHOLD = 0.5
# Share of content words in common at or above which, of two recall hits, the older is flagged possibly outdated.
OUTDATED_THRESHOLD = 0.85
# Fewer content words than this say too little to call two memories twins ("Thanks!", "Sounds good.").
MIN_TWIN_WORDS = 4
# The word side of `similar` searches the new memory's longest content words only (long words are the rarer ones):
# a memory sharing half its words shares some of these, and an FTS query of every word of a chat-sized memory
# cost remember 37 ms at 10k memories against 2.4 ms for eight.
SIMILAR_TERMS = 8
# How many candidates each side looks at, and how many similar memories `remember` returns at most.
POOL = 8
MAX_SIMILAR = 3


def word_overlap(a: str, b: str) -> float:
    """Return the Dice coefficient of two texts' content words (0: none shared, 1: the same words)."""
    left, right = set(keyword_terms(a)), set(keyword_terms(b))
    if not left or not right:
        return 0.0
    return 2 * len(left & right) / (len(left) + len(right))


def similar_terms(text: str) -> list[str]:
    """Return the words `similar` searches for: the text's longest content words (in the text's order)."""
    terms = keyword_terms(text)
    longest = set(sorted(terms, key=len, reverse=True)[:SIMILAR_TERMS])
    return [t for t in terms if t in longest]


def closeness(cosine: float | None, overlap: float) -> float | None:
    """Return how close a candidate is (the side that passes its threshold best), or None when it is not similar."""
    scores = []
    if cosine is not None and cosine >= VECTOR_THRESHOLD:
        scores.append(cosine)
    if overlap >= WORD_THRESHOLD:
        scores.append(overlap)
    return max(scores) if scores else None


def twins(a: str, b: str) -> bool:
    """Return whether two memories say nearly the same thing in nearly the same words."""
    return _twin_words(set(keyword_terms(a)), set(keyword_terms(b)))


def _twin_words(left: set[str], right: set[str]) -> bool:
    if min(len(left), len(right)) < MIN_TWIN_WORDS:
        return False
    return 2 * len(left & right) / (len(left) + len(right)) >= OUTDATED_THRESHOLD


def outdated(hits: list[tuple[str, str, str]]) -> dict[str, str]:
    """Return, for (id, created_at, content) hits, the older of each nearly identical pair mapped to the newer."""
    words = [set(keyword_terms(text)) for _, _, text in hits]
    times = [datetime.fromisoformat(at) for _, at, _ in hits]
    flagged: dict[str, str] = {}
    for i, (old_id, _, _) in enumerate(hits):
        for j, (new_id, _, _) in enumerate(hits):
            if old_id in flagged or new_id in flagged or times[j] <= times[i]:
                continue
            if _twin_words(words[i], words[j]):
                flagged[old_id] = new_id
    return flagged


# Words in more memories than this are too common to find twins by (twins share their rarer words too).
COMMON_WORD = 200


def clusters(memories: list[tuple[str, str]]) -> list[list[str]]:
    """Return groups of near-twin memories among (id, text), each in the given order, groups of two or more."""
    words = [set(keyword_terms(text)) for _, text in memories]
    postings: dict[str, list[int]] = {}
    for n, found in enumerate(words):
        for word in found:
            postings.setdefault(word, []).append(n)
    parent = list(range(len(memories)))

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for n, found in enumerate(words):
        if len(found) < MIN_TWIN_WORDS:
            continue
        near = {m for w in found if len(postings[w]) <= COMMON_WORD for m in postings[w] if m > n}
        for m in near:
            if _twin_words(found, words[m]):
                parent[root(m)] = root(n)
    groups: dict[int, list[str]] = {}
    for n, (memory_id, _) in enumerate(memories):
        groups.setdefault(root(n), []).append(memory_id)
    return [g for g in groups.values() if len(g) > 1]


# Prefer the current fact when nobody marked it (recall, on the hits it returns). A fact that changed is usually
# reworded ("I live in Lisbon" / "We moved to Porto"): the old statement shares the question's words and ranks
# first, the new one does not, yet it is usually among the hits. Of two short statements among the hits, said on
# different days, the newer moves to just above the older when their vectors are at least CURRENT_LIFT close (a
# preference between two answers to the same question), and the older is flagged only at CURRENT_FLAG (a claim:
# "this may be outdated"). Only the order changes, never which memories are returned. Measured: docs/quality.md.
# Longer memories are chat turns or notes, and questions state nothing: neither is a fact that changes.
FACT_CHARS = 300
CURRENT_LIFT = 0.25
CURRENT_FLAG = 0.5
CURRENT_GAP_SECONDS = 86_400.0  # said the same day: a repeat, not a change

Ranked = list[tuple[float, Memory]]
# The vectors of these memories, one row each (the index's, or embedded when it does not hold them yet).
Embed = Callable[[Sequence[Memory]], Awaitable[Vectors]]


async def prefer_current(ranked: Ranked, embed: Embed, limit: int) -> tuple[Ranked, dict[str, str]]:
    """Return the hits (the first `limit`), the newer statement of a fact just above the older, and older -> newer."""
    hits = ranked[:limit]
    looked = [m for _, m in hits if _statement(m)]
    if len(looked) < 2:
        return hits, {}
    try:
        vectors = np.asarray(await embed(looked), dtype=np.float32)
    except BackendError as exc:  # the ranking stands as it is
        logger.warning("could not compare near statements; ranked as found: %s", exc)
        return hits, {}
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    close = vectors @ vectors.T
    times = [_stamp(m) for m in looked]
    order, moved, flagged = list(hits), set(), {}
    for i, old in enumerate(looked):
        newer = [j for j in range(len(looked)) if times[j] - times[i] >= CURRENT_GAP_SECONDS and j not in moved]
        best = max(newer, key=lambda j: close[i, j], default=None)
        if best is None or close[i, best] < CURRENT_LIFT:
            continue
        moved.add(i)
        new = looked[best]
        if close[i, best] >= CURRENT_FLAG:
            flagged[old.id] = new.id
        place = {m.id: n for n, (_, m) in enumerate(order)}
        if place[new.id] > place[old.id]:
            order.pop(place[new.id])
            order.insert(place[old.id], (order[place[old.id]][0], new))
    return order, flagged


def _statement(memory: Memory) -> bool:
    """Return whether a memory may state a fact that changes: short, not a question, not already replaced."""
    text = memory.content.rstrip()
    return len(text) <= FACT_CHARS and not text.endswith("?") and memory.superseded_by is None


def _stamp(memory: Memory) -> float:
    return datetime.fromisoformat(memory.created_at).timestamp()
