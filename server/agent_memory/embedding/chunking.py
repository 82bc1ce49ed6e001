"""Split memories into the windows embedded for vector search; a memory is scored by its best window.

MiniLM reads only its first 256 word pieces (about 180 English words) and silently drops the rest, so a fact in
the second half of a long message would be invisible to vector search. A memory longer than one window is
embedded as several overlapping windows.

A chat-sized memory is embedded whole and also sentence by sentence: people mention facts in passing ("By the
way, I took my niece to the museum on Saturday") inside a message about something else, and one vector for the
whole message mostly says what the message is about. A sentence's own vector finds the aside. The search
subtracts what the best of n windows gains by chance alone, so more windows do not win merely for being more.

A chat turn stored as "[<when>] <Speaker>: <text>" is embedded without that prefix: on a short turn the date
and the name would make up much of the vector and every turn of a chat would look alike; keyword search still
reads them, and recall lifts a named speaker's turns itself.

`plan` gives each text to embed with its spans. A model with mean pooling (MiniLM) reads a chat-sized memory
sentence by sentence and pools the memory's own vector from the tokens of those same passes
(ModelHost.embed_spans), so each token is read once, not twice. Sentence vectors pooled from one pass over
the whole memory ("late chunking") were tried instead and lost recall: in a 300-character message every token's
hidden state is mostly about the message, so an aside's vector stayed close to the whole's (docs/quality.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

# Bump when the windows change: the vector table name carries it, so existing indexes rebuild from SQLite.
VERSION = 4
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


Span = tuple[int, int]  # a text's characters [start, end)

# "[<when>] <Speaker>: " at the start of a chat turn: a bracketed time, a capitalised name of up to three words.
TURN_PREFIX = re.compile(r"^(?:\[[^\]\n]{1,80}\]\s*)?(?:([A-Z][\w.'-]*(?: [A-Z][\w.'-]*){0,2}):\s+)?")


def speaker(text: str) -> str | None:
    """Return the speaker a chat turn names at its start, if any."""
    found = TURN_PREFIX.match(text)
    return found.group(1) if found else None


def without_prefix(text: str) -> str:
    """Return a chat turn's words without its "[<when>] <Speaker>: " prefix (the text itself when that is all)."""
    found = TURN_PREFIX.match(text)
    rest = text[found.end() :] if found else text
    return rest if rest.strip() else text


def chunks(
    text: str, window: int = WINDOW_WORDS, overlap: int = OVERLAP_WORDS, max_chunks: int = MAX_CHUNKS
) -> list[str]:
    """Return the text of each vector: the text and its sentences when short, else overlapping word windows."""
    texts = plan(text, window, overlap, max_chunks)
    return flatten([whole for whole, _ in texts], [spans for _, spans in texts])


def plan(
    text: str, window: int = WINDOW_WORDS, overlap: int = OVERLAP_WORDS, max_chunks: int = MAX_CHUNKS
) -> list[tuple[str, list[Span]]]:
    """Return the texts to embed, each with the spans of it that get a vector of their own (covering it, or none).

    A chat-sized memory is one text whose sentences are its spans (none when it is one sentence); a long one is
    one text per window, without spans. `chunks` lists the texts of the same vectors, in the same order.
    """
    text = without_prefix(text)
    words = [m.span() for m in _WORD.finditer(text)]
    if len(words) <= window:
        spans = sentence_spans(text, max_chunks - 1)
        return [(text, spans if len(spans) > 1 else [])]
    # Full-length windows spread evenly from the first word to the last: no stub window at the end, and past
    # the cap the windows sample the whole text (start and end included) instead of only its beginning.
    count = min(max_chunks, math.ceil((len(words) - overlap) / (window - overlap)))
    last = len(words) - window
    starts = sorted({round(i * last / (count - 1)) for i in range(count)})
    return [(text[words[s][0] : words[s + window - 1][1]], []) for s in starts]


def flatten(texts: Sequence[str], spans: Sequence[Sequence[Span]]) -> list[str]:
    """Return each text followed by its spans' texts: one text per vector, as `chunks` lists them."""
    return [part for text, pairs in zip(texts, spans, strict=True) for part in (text, *(text[a:b] for a, b in pairs))]


def sentences(text: str, cap: int = MAX_CHUNKS - 1) -> list[str]:
    """Return the sentences of text (consecutive ones joined evenly when there are more than `cap`)."""
    return [text[a:b] for a, b in sentence_spans(text, cap)]


def sentence_spans(text: str, cap: int = MAX_CHUNKS - 1) -> list[Span]:
    """Return where the sentences of text are (consecutive ones joined evenly when there are more than `cap`)."""
    bounds, start = [], 0
    for match in _SENTENCE_BREAK.finditer(text):
        bounds.append((start, match.start()))
        start = match.end()
    bounds.append((start, len(text)))
    spans = [(a, b) for a, b in bounds if text[a:b].strip()]
    if len(spans) > cap:
        size = math.ceil(len(spans) / cap)
        spans = [(spans[i][0], spans[min(i + size, len(spans)) - 1][1]) for i in range(0, len(spans), size)]
    return spans
