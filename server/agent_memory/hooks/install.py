"""`agent-memory install-hooks`: merge our hook entries into a client's settings file, and take them out again.

Claude Code reads hooks from `~/.claude/settings.json` (--user) or `.claude/settings.json` in the project
(--project): `{"hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": ..., "timeout": ...}]}]}}`.
Existing entries are kept as they are; the previous file is copied to `settings.json.bak-<time>` first; a file
that is not JSON is left alone. `--uninstall` removes only the entries whose command runs `agent-memory hook`.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent_memory.hooks.payload import EVENTS

TIMEOUTS = {"session-start": 15, "prompt": 5, "stop": 120, "pre-compact": 120}
OURS = re.compile(r"agent-memory['\"]? hook (session-start|prompt|stop|pre-compact)\b")


class Refused(Exception):
    """The settings file cannot be merged safely; nothing was written."""


def main(argv: Sequence[str]) -> int:
    """Run `agent-memory install-hooks`; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="agent-memory install-hooks",
        description="Add agent-memory's hooks to a client's settings (a backup of the file is kept).",
        epilog="example:\n  agent-memory install-hooks --client claude-code --project",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--client", default="claude-code", choices=["claude-code"])
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--user", dest="scope", action="store_const", const="user", help="~/.claude/settings.json")
    scope.add_argument("--project", dest="scope", action="store_const", const="project", help=".claude/settings.json")
    parser.add_argument("--settings", type=Path, help="the settings file to edit (instead of --user/--project)")
    parser.add_argument("--data-dir", help="pass this data dir to every hook command")
    parser.add_argument("--uninstall", action="store_true", help="remove the entries install-hooks added")
    args = parser.parse_args(argv)
    path = args.settings or settings_path(args.scope or "user")
    try:
        changed, backup = apply(path, command_prefix(args.data_dir), uninstall=args.uninstall)
    except Refused as exc:
        sys.stderr.write(f"agent-memory: {exc}\n")
        return 1
    verb = "removed from" if args.uninstall else "installed in"
    if not changed:
        sys.stderr.write(f"agent-memory: nothing to change in {path}\n")
    else:
        kept = f" (previous file kept as {backup})" if backup else ""
        sys.stderr.write(f"agent-memory: hooks {verb} {path}{kept}\n")
    return 0


def settings_path(scope: str) -> Path:
    """Return Claude Code's settings file for the scope."""
    return Path.home() / ".claude" / "settings.json" if scope == "user" else Path.cwd() / ".claude" / "settings.json"


def command_prefix(data_dir: str | None) -> str:
    """Return the command that starts our CLI (the absolute path of this install, so PATH does not matter)."""
    beside = Path(sys.executable).parent / "agent-memory"
    found = str(beside) if beside.is_file() else (shutil.which("agent-memory") or "agent-memory")
    prefix = shlex.quote(found)
    if data_dir:
        return f"AGENT_MEMORY_DATA_DIR={shlex.quote(str(Path(data_dir).expanduser().resolve()))} {prefix}"
    return prefix


def apply(path: Path, prefix: str, *, uninstall: bool) -> tuple[bool, Path | None]:
    """Merge (or remove) our entries; return whether the file changed and where its previous version was kept."""
    before = _read(path)
    after = json.loads(json.dumps(before))
    hooks = after.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise Refused(f"{path}: 'hooks' is not an object; fix it by hand, nothing was written.")
    for ours, event in EVENTS.items():
        groups = hooks.get(event, [])
        if not isinstance(groups, list):
            raise Refused(f"{path}: hooks.{event} is not a list; fix it by hand, nothing was written.")
        groups = _without_ours(groups)
        if not uninstall:
            command = {"type": "command", "command": f"{prefix} hook {ours}", "timeout": TIMEOUTS[ours]}
            groups.append({"hooks": [command]})
        if groups:
            hooks[event] = groups
        else:
            hooks.pop(event, None)
    if not hooks:
        after.pop("hooks")
    if after == before:
        return False, None
    backup = None
    if path.exists():
        backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(path, backup)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(after, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    temporary.replace(path)
    return True, backup


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Refused(f"{path} is not valid JSON ({exc}); fix it by hand, nothing was written.") from None
    if not isinstance(data, dict):
        raise Refused(f"{path} does not hold a JSON object; nothing was written.")
    return data


def _without_ours(groups: list[Any]) -> list[Any]:
    """Return the matcher groups with our commands taken out (a group left empty by that goes too)."""
    kept = []
    for group in groups:
        inner = group.get("hooks") if isinstance(group, dict) else None
        if not isinstance(inner, list):
            kept.append(group)
            continue
        others = [h for h in inner if not (isinstance(h, dict) and OURS.search(str(h.get("command", ""))))]
        if len(others) == len(inner):
            kept.append(group)
        elif others:
            kept.append({**group, "hooks": others})
    return kept
