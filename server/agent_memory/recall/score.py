"""The whole recall score in one place: fusion of the rankings, the vector similarity of a memory, length and
recency priors, and the token budget. Pure functions, no I/O."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from agent_memory.embedding.chunking import sentences, speaker, without_prefix
from agent_memory.recall.terms import STOPWORDS

# Candidates each search contributes to the fusion (at least four times the hits asked for).
CANDIDATES = 100
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


def lift_sessions(
    scores: dict[str, float], sessions: Mapping[str, str], share: float | None = None
) -> dict[str, float]:
    """Lift each memory by a share of the best score in its session: evidence sits with evidence."""
    part = SESSION_LIFT if share is None else share
    best: dict[str, float] = {}
    for i, value in scores.items():
        best[sessions[i]] = max(best.get(sessions[i], value), value)
    return {i: value + part * best[sessions[i]] for i, value in scores.items()}


Source = Literal["keyword", "vector"]
# What each search's ranks are worth in the fusion. On chat turns words carry more than MiniLM's sense of
# them, and a smaller k keeps a strong first keyword match from being flattened into the vector ranks.
WEIGHTS: dict[Source, float] = {"keyword": 0.4, "vector": 0.6}
FUSION: Literal["rrf", "minmax"] = "minmax"
FUSION_K = 30
# A memory not in the vector index yet is scored by keyword alone, at the weight of both searches.
KEYWORD_ALONE = (WEIGHTS["keyword"] + WEIGHTS["vector"]) / WEIGHTS["keyword"]
RECENCY_WEIGHT = 0.01
# The lift of a memory by the best candidate of its session, as a share of that candidate's score.
SESSION_LIFT = 0.2


@dataclass(frozen=True)
class Ranking:
    """One search's candidates, best first, with the score it gave each (BM25, or cosine similarity)."""

    source: Source
    scored: list[tuple[str, float]]

    @property
    def ids(self) -> list[str]:
        """Return the candidates' ids, best first."""
        return [i for i, _ in self.scored]

    def where(self, keep: Callable[[str], bool]) -> Ranking:
        """Return the ranking of the candidates `keep` accepts, in the same order."""
        return Ranking(self.source, [(i, s) for i, s in self.scored if keep(i)])


def fuse(rankings: Sequence[Ranking], method: Literal["rrf", "minmax"] = "rrf") -> dict[str, float]:
    """Fuse the searches' rankings into one score per memory; higher is better.

    "rrf" adds weighted reciprocal ranks; "minmax" adds each search's scores scaled to [0, 1] over its candidates,
    weighted, so a strong lead in one search keeps its size.
    """
    if method == "rrf":
        return rrf([r.ids for r in rankings], [WEIGHTS[r.source] for r in rankings], FUSION_K)
    fused: dict[str, float] = {}
    for ranking in rankings:
        values = [value for _, value in ranking.scored]
        if not values:
            continue
        low, span = min(values), max(values) - min(values)
        for item, value in ranking.scored:
            scaled = (value - low) / span if span > 0 else 1.0
            fused[item] = fused.get(item, 0.0) + WEIGHTS[ranking.source] * scaled
    return fused


# The lift given to the turns of a speaker the query names, as a share of the best fused score.
SPEAKER_LIFT = 0.7


def speakers_named(query: str, speakers: Iterable[str | None]) -> set[str]:
    """Return the speakers (of those given) a query names."""
    words = {w.lower() for w in re.findall(r"[\w'-]+", query)}
    return {s for s in speakers if s and s.split()[0].lower() in words}


def named_speakers(query: str, speakers: Iterable[str | None]) -> set[str]:
    """Return the speakers a query names, when it names some but not all of them (else none).

    "What did Kate say about the trip?" is about Kate's turns; a query naming everyone singles out nobody.
    """
    known = {s for s in speakers if s}
    named = speakers_named(query, known)
    return named if len(named) < len(known) else set()


def without_names(query: str, names: Iterable[str]) -> str:
    """Return the query without the given names (what is asked about them is what its vector should say)."""
    words = {part.lower() for name in names for part in name.split()}
    kept = [w for w in query.split() if re.sub(r"'s$|[^\w'-]", "", w).lower() not in words]
    return " ".join(kept) or query


def lift_named_speakers(
    fused: dict[str, float], query: str, contents: Mapping[str, str], lift: float | None = None
) -> dict[str, float]:
    """Lift the turns of the speakers a query names, when it names some but not all speakers among the candidates."""
    share = SPEAKER_LIFT if lift is None else lift
    if not share or not fused:
        return fused
    speakers = {i: speaker(text) for i, text in contents.items()}
    named = named_speakers(query, speakers.values())
    if not named:
        return fused
    added = share * max(fused.values())
    return {i: value + (added if speakers.get(i) in named else 0.0) for i, value in fused.items()}


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


# A memory that only asks, in few topic words ("What about you?", "Have you been to Italy?"), states nothing that
# a question could be looking for; the turn that answers it does (and its neighbour score carries the link).
ASKING_WORDS = 10
ASKING_FACTOR = 0.3


def asking_prior(text: str) -> float:
    """Return a score factor below 1 for a short memory whose every sentence is a question."""
    body = without_prefix(text)
    if not body.rstrip().endswith("?") or not all(part.rstrip().endswith("?") for part in sentences(body)):
        return 1.0
    topical = [w for w in re.findall(r"\w+", body.lower()) if w not in STOPWORDS]
    return ASKING_FACTOR if len(topical) < ASKING_WORDS else 1.0


def recency_boost(age_days: float, half_life_days: float = 30.0, weight: float | None = None) -> float:
    """Return a small score bonus that fades with age: worth a few fused ranks, never a ranking of its own.

    At most RECENCY_WEIGHT, an eighth of what the first place of the strongest search adds to the fusion, so a
    memory from today passes an older one only when they rank within a few places of each other.
    """
    return (RECENCY_WEIGHT if weight is None else weight) * math.exp(-max(age_days, 0.0) / half_life_days)


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
