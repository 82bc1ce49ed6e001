"""How close two memories are, for `remember`'s `similar`: the vector index's cosine, or shared content words.

The thresholds are measured, not guessed: bench/similar.py on LongMemEval's knowledge-update facts (pairs that
should be found) and the other turns of the same histories (which should not); the figures are in
docs/quality.md. Either side alone can find a near memory: the vector side a reworded one, the word side one
stored while the model was loading or the index was behind.
"""

from __future__ import annotations

from datetime import datetime

from agent_memory.recall.terms import keyword_terms

# Cosine of the new memory's vector with an existing memory's best window, at or above which it is similar.
VECTOR_THRESHOLD = 0.55
# Share of content words in common (Dice coefficient) at or above which it is similar.
WORD_THRESHOLD = 0.5
# Share of content words in common at or above which, of two recall hits, the older is flagged possibly outdated.
OUTDATED_THRESHOLD = 0.85
# Fewer content words than this say too little to call two memories twins ("Thanks!", "Sounds good.").
MIN_TWIN_WORDS = 4
# How many candidates each side looks at, and how many similar memories `remember` returns at most.
POOL = 8
MAX_SIMILAR = 3


def word_overlap(a: str, b: str) -> float:
    """Return the Dice coefficient of two texts' content words (0: none shared, 1: the same words)."""
    left, right = set(keyword_terms(a)), set(keyword_terms(b))
    if not left or not right:
        return 0.0
    return 2 * len(left & right) / (len(left) + len(right))


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
    left, right = set(keyword_terms(a)), set(keyword_terms(b))
    if min(len(left), len(right)) < MIN_TWIN_WORDS:
        return False
    return 2 * len(left & right) / (len(left) + len(right)) >= OUTDATED_THRESHOLD


def outdated(hits: list[tuple[str, str, str]]) -> dict[str, str]:
    """Return, for (id, created_at, content) hits, the older of each nearly identical pair mapped to the newer."""
    flagged: dict[str, str] = {}
    for i, (old_id, old_at, old_text) in enumerate(hits):
        for new_id, new_at, new_text in hits[:i] + hits[i + 1 :]:
            newer = datetime.fromisoformat(new_at) > datetime.fromisoformat(old_at) and new_id not in flagged
            if newer and old_id not in flagged and twins(old_text, new_text):
                flagged[old_id] = new_id
    return flagged
