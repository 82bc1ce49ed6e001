"""Checks of what a memory says about time and other memories: expiry, the ids it supersedes, a point in time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from agent_memory.errors import InvalidInput
from agent_memory.write import validation as check

# The most ids one memory may supersede, and the longest time to live (about 100 years).
MAX_SUPERSEDES = 50
MAX_TTL_SECONDS = 100 * 366 * 86400


def supersedes(value: Any) -> tuple[str, ...]:
    """Return the ids a new memory replaces, trimmed and de-duplicated, or raise."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput("supersedes must be a list of memory ids, e.g. ['3f2a...'], as remember or recall return.")
    if len(value) > MAX_SUPERSEDES:
        raise InvalidInput(f"supersedes lists {len(value)} ids; at most {MAX_SUPERSEDES} per memory.")
    return tuple(dict.fromkeys(check.label(v, "supersedes id") for v in value))


def expiry(expires_at: Any, ttl: Any, now: datetime) -> datetime | None:
    """Return when a new memory expires (from `expires_at` or `ttl` seconds from now), or raise."""
    if expires_at is not None and ttl is not None:
        raise InvalidInput("pass either expires_at or ttl, not both.")
    if ttl is not None:
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl <= MAX_TTL_SECONDS:
            raise InvalidInput(f"ttl must be a number of seconds between 1 and {MAX_TTL_SECONDS:,}; got {ttl!r}.")
        return now + timedelta(seconds=float(ttl))
    moment = check.timestamp(expires_at, "expires_at")
    if moment is not None and moment <= now:
        raise InvalidInput(
            f"expires_at {expires_at!r} is not in the future (now is {now.isoformat()}); pass a later time or a ttl."
        )
    return moment
