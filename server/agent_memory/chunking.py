"""Split memories into the windows embedded for vector search; a memory is scored by its best window.

MiniLM reads only its first 256 word pieces (about 180 English words) and silently drops the rest, so a fact in
the second half of a long message would be invisible to vector search. A memory longer than one window is
embedded as several overlapping windows.

A chat-sized memory is embedded whole and also sentence by sentence: people mention facts in passing ("By the
way, I took my niece to the museum on Saturday") inside a message about something else, and one vector for the
whole message mostly says what the message is about. A sentence's own vector finds the aside. The search
subtracts what the best of n windows gains by chance alone, so more windows do not win merely for being more.
"""

from __future__ import annotations

import math
import re

# Bump when the windows change: the vector table name carries it, so existing indexes rebuild from SQLite.
VERSION = 2
# 160 words are about 210 word pieces in English prose: inside the model's 256 even with numbers and markup.
WINDOW_WORDS = 160
# Overlap so a sentence cut at one window's edge is whole in its neighbour.
OVERLAP_WORDS = 32
# A 20,000-character memory has ~25 windows; the cap bounds the embedding cost of one huge memory (keyword
# search still sees all of it).
MAX_CHUNKS = 12

_WORD = re.compile(r"\S+")
# A sentence ends at ., ! or ? followed by white space.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")


def chunks(
    text: str, window: int = WINDOW_WORDS, overlap: int = OVERLAP_WORDS, max_chunks: int = MAX_CHUNKS
) -> list[str]:
    """Return the windows of text to embed: the text itself when short, else overlapping word windows."""
    spans = [m.span() for m in _WORD.finditer(text)]
    if len(spans) <= window:
        parts = sentences(text, max_chunks - 1)
        return [text, *parts] if len(parts) > 1 else [text]
    # Full-length windows spread evenly from the first word to the last: no stub window at the end, and past
    # the cap the windows sample the whole text (start and end included) instead of only its beginning.
    count = min(max_chunks, math.ceil((len(spans) - overlap) / (window - overlap)))
    last = len(spans) - window
    starts = sorted({round(i * last / (count - 1)) for i in range(count)})
    return [text[spans[s][0] : spans[s + window - 1][1]] for s in starts]


def sentences(text: str, cap: int = MAX_CHUNKS - 1) -> list[str]:
    """Return the sentences of text (consecutive ones joined evenly when there are more than `cap`)."""
    bounds, start = [], 0
    for match in _SENTENCE_BREAK.finditer(text):
        bounds.append((start, match.start()))
        start = match.end()
    bounds.append((start, len(text)))
    spans = [(a, b) for a, b in bounds if text[a:b].strip()]
    if len(spans) > cap:
        size = math.ceil(len(spans) / cap)
        spans = [(spans[i][0], spans[min(i + size, len(spans)) - 1][1]) for i in range(0, len(spans), size)]
    return [text[a:b] for a, b in spans]
