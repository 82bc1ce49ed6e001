"""Turn what a caller sent into what the store takes: checked, normalised and scrubbed rows, and scope filters."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from agent_memory.config import Settings
from agent_memory.errors import InvalidInput
from agent_memory.models import NewMemory
from agent_memory.store.rows import Filters, NewRow
from agent_memory.write import validation as check
from agent_memory.write.scrubber import scrub, scrub_json


def new_row(item: NewMemory, settings: Settings, default_session: str) -> tuple[NewRow, tuple[str, ...]]:
    """Check, normalise and scrub one memory; every write path goes through here. Returns the kinds masked."""
    text = check.content(item.content, settings)
    role = check.role(item.role)
    when = check.timestamp(item.created_at, "created_at") or datetime.now(UTC)
    tags = check.tags(item.tags, settings)
    metadata = check.metadata(item.metadata, settings)
    redacted: tuple[str, ...] = ()
    if settings.scrub_secrets:
        # Before hashing and storing: the secret never reaches the store, its keyword index, vectors or summaries.
        scrubbed = scrub(text)
        metadata, in_metadata = scrub_json(metadata)
        tags_scrubbed, in_tags = scrub_json(list(tags))
        text, tags = scrubbed.text, tuple(tags_scrubbed)
        redacted = scrubbed.kinds + in_metadata + in_tags
    row = NewRow(
        id=uuid.uuid4().hex if item.id is None else check.label(item.id, "id"),
        user=settings.user,
        namespace=namespace(item.namespace, settings),
        session_id=default_session if item.session_id is None else check.label(item.session_id, "session_id"),
        role=role,
        content=text,
        content_hash=content_hash(role, text),
        tags=tags,
        metadata=metadata,
        created_at=when,
        in_conversation=item.session_id is not None and role in ("user", "assistant"),
        expires_at=check.timestamp(item.expires_at, "expires_at"),
        superseded_by=None if item.superseded_by is None else check.label(item.superseded_by, "superseded_by"),
        superseded_at=check.timestamp(item.superseded_at, "superseded_at"),
    )
    return row, redacted


def namespace(value: str | None, settings: Settings) -> str:
    """Return the namespace asked for, or the configured one."""
    if value == "*":
        # recall and load_recent read "*" as every namespace; nothing is written to or deleted from all of them.
        raise InvalidInput("namespace '*' means every namespace and only recall and load_recent take it; name one.")
    return settings.namespace if value is None else check.label(value, "namespace")


def filters(
    settings: Settings,
    namespace_: str | None,
    session_id: str | None,
    tags: list[str] | None,
    since: str | None,
    until: str | None,
    *,
    now: datetime | None = None,
    as_of: str | None = None,
    include_superseded: bool = False,
) -> Filters:
    """Return checked scope filters within the configured user's memories (current ones at `now` or `as_of`)."""
    start = check.timestamp(since, "since")
    end = check.timestamp(until, "until", end_of_day=True)
    point = check.timestamp(as_of, "as_of", end_of_day=True)
    if not isinstance(include_superseded, bool):
        raise InvalidInput("include_superseded must be true or false.")
    if start and end and start > end:
        raise InvalidInput("since is after until: swap them or widen the range.")
    return Filters(
        namespace=namespace(namespace_, settings),
        session_id=None if session_id is None else check.label(session_id, "session_id"),
        tags=check.tags(tags, settings),
        since_ts=start.timestamp() if start else None,
        until_ts=end.timestamp() if end else None,
        now_ts=now.timestamp() if now else None,
        as_of_ts=point.timestamp() if point else None,
        include_superseded=include_superseded,
    )


def redaction_note(kinds: Sequence[str]) -> str:
    """Return the sentence telling the caller which secrets were masked before storing."""
    counts = ", ".join(f"{kind} x{n}" if n > 1 else kind for kind, n in Counter(kinds).items())
    return (
        f"Masked {len(kinds)} secret{'s' if len(kinds) > 1 else ''} ({counts}) before storing; the stored text"
        " holds [REDACTED:<kind>] instead (AGENT_MEMORY_SCRUB_SECRETS=false keeps text verbatim)."
    )


def content_hash(role: str, text: str) -> str:
    """Return the hash that makes an exact repeat (same role and text in the same scope) a duplicate."""
    return hashlib.sha256(f"{role}\x1f{text}".encode()).hexdigest()
