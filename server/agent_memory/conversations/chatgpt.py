"""The ChatGPT data export: `conversations.json`, a list of conversations, each a tree of messages.

A conversation has `id` (or `conversation_id`), `title`, `create_time` (epoch seconds), `mapping` (node id →
`{message, parent, children}`) and `current_node`. Walking from `current_node` up to the root gives the branch
the person kept; branches left by edits and regenerations are not read. A message has `author.role` (user,
assistant, system, tool), `create_time`, `recipient` (not "all": a tool call) and `content` with a
`content_type` (text, multimodal_text, code, execution_output, ...) and `parts`. Kept: user and assistant
text; images and other non-text parts are left out; hidden system and context messages are skipped; tool
calls and tool output are kept only with the `store` policy. Project conversations carry no project name in
this file, so turns go to the configured namespace.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from agent_memory.conversations.turns import ToolPolicy, Turn, clip, session_label, turn_id, without_private

SOURCE = "chatgpt"
_TEXT_TYPES = ("text", "multimodal_text")


def read(document: Any, tools: ToolPolicy = "skip") -> Iterator[Turn | str]:
    """Yield the turns of every conversation, or a reason string for a part that is not one."""
    if not isinstance(document, list):
        yield "a ChatGPT export is a list of conversations"
        return
    for number, conversation in enumerate(document, start=1):
        key = conversation.get("id") or conversation.get("conversation_id") if isinstance(conversation, dict) else None
        if not isinstance(key, str) or not isinstance(conversation.get("mapping"), dict):
            yield f"conversation {number}: no id or mapping"
            continue
        yield from _conversation(key, conversation, tools)


def _conversation(key: str, conversation: dict[str, Any], tools: ToolPolicy) -> Iterator[Turn]:
    title = conversation.get("title") if isinstance(conversation.get("title"), str) else None
    for node_id, message in _kept_branch(conversation["mapping"], conversation.get("current_node")):
        role, text = _turn(message, tools)
        if not text:
            continue
        meta: dict[str, Any] = {"source": SOURCE, "conversation": key}
        if title:
            meta["title"] = title[:200]
        yield Turn(
            id=turn_id(SOURCE, key, str(message.get("id") or node_id)),
            role=role,
            text=text,
            session_id=session_label(key),
            created_at=_time(message.get("create_time")) or _time(conversation.get("create_time")),
            tags=("tool",) if role == "system" else (),
            metadata=meta,
        )


def _kept_branch(mapping: dict[str, Any], current: Any) -> list[tuple[str, dict[str, Any]]]:
    """Return (node id, message) from the root to `current_node`, or every node in order without one."""
    order: list[str] = []
    if isinstance(current, str) and current in mapping:
        node: Any = current
        while isinstance(node, str) and node in mapping and node not in order:
            order.append(node)
            parent = mapping[node].get("parent") if isinstance(mapping[node], dict) else None
            node = parent
        order.reverse()
    else:
        order = list(mapping)
    kept = []
    for node_id in order:
        entry = mapping.get(node_id)
        message = entry.get("message") if isinstance(entry, dict) else None
        if isinstance(message, dict):
            kept.append((node_id, message))
    return kept


def _turn(message: dict[str, Any], tools: ToolPolicy) -> tuple[str, str]:
    """Return (role, text) of a message; empty text for one not kept."""
    author: dict[str, Any] = message["author"] if isinstance(message.get("author"), dict) else {}
    role = author.get("role")
    metadata: dict[str, Any] = message["metadata"] if isinstance(message.get("metadata"), dict) else {}
    if metadata.get("is_visually_hidden_from_conversation") or role == "system":
        return "", ""
    content: dict[str, Any] = message["content"] if isinstance(message.get("content"), dict) else {}
    kind = content.get("content_type")
    text = _parts_text(content)
    recipient = message.get("recipient", "all")
    if role == "tool" or (role == "assistant" and recipient not in ("all", None)) or kind not in _TEXT_TYPES:
        if tools != "store" or not text:
            return "", ""
        label = "tool result" if role == "tool" else f"tool call to {recipient}"
        return "system", without_private(clip(f"[{label}] {text}"))
    if role not in ("user", "assistant"):
        return "", ""
    return str(role), without_private(text)


def _parts_text(content: dict[str, Any]) -> str:
    parts = content.get("parts")
    if isinstance(parts, list):
        return "\n".join(p for p in parts if isinstance(p, str)).strip()
    for field in ("text", "result"):
        if isinstance(content.get(field), str):
            return str(content[field]).strip()
    return ""


def _time(value: Any) -> str | None:
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(value, UTC).isoformat()
    return None
