"""The claude.ai data export: `conversations.json`, a list of conversations.

A conversation has `uuid`, `name`, `created_at` and `chat_messages`; a message has `uuid`, `sender` (human or
assistant), `created_at`, `text`, `content` (blocks: text, tool_use, tool_result, thinking), `attachments`
(with `file_name` and `extracted_content`) and `files`. Where messages carry `parent_message_uuid` and the
conversation names its `current_leaf_message_uuid`, only the branch the person kept is read (an edited
message leaves its older branch behind); otherwise every message is. The export has no project per
conversation that we know of, so turns go to the configured namespace.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from agent_memory.conversations.turns import ToolPolicy, Turn, clip, session_label, turn_id, without_private

SOURCE = "claude.ai"


def read(document: Any, tools: ToolPolicy = "skip") -> Iterator[Turn | str]:
    """Yield the turns of every conversation, or a reason string for a part that is not one."""
    if not isinstance(document, list):
        yield "a claude.ai export is a list of conversations"
        return
    for number, conversation in enumerate(document, start=1):
        if not isinstance(conversation, dict) or not isinstance(conversation.get("uuid"), str):
            yield f"conversation {number}: no uuid"
            continue
        yield from _conversation(conversation, tools)


def _conversation(conversation: dict[str, Any], tools: ToolPolicy) -> Iterator[Turn]:
    key = conversation["uuid"]
    title = conversation.get("name") if isinstance(conversation.get("name"), str) else None
    messages = [m for m in conversation.get("chat_messages") or [] if isinstance(m, dict) and m.get("uuid")]
    for message in _kept_branch(messages, conversation.get("current_leaf_message_uuid")):
        role = "user" if message.get("sender") == "human" else "assistant"
        text, tool_parts = _content(message)
        meta: dict[str, Any] = {"source": SOURCE, "conversation": key}
        if title:
            meta["title"] = title[:200]
        names = [a.get("file_name") for a in (message.get("attachments") or []) + (message.get("files") or [])]
        attached = [n for n in names if isinstance(n, str) and n]
        if attached:
            meta["attachments"] = attached[:20]
        common: dict[str, Any] = {
            "session_id": session_label(key),
            "created_at": message.get("created_at"),
            "metadata": meta,
        }
        if text:
            yield Turn(id=turn_id(SOURCE, key, message["uuid"]), role=role, text=text, **common)
        if tools == "store":
            for index, part in enumerate(tool_parts):
                mid = turn_id(SOURCE, key, f"{message['uuid']}:tool:{index}")
                yield Turn(id=mid, role="system", text=part, tags=("tool",), **common)


def _kept_branch(messages: list[dict[str, Any]], leaf: Any) -> list[dict[str, Any]]:
    """Return the messages from the root to the kept leaf, when the export says which one it is."""
    by_id = {m["uuid"]: m for m in messages}
    if not isinstance(leaf, str) or leaf not in by_id or not any("parent_message_uuid" in m for m in messages):
        return messages
    branch: list[dict[str, Any]] = []
    seen: set[str] = set()
    node: Any = leaf
    while isinstance(node, str) and node in by_id and node not in seen:
        seen.add(node)
        branch.append(by_id[node])
        node = by_id[node].get("parent_message_uuid")
    return branch[::-1]


def _content(message: dict[str, Any]) -> tuple[str, list[str]]:
    blocks = message.get("content")
    if not isinstance(blocks, list) or not blocks:
        text = message.get("text")
        return (without_private(text) if isinstance(text, str) else ""), []
    texts: list[str] = []
    tool_parts: list[str] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input", {}), ensure_ascii=False)
            tool_parts.append(clip(f"[tool call] {block.get('name', 'tool')}: {arguments}"))
        elif kind == "tool_result":
            inner = block.get("content")
            parts = inner if isinstance(inner, list) else []
            text = "\n".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
            tool_parts.append(clip(f"[tool result] {block.get('name', 'tool')}: {text}"))
    kept = [without_private(p) for p in tool_parts]
    return without_private("\n\n".join(texts)), [p for p in kept if p]
