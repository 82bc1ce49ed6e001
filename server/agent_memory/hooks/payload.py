"""Claude Code's hook input (JSON on stdin) and the output it reads (JSON on stdout), in one place.

Every event sends `session_id`, `transcript_path`, `cwd` and `hook_event_name`; SessionStart adds `source`
(startup, resume, clear, compact), UserPromptSubmit `prompt`, Stop `stop_hook_active`, PreCompact `trigger`
(manual, auto). SessionStart and UserPromptSubmit may answer with
`{"hookSpecificOutput": {"hookEventName": ..., "additionalContext": ...}}`, which the client adds to the
model's context; Stop and PreCompact answer nothing here (a Stop answer could block the model from stopping).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Our command names → the client's event names.
EVENTS = {
    "session-start": "SessionStart",
    "prompt": "UserPromptSubmit",
    "stop": "Stop",
    "pre-compact": "PreCompact",
}


class BadPayload(ValueError):
    """The hook's stdin is not the JSON object the client sends."""


@dataclass(frozen=True)
class HookInput:
    """The fields of a hook event this server reads."""

    event: str
    session_id: str | None
    transcript_path: str | None
    cwd: str | None
    source: str = "startup"
    prompt: str = ""


def parse(event: str, text: str) -> HookInput:
    """Read the hook's JSON; raise BadPayload when it is not an object."""
    try:
        data: Any = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise BadPayload(f"stdin is not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise BadPayload("stdin is not a JSON object")

    def text_field(name: str) -> str | None:
        value = data.get(name)
        return value if isinstance(value, str) and value else None

    source = text_field("source") or "startup"
    return HookInput(
        event=event,
        session_id=text_field("session_id"),
        transcript_path=text_field("transcript_path"),
        cwd=text_field("cwd"),
        source=source if source in ("startup", "resume", "clear", "compact") else "startup",
        prompt=text_field("prompt") or "",
    )


def context_output(event: str, context: str) -> str:
    """Return the stdout that adds `context` to the model's context ('' adds nothing)."""
    if not context:
        return ""
    output = {"hookSpecificOutput": {"hookEventName": EVENTS[event], "additionalContext": context}}
    return json.dumps(output, ensure_ascii=False)
