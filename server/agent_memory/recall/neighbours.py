"""A conversation turn is read with the turns around it: its vector score takes in its neighbours' scores.

Short chat turns ("Yes, on Friday!") say little alone; the question they answer sits in the turn before, and
what they lead to in the turn after. A turn's similarity to the query is raised by a share of the mean
similarity of the turn before and the turn after it. A memory with no neighbour (not a conversation turn, or
the first or last turn of its session) stands in for the missing one itself, so it is neither helped nor hurt.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent_memory.store.rows import Neighbours

# Share of the neighbours' mean similarity added to a turn's own.
NEIGHBOUR_SHARE = 0.3

Links = dict[str, str | None]


def chain(found: Mapping[str, Neighbours]) -> tuple[Links, Links]:
    """Return the turn before and the turn after each turn that the found neighbourhoods tell of."""
    before: Links = {}
    after: Links = {}
    for turn, (second_before, first_before, first_after, second_after) in found.items():
        before[turn], after[turn] = first_before, first_after
        if first_before is not None:
            before[first_before], after[first_before] = second_before, turn
        if first_after is not None:
            before[first_after], after[first_after] = turn, second_after
    return before, after


def related(before: Links, after: Links) -> set[str]:
    """Return every turn the links name."""
    named = set(before) | set(after)
    return named | {t for t in before.values() if t} | {t for t in after.values() if t}


def propagate(
    similarity: Mapping[str, float], before: Links, after: Links, share: float | None = None
) -> dict[str, float]:
    """Return each memory's similarity raised by `share` (NEIGHBOUR_SHARE) of its neighbours' mean similarity."""
    share = NEIGHBOUR_SHARE if share is None else share
    raised: dict[str, float] = {}
    for memory, own in similarity.items():
        around = [similarity.get(t, own) if t else own for t in (before.get(memory), after.get(memory))]
        raised[memory] = own + share * sum(around) / 2
    return raised
