"""Templates (Jinja2, autoescaped) and the one filter that adds markup to memory text: highlighted matches."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

HERE = Path(__file__).parent
SHOWN_CHARS = 600
_WORD = re.compile(r"\w{3,}")
# Words too common to be worth marking (recall's own list lives below the faces, out of reach).
_COMMON = frozenset(
    [
        "the",
        "and",
        "for",
        "are",
        "was",
        "were",
        "has",
        "have",
        "had",
        "not",
        "but",
        "you",
        "your",
        "our",
        "this",
        "that",
        "with",
        "from",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "how",
        "does",
        "did",
        "is",
        "its",
        "it's",
        "all",
        "any",
        "can",
        "will",
        "would",
        "could",
        "should",
        "about",
        "into",
        "than",
        "then",
        "them",
        "they",
        "their",
        "there",
    ]
)


def terms_of(query: str) -> list[str]:
    """Return the words of a query worth marking (three letters or more), longest first."""
    words = {_stem(w.lower()) for w in _WORD.findall(query) if w.lower() not in _COMMON}
    return sorted(words, key=len, reverse=True)[:20]


def _stem(word: str) -> str:
    """Return the word without a plural or verb ending, as keyword search matches it (stored → stor, store)."""
    for ending in ("ing", "ed", "es", "s", "e"):
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)]
    return word


def highlight(text: str, terms: list[str], limit: int | None = SHOWN_CHARS) -> Markup:
    """Escape the text first, then wrap each match of the terms in <mark> (never inside an entity)."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    safe = str(escape(text))
    if not terms:
        return Markup(safe)
    # An entity (&amp; &#39;) is matched and kept whole so a term like "amp" never splits one.
    words = "|".join(re.escape(t) for t in terms)
    pattern = re.compile(r"(&#?\w+;)|\b((?:" + words + r")\w*)", re.IGNORECASE)
    marked = pattern.sub(lambda m: m.group(1) or f"<mark>{m.group(2)}</mark>", safe)
    return Markup(marked)


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["highlight"] = highlight
# Readable JSON for text content (autoescaped like any text); Jinja's tojson escapes for script blocks instead.
templates.env.filters["pretty"] = lambda value: json.dumps(value, indent=2, ensure_ascii=False)
templates.env.autoescape = True  # every template, whatever its name


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a template with the signed-in user and the form token."""
    context.setdefault("user", getattr(request.state, "user", None))
    context.setdefault("csrf", getattr(request.state, "csrf", ""))
    return templates.TemplateResponse(request, name, context, status_code=status)
