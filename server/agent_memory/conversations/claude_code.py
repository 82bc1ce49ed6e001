"""Claude Code transcripts: `~/.claude/projects/<project>/<session>.jsonl`, one JSON object per line.

A line has `type` (user, assistant, summary, system, ...), `uuid`, `parentUuid`, `sessionId`, `timestamp`,
`cwd`, and for user and assistant lines a `message` whose `content` is a string or a list of blocks (text,
tool_use, tool_result, thinking, image). An assistant reply is written as one line per content block.
Kept: the text people typed and the text the assistant wrote. Dropped: thinking, images, meta lines
(`isMeta`), command echoes, system reminders, sub-agent side chains, and `<private>` spans; tool calls and
results are kept only with the `store` policy. The same reader serves the hooks and `agent-memory import`,
so a turn captured by a hook and imported later is one memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from agent_memory.conversations.turns import ToolPolicy, Turn, clip, session_label, turn_id, without_private

SOURCE = "claude-code"


def read_lines(
    lines: Iterable[str], namespace_for: Callable[[str | None], str | None], tools: ToolPolicy = "skip"
) -> Iterator[Turn | str]:
    """Yield the turns of transcript lines, or a reason string for a line that is not JSON."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            yield f"line {number}: not JSON"
            continue
        if isinstance(line, dict):
            yield from turns_of_line(line, namespace_for, tools)


def turns_of_line(
    line: dict[str, Any], namespace_for: Callable[[str | None], str | None], tools: ToolPolicy = "skip"
) -> Iterator[Turn]:
    """Yield the turns one transcript line holds (none for meta, summary and sub-agent lines)."""
    kind = line.get("type")
    message = line.get("message")
    if kind not in ("user", "assistant") or not isinstance(message, dict):
        return
    if line.get("isMeta") or line.get("isSidechain") or line.get("isCompactSummary"):
        return
    session, uuid = line.get("sessionId"), line.get("uuid")
    if not isinstance(session, str) or not isinstance(uuid, str):
        return
    cwd = line.get("cwd") if isinstance(line.get("cwd"), str) else None
    meta = {"source": SOURCE, "uuid": uuid}
    if isinstance(line.get("gitBranch"), str) and line["gitBranch"]:
        meta["git_branch"] = line["gitBranch"]
    common: dict[str, Any] = {
        "session_id": session_label(session),
        "created_at": line.get("timestamp") if isinstance(line.get("timestamp"), str) else None,
        "namespace": namespace_for(cwd),
    }
    text, tool_parts = _content(message.get("content"))
    role = "user" if kind == "user" else "assistant"
    if text:
        yield Turn(id=turn_id(SOURCE, session, uuid), role=role, text=text, metadata=meta, **common)
    if tools == "store":
        for index, part in enumerate(tool_parts):
            key = f"{uuid}:tool:{index}"
            yield Turn(
                id=turn_id(SOURCE, session, key), role="system", text=part, tags=("tool",), metadata=meta, **common
            )


def _content(content: Any) -> tuple[str, list[str]]:
    """Return the message's kept text and its tool calls and results as text."""
    if isinstance(content, str):
        return without_private(content), []
    if not isinstance(content, list):
        return "", []
    texts: list[str] = []
    tool_parts: list[str] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input", {}), ensure_ascii=False)
            tool_parts.append(without_private(clip(f"[tool call] {block.get('name', 'tool')}: {arguments}")))
        elif kind == "tool_result":
            tool_parts.append(without_private(clip(f"[tool result] {_result_text(block.get('content'))}")))
    return without_private("\n\n".join(texts)), [p for p in tool_parts if p]


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""
