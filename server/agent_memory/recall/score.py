"""Pure ranking functions: keyword query building, rank fusion, recency and token budgets."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence

_WORD = re.compile(r"\w+", re.UNICODE)

# Function words carry no topic; dropping them keeps BM25 from rewarding "the" and "did".
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most
    my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves tell remember mention mentioned said say says know""".split()  # noqa: SIM905
)

RRF_K = 60


def keyword_terms(text: str, ignore: Collection[str] = ()) -> list[str]:
    """Return the distinct searchable words of a query, topic words first, without the `ignore` words."""
    words = [w.lower() for w in _WORD.findall(text)]
    topical = [w for w in words if w not in STOPWORDS and w not in ignore]
    chosen = topical or words
    return list(dict.fromkeys(chosen))


def fts_query(text: str, ignore: Collection[str] = ()) -> str | None:
    """Return an FTS5 MATCH expression (quoted terms joined by OR), or None when there is nothing to match."""
    terms = keyword_terms(text, ignore)[:32]
    if not terms:
        return None
    # Quoting makes every term a literal string: FTS5 operators in user text lose their meaning.
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


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
