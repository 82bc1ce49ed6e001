"""install-hooks merges into Claude Code's settings without clobbering, keeps a backup, and uninstalls exactly."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.serving import clean_env, console_script

EXISTING: dict[str, Any] = {
    "model": "sonnet",
    "permissions": {"allow": ["Bash(npm run test:*)"]},
    "hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/check-bash.sh"}]}],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send 'Claude is done'"}]}],
    },
}


def install(settings: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [console_script(), "install-hooks", "--client", "claude-code", "--settings", str(settings), *flags],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )


def test_install_merges_keeps_a_backup_and_uninstall_removes_exactly_what_it_added(tmp_path: Path) -> None:
    settings = tmp_path / ".claude" / "settings.json"
    settings.parent.mkdir()
    original = json.dumps(EXISTING, indent=4)
    settings.write_text(original)

    assert install(settings).returncode == 0
    merged = json.loads(settings.read_text())
    assert merged["model"] == "sonnet" and merged["permissions"] == EXISTING["permissions"]
    assert merged["hooks"]["PreToolUse"] == EXISTING["hooks"]["PreToolUse"]
    assert merged["hooks"]["Stop"][0] == EXISTING["hooks"]["Stop"][0]
    events = {
        "SessionStart": "session-start",
        "UserPromptSubmit": "prompt",
        "Stop": "stop",
        "PreCompact": "pre-compact",
    }
    for event, name in events.items():
        [ours] = [h for g in merged["hooks"][event] for h in g["hooks"] if "agent-memory" in h["command"]]
        assert ours["type"] == "command" and ours["command"].endswith(f"agent-memory hook {name}")
        assert Path(ours["command"].split()[0]).is_file() and ours["timeout"] > 0
    [backup] = tmp_path.glob(".claude/settings.json.bak-*")
    assert backup.read_text() == original

    again = install(settings)  # installing twice adds nothing
    assert again.returncode == 0 and "nothing to change" in again.stderr
    assert json.loads(settings.read_text()) == merged

    assert install(settings, "--uninstall").returncode == 0
    assert json.loads(settings.read_text()) == EXISTING


def test_install_creates_the_file_and_refuses_to_touch_one_that_is_not_json(tmp_path: Path) -> None:
    fresh = tmp_path / "new" / "settings.json"
    assert install(fresh, "--data-dir", str(tmp_path / "data")).returncode == 0
    commands = [h["command"] for g in json.loads(fresh.read_text())["hooks"]["Stop"] for h in g["hooks"]]
    assert commands[0].startswith(f"AGENT_MEMORY_DATA_DIR={tmp_path / 'data'} ")
    assert install(fresh, "--uninstall").returncode == 0 and json.loads(fresh.read_text()) == {}

    broken = tmp_path / "broken.json"
    broken.write_text('{"hooks": {')
    result = install(broken)
    assert result.returncode == 1 and "not valid JSON" in result.stderr
    assert broken.read_text() == '{"hooks": {'


def test_installed_commands_fill_memory_and_bring_it_back_for_the_same_project_only(tmp_path: Path) -> None:
    """The whole loop as Claude Code runs it: the commands from settings.json, through a shell, JSON on stdin."""
    settings, data = tmp_path / "settings.json", tmp_path / "data"
    assert install(settings, "--data-dir", str(data)).returncode == 0
    hooks = json.loads(settings.read_text())["hooks"]
    command = {event: groups[-1]["hooks"][0]["command"] for event, groups in hooks.items()}
    fixture = Path(__file__).parents[1] / "fixtures" / "conversations" / "claude-code-session.jsonl"
    billing, marketing = tmp_path / "billing", tmp_path / "marketing"
    for project in (billing, marketing):
        (project / ".git").mkdir(parents=True)

    def fire(event: str, payload: dict[str, Any], *extra: str) -> str:
        done = subprocess.run(
            ["sh", "-c", command[event] + "".join(f" {e}" for e in extra)],
            input=json.dumps({**payload, "hook_event_name": event}),
            capture_output=True,
            text=True,
            timeout=120,
            env=clean_env(),
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = {"session_id": "first", "transcript_path": str(fixture), "cwd": str(billing)}
    assert fire("SessionStart", {**first, "source": "startup"}) == ""  # nothing stored yet
    assert fire("Stop", {**first, "stop_hook_active": False}, "--wait") == ""
    later = {"session_id": "later", "transcript_path": str(tmp_path / "later.jsonl"), "cwd": str(billing)}
    back = json.loads(fire("SessionStart", {**later, "source": "startup"}))
    assert "idempotency key" in back["hookSpecificOutput"]["additionalContext"]
    elsewhere = {**later, "cwd": str(marketing)}
    assert fire("SessionStart", {**elsewhere, "source": "startup"}) == ""
    answer = json.loads(fire("UserPromptSubmit", {**later, "prompt": "why did the payment retries double charge?"}))
    assert "exponential backoff" in answer["hookSpecificOutput"]["additionalContext"]
