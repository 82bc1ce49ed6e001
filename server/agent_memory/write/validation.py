"""Input checks shared by every face: each failure is an InvalidInput whose message says how to fix it."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from agent_memory.config import Settings
from agent_memory.errors import InvalidInput

ROLES = ("user", "assistant", "system", "fact")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LABEL = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")


def utf8(value: str, name: str) -> str:
    """Return the string if it can be stored as UTF-8 (no unpaired surrogates), or raise."""
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidInput(f"{name} contains an unpaired UTF-16 surrogate; send valid Unicode text.") from None
    return value


def content(text: Any, settings: Settings) -> str:
    """Return content normalised (NFC, no control characters, trimmed), or raise."""
    if not isinstance(text, str):
        raise InvalidInput("content must be a string.")
    utf8(text, "content")
    cleaned = _CONTROL.sub("", unicodedata.normalize("NFC", text)).strip()
    if not cleaned:
        raise InvalidInput("content is empty: pass the text of the message or fact to remember.")
    if len(cleaned) > settings.max_content_chars:
        raise InvalidInput(
            f"content is {len(cleaned):,} characters; the limit is {settings.max_content_chars:,} "
            "(AGENT_MEMORY_MAX_CONTENT_CHARS). Split it into smaller memories or summarise it first."
        )
    return cleaned


def role(value: Any) -> str:
    """Return a known role, or raise."""
    if value not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}; got {value!r}.")
    return str(value)


def label(value: Any, name: str) -> str:
    """Return a namespace or session id (1-128 printable characters), or raise."""
    if not isinstance(value, str) or not _LABEL.match(value.strip()):
        raise InvalidInput(f"{name} must be 1-128 printable characters; got {str(value)[:40]!r}.")
    return utf8(value, name).strip()


def tags(values: Any, settings: Settings) -> tuple[str, ...]:
    """Return tags trimmed, lower-cased and de-duplicated, or raise."""
    if values is None:
        return ()
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        raise InvalidInput("tags must be a list of strings.")
    cleaned = list(dict.fromkeys(utf8(v, "tags").strip().lower() for v in values if v.strip()))
    if len(cleaned) > settings.max_tags:
        raise InvalidInput(f"at most {settings.max_tags} tags are allowed (AGENT_MEMORY_MAX_TAGS); got {len(cleaned)}.")
    for tag in cleaned:
        if len(tag) > settings.max_tag_chars or _CONTROL.search(tag):
            raise InvalidInput(
                f"tag {tag[:40]!r} is not valid: tags are at most {settings.max_tag_chars} printable characters"
                " (AGENT_MEMORY_MAX_TAG_CHARS)."
            )
    return tuple(cleaned)


def metadata(value: Any, settings: Settings) -> dict[str, Any]:
    """Return JSON-serialisable metadata within the size and depth limits, or raise."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("metadata must be an object (a JSON dictionary).")
    if _depth(value, settings.max_metadata_depth) > settings.max_metadata_depth:
        raise InvalidInput(
            f"metadata is nested more than {settings.max_metadata_depth} levels deep (AGENT_MEMORY_MAX_METADATA_DEPTH);"
            " flatten it."
        )
    try:
        encoded = utf8(json.dumps(value, ensure_ascii=False, allow_nan=False), "metadata")
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"metadata must be plain JSON: {exc}.") from None
    if len(encoded.encode()) > settings.max_metadata_bytes:
        raise InvalidInput(
            f"metadata is {len(encoded.encode()):,} bytes as JSON; the limit is {settings.max_metadata_bytes:,}"
            " (AGENT_MEMORY_MAX_METADATA_BYTES). Keep only small fields in metadata."
        )
    return dict(json.loads(encoded))


def _depth(value: Any, cap: int, level: int = 1) -> int:
    """Return the nesting depth, stopping once it passes `cap` (so a hostile value cannot exhaust the stack)."""
    if level > cap:
        return level
    if isinstance(value, dict):
        return max((_depth(v, cap, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, cap, level + 1) for v in value), default=level)
    return level


def limit(value: Any, name: str, maximum: int) -> int:
    """Return an integer in 1..maximum, or raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be a whole number between 1 and {maximum}.")
    if not 1 <= value <= maximum:
        raise InvalidInput(f"{name} must be between 1 and {maximum}; got {value}.")
    return value


def timestamp(value: Any, name: str, *, end_of_day: bool = False) -> datetime | None:
    """Parse an ISO 8601 date or date-time (naive means UTC); a bare date as `until` covers the whole day."""
    if value is None:
        return None
    hint = f"{name} must be an ISO 8601 date or date-time such as 2024-05-01 or 2024-05-01T13:30:00Z"
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(hint + ".")
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.min, tzinfo=UTC)
            moment = moment + timedelta(days=1, microseconds=-1) if end_of_day else moment
        else:
            parsed = datetime.fromisoformat(text)
            moment = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        moment.timestamp()  # stored as a number too: must be representable
    except (ValueError, OverflowError):
        raise InvalidInput(f"{hint}; got {text[:40]!r}.") from None
    return moment


def optional_text(value: Any, name: str, max_chars: int = 500) -> str | None:
    """Return a short optional string (such as a focus), or raise."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_chars:
        raise InvalidInput(f"{name} must be a string of at most {max_chars} characters.")
    return _CONTROL.sub("", utf8(value, name)).strip() or None


def query(value: Any, settings: Settings) -> str:
    """Return a non-empty query within the content limit, or raise."""
    if not isinstance(value, str) or not _CONTROL.sub("", value).strip():
        raise InvalidInput("query is empty: describe what to look for, e.g. 'UI preferences'.")
    if len(value) > settings.max_content_chars:
        raise InvalidInput(
            f"query is longer than {settings.max_content_chars:,} characters (AGENT_MEMORY_MAX_CONTENT_CHARS);"
            " shorten it."
        )
    return _CONTROL.sub("", utf8(value, "query")).strip()
