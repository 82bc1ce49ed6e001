"""The speakers recent recalls met: a guess at the names to leave out of a query's vector before its search ends."""

from __future__ import annotations

from collections.abc import Iterable

from agent_memory.recall.score import speakers_named

# Enough for every speaker of a user's chats in use at once; the oldest seen are forgotten first.
REMEMBERED = 256


class SpeakerHints:
    """Speakers seen among recent recalls' keyword candidates, newest last.

    A query is embedded while its keyword search runs, before the candidates say who speaks. Guessing the names
    from the speakers earlier recalls met lets that first embedding already leave them out; a wrong guess costs
    only the second embedding every query naming a speaker paid before.
    """

    def __init__(self, size: int = REMEMBERED) -> None:
        self._names: dict[str, None] = {}
        self._size = size

    def guess(self, query: str) -> set[str]:
        """Return the known speakers the query names."""
        return speakers_named(query, self._names)

    def saw(self, speakers: Iterable[str | None]) -> None:
        """Remember speakers met among a recall's candidates."""
        for name in speakers:
            if name:
                self._names.pop(name, None)
                self._names[name] = None
        while len(self._names) > self._size:
            del self._names[next(iter(self._names))]
