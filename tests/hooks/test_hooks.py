"""Each hook event fed Claude Code's JSON on stdin in a real process, its answer checked against the client's format."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.serving import clean_env, console_script

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "conversations" / "claude-code-session.jsonl"
SESSION = "7f3c9a2e-1b4d-4e8f-9a6b-2c5d8e1f0a3b"


def run_hook(
    event: str, payload: dict[str, Any], data: Path, *flags: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `agent-memory hook EVENT` as Claude Code does: JSON on stdin, a shell environment.

    Stop and pre-compact run with --wait (capturing in the foreground) unless `flags` says otherwise, so a
    test can read the store when the hook has returned.
    """
    flags = flags or (("--wait",) if event in ("stop", "pre-compact") else ())
    return subprocess.run(
        [console_script(), "hook", event, *flags],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(AGENT_MEMORY_DATA_DIR=str(data), **env),
    )


def base(event: str, transcript: Path, cwd: Path, session: str = SESSION) -> dict[str, Any]:
    """Return the fields every Claude Code hook event carries."""
    return {"session_id": session, "transcript_path": str(transcript), "cwd": str(cwd), "hook_event_name": event}


def project(tmp_path: Path, name: str) -> Path:
    """Create a git checkout directory the hooks run in."""
    path = tmp_path / name
    (path / ".git").mkdir(parents=True)
    return path


def rows(data: Path) -> list[tuple[str, str, str, str, str]]:
    with sqlite3.connect(data / "memory.sqlite3") as db:
        return db.execute("SELECT id, role, content, namespace, metadata FROM memories ORDER BY created_ts").fetchall()


def captured(data: Path) -> int:
    """Return how many memories the store holds, 0 while it is still being created."""
    if not (data / "memory.sqlite3").exists():
        return 0
    try:
        return len(rows(data))
    except sqlite3.OperationalError:  # no file or no table yet
        return 0


def context_of(result: subprocess.CompletedProcess[str], event: str) -> str:
    """Check the output against the client's schema for context-adding hooks; return the context."""
    assert result.returncode == 0, result.stderr
    if not result.stdout.strip():
        return ""
    output = json.loads(result.stdout)
    assert set(output) == {"hookSpecificOutput"}
    specific = output["hookSpecificOutput"]
    assert set(specific) == {"hookEventName", "additionalContext"}
    assert specific["hookEventName"] == event and isinstance(specific["additionalContext"], str)
    return str(specific["additionalContext"])


@pytest.fixture
def transcript(tmp_path: Path) -> Path:
    copy = tmp_path / "transcripts" / f"{SESSION}.jsonl"
    copy.parent.mkdir()
    shutil.copy(FIXTURE, copy)
    return copy


def test_stop_stores_each_turn_once_scrubbed_and_without_private_spans(tmp_path: Path, transcript: Path) -> None:
    data, cwd = tmp_path / "data", project(tmp_path, "billing-service")
    stop = {**base("Stop", transcript, cwd), "stop_hook_active": False}
    for _ in range(3):
        result = run_hook("stop", stop, data)
        assert result.returncode == 0 and result.stdout == "", result.stderr
    stored = rows(data)
    assert [(r[1], r[2][:30]) for r in stored] == [
        ("user", "The payment retries in billing"),
        ("assistant", "I'll look at the retry loop in"),
        ("assistant", "The loop retries forever witho"),
        ("user", "Here is the screenshot of the "),
        ("assistant", "The totals column is cut off b"),
    ]
    assert {r[3] for r in stored} == {"billing-service"}
    everything = json.dumps(stored)
    assert "hunter2" not in everything and "4242" not in everything and "<private>" not in everything
    assert "sk_live_51HqLyj" not in everything and "[REDACTED:" in everything
    assert "system-reminder" not in everything and "/clear" not in everything
    # Nothing private reached the keyword index or any file of the store either.
    for file in data.glob("memory.sqlite3*"):
        assert b"hunter2" not in file.read_bytes()


def test_stop_returns_at_once_and_captures_in_a_detached_process(tmp_path: Path, transcript: Path) -> None:
    data, cwd = tmp_path / "data", project(tmp_path, "billing-service")
    started = time.monotonic()
    result = run_hook(
        "stop", {**base("Stop", transcript, cwd), "stop_hook_active": False}, data, "--data-dir", str(data)
    )
    returned = time.monotonic() - started
    assert (result.returncode, result.stdout) == (0, "")
    deadline = time.monotonic() + 60
    while captured(data) < 5:  # another process writes: poll, bounded
        assert time.monotonic() < deadline, "the detached capture never stored the turns"
        time.sleep(0.05)
    # Returning is not waiting for the store: well under the foreground capture's import of the service alone.
    assert returned < 5


def test_pre_compact_stores_only_the_turns_added_since_the_last_capture(tmp_path: Path, transcript: Path) -> None:
    data, cwd = tmp_path / "data", project(tmp_path, "billing-service")
    assert run_hook("pre-compact", {**base("PreCompact", transcript, cwd), "trigger": "auto"}, data).returncode == 0
    new_turn = json.loads(FIXTURE.read_text().splitlines()[3])
    new_turn.update(uuid="u-added-later", timestamp="2025-06-02T10:00:00.000Z")
    new_turn["message"] = {"role": "user", "content": "Ship the retry fix behind the billing_retry_v2 flag."}
    with transcript.open("a") as file:
        file.write(json.dumps(new_turn) + "\n" + '{"type": "user", "message": {"role": "user", "content": "half')
    assert run_hook("pre-compact", {**base("PreCompact", transcript, cwd), "trigger": "manual"}, data).returncode == 0
    assert run_hook("stop", {**base("Stop", transcript, cwd), "stop_hook_active": True}, data).returncode == 0
    contents = [r[2] for r in rows(data)]
    assert len(contents) == 6 and contents[-1] == "Ship the retry fix behind the billing_retry_v2 flag."


def test_session_start_brings_back_this_project_and_not_another(tmp_path: Path, transcript: Path) -> None:
    data, cwd = tmp_path / "data", project(tmp_path, "billing-service")
    run_hook("stop", {**base("Stop", transcript, cwd), "stop_hook_active": False}, data)
    new_session = "0b1c2d3e-0000-4000-8000-000000000000"
    start = {**base("SessionStart", tmp_path / "new.jsonl", cwd, new_session), "source": "startup"}
    here = context_of(run_hook("session-start", start, data), "SessionStart")
    other = {**start, "cwd": str(project(tmp_path, "marketing-site"))}
    elsewhere = context_of(run_hook("session-start", other, data), "SessionStart")
    assert "billing-service" in here and "idempotency key" in here and "totals column" in here
    assert elsewhere == ""


def test_prompt_injects_relevant_memories_of_other_sessions_only(tmp_path: Path, transcript: Path) -> None:
    data, cwd = tmp_path / "data", project(tmp_path, "billing-service")
    run_hook("stop", {**base("Stop", transcript, cwd), "stop_hook_active": False}, data)
    later = "0b1c2d3e-0000-4000-8000-000000000001"

    def prompt(text: str, session: str = later) -> str:
        payload = {**base("UserPromptSubmit", transcript, cwd, session), "prompt": text}
        return context_of(run_hook("prompt", payload, data), "UserPromptSubmit")

    assert "idempotency key" in prompt("why were customers double charged by the payment retries?")
    assert prompt("what colour should the marketing banner be?") == ""
    assert prompt("yes") == ""
    # The session's own turns are already in the model's context.
    assert prompt("why were customers double charged by the payment retries?", SESSION) == ""


def test_a_hook_with_a_broken_data_dir_exits_0_injects_nothing_and_logs(tmp_path: Path, transcript: Path) -> None:
    broken = tmp_path / "not-a-dir"
    broken.write_text("a file where the data dir should be")
    cwd = project(tmp_path, "billing-service")
    temp = tmp_path / "tmp"
    temp.mkdir()
    for event, name in (("stop", "Stop"), ("session-start", "SessionStart"), ("prompt", "UserPromptSubmit")):
        payload = {**base(name, transcript, cwd), "prompt": "payment retries double charged", "source": "startup"}
        result = run_hook(event, payload, broken, TMPDIR=str(temp))
        assert (result.returncode, result.stdout) == (0, ""), result.stderr
    bad_json = subprocess.run(
        [console_script(), "hook", "prompt"],
        input="{not json",
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(AGENT_MEMORY_DATA_DIR=str(tmp_path / "data"), TMPDIR=str(temp)),
    )
    assert (bad_json.returncode, bad_json.stdout) == (0, "")
    log = (temp / f"agent-memory-hooks-{os.getuid()}.log").read_text()
    assert "hook stop failed" in log and "hook prompt failed" in log and "not JSON" in log
