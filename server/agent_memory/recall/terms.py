"""The words of a query that keyword search looks for."""

from __future__ import annotations

import re
from collections.abc import Collection

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


def keyword_terms(text: str, ignore: Collection[str] = ()) -> list[str]:
    """Return the distinct searchable words of a query, topic words first, without the `ignore` words."""
    words = [w.lower() for w in _WORD.findall(text)]
    topical = [w for w in words if w not in STOPWORDS and w not in ignore]
    chosen = topical or words
    return list(dict.fromkeys(chosen))


# An FTS5 query of more terms costs more than it finds.
MAX_TERMS = 32


def search_terms(text: str, ignore: Collection[str] = ()) -> list[str]:
    """Return the terms keyword search looks for (the first MAX_TERMS of keyword_terms)."""
    return keyword_terms(text, ignore)[:MAX_TERMS]
