"""Split long memories into overlapping word windows for embedding.

MiniLM reads only its first 256 word pieces (about 180 English words) and silently drops the rest, so a fact in
the second half of a long message would be invisible to vector search. A memory longer than one window is
embedded as several overlapping windows and scored by its best window. A short memory stays one window holding
exactly its text, so chat-sized messages cost what they always did.
"""

from __future__ import annotations

import math
import re

# Bump when the windows change: the vector table name carries it, so existing indexes rebuild from SQLite.
VERSION = 1
# 160 words are about 210 word pieces in English prose: inside the model's 256 even with numbers and markup.
WINDOW_WORDS = 160
# Overlap so a sentence cut at one window's edge is whole in its neighbour.
OVERLAP_WORDS = 32
# A 20,000-character memory has ~25 windows; the cap bounds the embedding cost of one huge memory (keyword
# search still sees all of it).
MAX_CHUNKS = 12

_WORD = re.compile(r"\S+")


def chunks(
    text: str, window: int = WINDOW_WORDS, overlap: int = OVERLAP_WORDS, max_chunks: int = MAX_CHUNKS
) -> list[str]:
    """Return the windows of text to embed: the text itself when short, else overlapping word windows."""
    spans = [m.span() for m in _WORD.finditer(text)]
    if len(spans) <= window:
        return [text]
    # Full-length windows spread evenly from the first word to the last: no stub window at the end, and past
    # the cap the windows sample the whole text (start and end included) instead of only its beginning.
    count = min(max_chunks, math.ceil((len(spans) - overlap) / (window - overlap)))
    last = len(spans) - window
    starts = sorted({round(i * last / (count - 1)) for i in range(count)})
    return [text[spans[s][0] : spans[s + window - 1][1]] for s in starts]
