"""What every conversation reader yields: one turn, with the id that makes storing it twice a no-op."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

ToolPolicy = Literal["skip", "store"]
# Fixed: the same turn of the same conversation always gets the same id, so a re-import or a repeated
# hook stores nothing new.
_IDS = "0d8f3c52-6f0e-4f55-9a5c-3c1e2f7b9d41"
_PRIVATE = re.compile(r"<private>.*?(?:</private>|\Z)", re.IGNORECASE | re.DOTALL)
# Text a client adds to a turn for the model, never said by the person: reminders and command echoes.
_CLIENT_NOISE = re.compile(
    r"<(system-reminder|command-name|command-message|command-args|local-command-stdout|local-command-stderr)>"
    r".*?</\1>",
    re.DOTALL,
)
TOOL_TEXT_CHARS = 2000


@dataclass(frozen=True)
class Turn:
    """One message of a conversation, ready to become a memory."""

    id: str
    role: str
    text: str
    session_id: str
    created_at: str | None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    namespace: str | None = None


def turn_id(source: str, conversation: str, message: str) -> str:
    """Return the stable id of one message of one conversation."""
    import uuid  # here: the prompt hook imports this module for session_label and must start fast

    return uuid.uuid5(uuid.UUID(_IDS), f"{source}\x1f{conversation}\x1f{message}").hex


def without_private(text: str) -> str:
    """Drop `<private>...</private>` spans (an unclosed one runs to the end) and client-added markup."""
    return _CLIENT_NOISE.sub("", _PRIVATE.sub("", text)).strip()


def clip(text: str, limit: int = TOOL_TEXT_CHARS) -> str:
    """Return text cut to `limit` characters, marked when cut."""
    return text if len(text) <= limit else text[:limit] + " [...]"


def session_label(value: str) -> str:
    """Return a conversation id usable as a session id (1-128 printable characters)."""
    cleaned = re.sub(r"[\x00-\x1f\x7f]", "", value).strip()[:128]
    return cleaned or "conversation"
