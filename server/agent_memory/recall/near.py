"""How close two memories are, for `remember`'s `similar`: the vector index's cosine, or shared content words.

The thresholds are measured, not guessed: bench/similar.py on LongMemEval's knowledge-update facts (pairs that
should be found) and the other turns of the same histories (which should not); the figures are in
docs/quality.md. Either side alone can find a near memory: the vector side a reworded one, the word side one
stored while the model was loading or the index was behind.
"""

from __future__ import annotations

from agent_memory.recall.terms import keyword_terms

# Cosine of the new memory's vector with an existing memory's best window, at or above which it is similar.
VECTOR_THRESHOLD = 0.75
# Share of content words in common (Dice coefficient) at or above which it is similar.
WORD_THRESHOLD = 0.6
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
