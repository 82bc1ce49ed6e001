"""`agent-memory import` for conversations: Claude Code transcripts, the claude.ai export, the ChatGPT export.

Each turn becomes a memory with its time, its role and its conversation as the session; a Claude Code turn
goes to the namespace of the project it was said in (the transcript's `cwd`, named as the workspace rule
names it), the others to the configured namespace (or --namespace). Ids are derived from the conversation and
message ids, so importing the same export again, or a transcript the hooks already captured, stores nothing.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from agent_memory import workspace
from agent_memory.cli.importers import Entry, Parsed, Skipped
from agent_memory.config import Settings
from agent_memory.conversations import chatgpt, claude_ai, claude_code
from agent_memory.conversations.memory import as_memory
from agent_memory.conversations.turns import ToolPolicy, Turn
from agent_memory.errors import InvalidInput

CHAT_FORMATS = ("claude-code", "claude-ai", "chatgpt")


@dataclass(frozen=True)
class ChatOptions:
    """What a conversation import needs beyond the file: the settings (for namespaces) and the tool policy."""

    settings: Settings
    tools: ToolPolicy = "skip"


def read_source(path: Path) -> str:
    """Return the text to import: a directory's transcripts, an export zip's conversations.json, or the file."""
    if path.is_dir():
        return "".join(f.read_text(encoding="utf-8") for f in sorted(path.rglob("*.jsonl")))
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "conversations.json"]
            if not names:
                raise InvalidInput(f"{path} holds no conversations.json: pass the claude.ai or ChatGPT export zip.")
            return archive.read(names[0]).decode("utf-8")
    return path.read_text(encoding="utf-8")


def detect(text: str) -> str | None:
    """Return the conversation format of a file, or None when it is none of them."""
    start = text.lstrip()
    if start.startswith("["):
        try:
            document = json.loads(start)
        except json.JSONDecodeError:
            return None
        first = document[0] if isinstance(document, list) and document else None
        if isinstance(first, dict) and "chat_messages" in first:
            return "claude-ai"
        if isinstance(first, dict) and "mapping" in first:
            return "chatgpt"
        return None
    try:
        first_line = json.loads(start.split("\n", 1)[0])
    except json.JSONDecodeError:
        return None
    if isinstance(first_line, dict) and ("sessionId" in first_line or "leafUuid" in first_line):
        return "claude-code"
    return None


def read(text: str, fmt: str, options: ChatOptions) -> Iterator[Entry]:
    """Yield the turns of a conversation file as memories (or the parts skipped, with the reason)."""
    if fmt == "claude-code":
        found = claude_code.read_lines(text.splitlines(), _namespace_for(options.settings), options.tools)
    else:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"the {fmt} export is not valid JSON (line {exc.lineno}: {exc.msg}).") from None
        reader = claude_ai.read if fmt == "claude-ai" else chatgpt.read
        found = reader(document, options.tools)
    for number, item in enumerate(found, start=1):
        yield Parsed(number, as_memory(item)) if isinstance(item, Turn) else Skipped(number, item)


def _namespace_for(settings: Settings) -> Callable[[str | None], str | None]:
    """Return how a transcript's `cwd` names its namespace (None: the configured one)."""
    home = Path.home()

    def name(cwd: str | None) -> str | None:
        if cwd is None or settings.namespace_from == "config":
            return None
        path = Path(cwd)
        if path.is_dir():
            used = workspace.resolve(explicit=None, configured=settings.namespace, mode="roots", cwd=path, home=home)
            return used.namespace if used.source != "config" else None
        # A project since moved or deleted: its folder's name is what the hooks called it.
        return path.name if path != home and path.name else None

    return name
