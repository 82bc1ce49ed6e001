"""The whole recall score in one place: fusion of the rankings, the vector similarity of a memory, length and
recency priors, and the token budget. Pure functions, no I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

# Candidates each search contributes to the fusion (at least four times the hits asked for).
CANDIDATES = 50
RRF_K = 60
# Vector rows fetched per memory wanted: several windows of one long memory can crowd the nearest rows.
OVERSAMPLE = 3
# Spread of MiniLM cosine similarity between unrelated texts (about 0.06 on chat messages).
SIMILARITY_SPREAD = 0.06


def pool_size(limit: int) -> int:
    """Return how many candidates each search contributes for `limit` hits."""
    return max(CANDIDATES, limit * 4)


def many_draws_bonus(windows: int) -> float:
    """Return how much the best of `windows` windows beats one window by chance alone.

    A memory scored by its best window gets several draws: the maximum of n similarities of unrelated
    text exceeds a single one by about spread * sqrt(2 ln n). Subtracting that keeps long memories from
    outranking short ones merely for being long, while a window that truly matches still stands out.
    """
    return SIMILARITY_SPREAD * math.sqrt(2 * math.log(windows)) if windows > 1 else 0.0


def best_windows(rows: Iterable[tuple[str, float, int]], limit: int) -> list[tuple[str, float]]:
    """Return (memory id, similarity) of the best memories, from window rows (id, similarity, windows) best first.

    A memory's first row is its best window; its similarity is corrected for the many draws of a long memory.
    """
    best: dict[str, float] = {}
    for memory, similarity, windows in rows:
        if memory not in best:
            best[memory] = similarity - many_draws_bonus(windows)
    return sorted(best.items(), key=lambda pair: pair[1], reverse=True)[:limit]


def final_score(fused: float, chars: int, age_days: float) -> float:
    """Return a memory's recall score: its fused rank score, shortened by length, lifted a little by recency."""
    return fused * length_prior(chars) + recency_boost(age_days)


def rrf(rankings: Sequence[Sequence[str]], weights: Sequence[float] | None = None, k: int = RRF_K) -> dict[str, float]:
    """Fuse ranked id lists by weighted reciprocal rank; higher is better."""
    weights = weights or [1.0] * len(rankings)
    fused: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank + 1)
    return fused


# Memories up to this many characters (a few chat sentences) get no length penalty.
LENGTH_REFERENCE = 500
LENGTH_EXPONENT = 0.15


def length_prior(chars: int, reference: int = LENGTH_REFERENCE, exponent: float = LENGTH_EXPONENT) -> float:
    """Return a score factor that favours short memories: 1.0 up to `reference` characters, 0.58 at 20,000.

    Long memories (explanations, pasted documents) share vocabulary and topic with many queries without
    answering them, while facts are usually stated in a sentence or two; a short hit also costs the client
    fewer tokens. Against fused reciprocal ranks a 2,000-character memory (x0.81) must rank about 14 places
    higher than a chat-sized one to stay ahead of it; one far ahead still wins.
    """
    return min(1.0, float((reference / max(chars, 1)) ** exponent))


def recency_boost(age_days: float, half_life_days: float = 30.0, weight: float = 0.002) -> float:
    """Return a small score bonus that fades with age: worth a few fused ranks, never a ranking of its own.

    At most 0.002 against reciprocal-rank scores near 1/60 per ranking, so a memory from today passes an older one
    only when they rank within a few places of each other.
    """
    return weight * math.exp(-max(age_days, 0.0) / half_life_days)


def estimate_tokens(text: str) -> int:
    """Estimate tokens cheaply (about four characters a token for English)."""
    return max(1, math.ceil(len(text) / 4))


def pack(texts: Sequence[str], max_tokens: int | None, overhead: int = 24) -> int:
    """Return how many leading texts fit in the budget (each costs its tokens plus per-hit overhead)."""
    if max_tokens is None:
        return len(texts)
    used = 0
    for n, text in enumerate(texts):
        used += estimate_tokens(text) + overhead
        if used > max_tokens:
            return n
    return len(texts)
