"""Readers for the files `agent-memory import` understands, each turned into NewMemory items.

- agent-memory: our own JSONL export (one {"type": "memory", ...} per line, after a header line).
- server-memory: the official @modelcontextprotocol/server-memory file, JSONL of entities
  ({"type": "entity", "name", "entityType", "observations": [...]}) and relations
  ({"type": "relation", "from", "to", "relationType"}). Each observation becomes one fact, tagged with
  the entity; each relation becomes one fact; an entity without observations becomes "X is a T.".
- mem0: a JSON export from mem0 (`get_all`): a list, or {"results": [...]}, of items with id, memory,
  user_id, agent_id, run_id, created_at, updated_at, metadata, categories. Each item becomes one fact;
  mem0's ids are kept, its scope fields move into metadata.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from agent_memory.errors import InvalidInput
from agent_memory.models import NewMemory

if TYPE_CHECKING:
    from agent_memory.cli.chats import ChatOptions

Format = Literal["agent-memory", "server-memory", "mem0", "claude-code", "claude-ai", "chatgpt"]
# The last three are conversations, read by cli/chats.py.
FORMATS: tuple[Format, ...] = ("agent-memory", "server-memory", "mem0", "claude-code", "claude-ai", "chatgpt")
SERVER_MEMORY_SESSION = "import-server-memory"
MEM0_SESSION = "import-mem0"
_IDS = uuid.UUID("5b0e7f3e-6a53-4d0c-9a5e-8f0d6c1f2a77")  # fixed: the same file always yields the same ids


@dataclass(frozen=True)
class Parsed:
    """One memory read from the file; `user` is None when the file does not say whose it is."""

    line: int
    memory: NewMemory
    user: str | None = None


@dataclass(frozen=True)
class Skipped:
    """A part of the file that is not a memory, with the reason."""

    line: int
    reason: str


Entry = Parsed | Skipped


def detect(text: str) -> Format:
    """Guess the format from the file's first record."""
    from agent_memory.cli import chats

    conversation = chats.detect(text)
    if conversation is not None:
        return conversation  # type: ignore[return-value]  # one of Format's conversation names
    start = text.lstrip()
    if start.startswith("["):
        return "mem0"
    first_line = start.split("\n", 1)[0]
    try:
        first = json.loads(first_line)
    except json.JSONDecodeError:
        # Our exports and server-memory files are one object per line; a multi-line document is mem0's JSON.
        return "mem0"
    if not isinstance(first, dict):
        raise InvalidInput("the file does not start with a JSON object; pass --format to say what it is.")
    if first.get("type") in ("entity", "relation"):
        return "server-memory"
    if "results" in first or "memories" in first or "memory" in first:
        return "mem0"
    if first.get("type") in ("header", "memory") or "content" in first:
        return "agent-memory"
    raise InvalidInput("could not tell the file's format; pass --format agent-memory, server-memory or mem0.")


def read(text: str, fmt: Format, chat: ChatOptions | None = None) -> Iterator[Entry]:
    """Yield the memories (and skipped parts) of a file in the given format (`chat`: for conversations)."""
    from agent_memory.cli import chats

    if fmt in chats.CHAT_FORMATS:
        if chat is None:
            raise InvalidInput(f"importing {fmt} needs the settings (ChatOptions)")
        yield from chats.read(text, fmt, chat)
        return
    if fmt == "mem0":
        yield from _mem0(text)
        return
    convert = _agent_memory if fmt == "agent-memory" else _server_memory
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield Skipped(number, f"not JSON ({exc.msg})")
            continue
        if not isinstance(record, dict):
            yield Skipped(number, "not a JSON object")
            continue
        yield from convert(number, record)


def count(text: str, fmt: Format) -> int | None:
    """Return how many lines the file holds (for progress; a mem0 file's size is known only once parsed)."""
    return None if fmt in ("mem0", "claude-ai", "chatgpt") else len(text.splitlines())


def _agent_memory(number: int, record: dict[str, Any]) -> Iterator[Entry]:
    kind = record.get("type", "memory")
    if kind == "header":
        return
    if kind != "memory":
        yield Skipped(number, f"unknown record type {str(kind)[:40]!r}")
        return
    user = record.get("user")
    memory = NewMemory(
        content=record.get("content"),
        role=record.get("role", "user"),
        tags=record.get("tags"),
        session_id=record.get("session_id"),
        namespace=record.get("namespace"),
        metadata=record.get("metadata"),
        created_at=record.get("created_at"),
        id=record.get("id"),
        expires_at=record.get("expires_at"),
        superseded_by=record.get("superseded_by"),
        superseded_at=record.get("superseded_at"),
    )
    yield Parsed(number, memory, user if isinstance(user, str) else None)


def _server_memory(number: int, record: dict[str, Any]) -> Iterator[Entry]:
    kind = record.get("type")
    if kind == "entity":
        name, kind_name = record.get("name"), record.get("entityType")
        observations = record.get("observations") or []
        if not isinstance(name, str) or not name.strip() or not isinstance(observations, list):
            yield Skipped(number, "entity without a name or with observations that are not a list")
            return
        label = kind_name.strip() if isinstance(kind_name, str) and kind_name.strip() else None
        meta = {"imported_from": "server-memory", "entity": name, "entity_type": label}
        tags = _tags(name, label)
        if not observations:
            text = f"{name} is a {label}." if label else f"{name} is a known entity."
            yield Parsed(number, _fact(text, tags, meta, ("entity", name)))
        for observation in observations:
            if not isinstance(observation, str) or not observation.strip():
                yield Skipped(number, f"an observation of {name[:40]!r} is not text")
                continue
            yield Parsed(number, _fact(f"{name}: {observation.strip()}", tags, meta, (name, observation)))
    elif kind == "relation":
        source, target, relation = record.get("from"), record.get("to"), record.get("relationType")
        if not all(isinstance(v, str) and v.strip() for v in (source, target, relation)):
            yield Skipped(number, "relation without from, to and relationType")
            return
        assert isinstance(source, str) and isinstance(target, str) and isinstance(relation, str)
        meta = {"imported_from": "server-memory", "from": source, "to": target, "relation_type": relation}
        text = f"{source} {relation.replace('_', ' ').strip()} {target}"
        yield Parsed(
            number, _fact(text, [*_tags(source), *_tags(target), "relation"], meta, (source, relation, target))
        )
    else:
        yield Skipped(number, f"unknown record type {str(kind)[:40]!r}")


def _fact(text: str, tags: list[str], metadata: dict[str, Any], key: tuple[str, ...]) -> NewMemory:
    return NewMemory(
        content=text,
        role="fact",
        tags=list(dict.fromkeys(tags)),
        session_id=SERVER_MEMORY_SESSION,
        metadata={k: v for k, v in metadata.items() if v is not None},
        id=uuid.uuid5(_IDS, "\x1f".join(("server-memory", *key))).hex,
    )


def _tags(*names: str | None) -> list[str]:
    # Tags are at most 64 characters; a longer entity name stays findable through its text and metadata.
    return [n.strip().lower() for n in names if n and n.strip() and len(n.strip()) <= 64]


def _mem0(text: str) -> Iterator[Entry]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the mem0 file is not valid JSON (line {exc.lineno}: {exc.msg}).") from None
    if isinstance(document, dict):
        document = document.get("results", document.get("memories"))
    if not isinstance(document, list):
        raise InvalidInput('a mem0 export is a list of memories or {"results": [...]}; this file is neither.')
    for number, item in enumerate(document, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("memory"), str):
            yield Skipped(number, "item has no 'memory' text")
            continue
        metadata = dict(item["metadata"]) if isinstance(item.get("metadata"), dict) else {}
        scope = {k: item[k] for k in ("user_id", "agent_id", "run_id", "updated_at", "hash") if item.get(k)}
        metadata.update({"imported_from": "mem0", **scope})
        categories = item.get("categories")
        tags = [c for c in categories if isinstance(c, str)] if isinstance(categories, list) else []
        run = item.get("run_id")
        memory = NewMemory(
            content=item["memory"],
            role="fact",
            tags=_tags(*tags),
            session_id=run if isinstance(run, str) and run.strip() else MEM0_SESSION,
            metadata=metadata,
            created_at=item.get("created_at") or item.get("updated_at"),
            id=item.get("id") if isinstance(item.get("id"), str) else None,
        )
        yield Parsed(number, memory)
