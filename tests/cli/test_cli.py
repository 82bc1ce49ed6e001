"""The `agent-memory` command run as a real process: every command, export/import round trips, doctor."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent_memory.cli.output import Progress

FIXTURES = Path(__file__).parents[1] / "fixtures"
COMMANDS = [
    "serve",
    "remember",
    "recall",
    "recent",
    "summarize",
    "forget",
    "export",
    "import",
    "reindex",
    "stats",
    "doctor",
    "history",
    "tidy",
    "backup",
    "restore",
    "migrate",
]


def _script() -> str:
    script = shutil.which("agent-memory", path=os.path.dirname(sys.executable)) or shutil.which("agent-memory")
    assert script, "the agent-memory console script is not installed"
    return script


def run(
    data: Path, *args: str, stdin: str | None = None, code: int = 0, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the console script against a data dir and check its exit code."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_MEMORY_", "ANTHROPIC_"))}
    done = subprocess.run(
        [_script(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        env={**base, "AGENT_MEMORY_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1", **env},
    )
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    return done


def run_json(data: Path, *args: str, **kwargs: Any) -> Any:
    """Run a command with --json and parse its stdout."""
    return json.loads(run(data, *args, "--json", **kwargs).stdout)


def memories(path: Path) -> list[dict[str, Any]]:
    """Return the memory records of an export file, header dropped."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records[0]["type"] == "header" and records[0]["format"] == "agent-memory"
    return records[1:]


def test_help_explains_every_command_with_an_example(tmp_path: Path) -> None:
    top = run(tmp_path, "--help").stdout
    for command in COMMANDS:
        assert command in top
        assert "example:\n  agent-memory " + command in run(tmp_path, command, "--help").stdout


def test_remember_recent_and_keyword_recall_work_without_loading_the_model(tmp_path: Path) -> None:
    data = tmp_path / "data"
    stored = run_json(data, "remember", "The staging database is db-stage-2", "--role", "fact", "--tag", "Infra")
    assert stored["duplicate"] is False and stored["indexed"] is False
    run(data, "remember", "-", stdin="Lunch with Sam on Thursday at noon\n")
    again = run_json(data, "remember", "The staging database is db-stage-2", "--role", "fact")
    assert again == {**stored, "duplicate": True}

    recent = run_json(data, "recent")["messages"]
    assert [m["content"] for m in recent] == [
        "The staging database is db-stage-2",
        "Lunch with Sam on Thursday at noon",
    ]
    assert recent[0]["tags"] == ["infra"] and recent[0]["session_id"] == "cli"
    table = run(data, "recent").stdout.splitlines()
    assert table[0].split() == ["when", "role", "session", "id", "content"] and stored["id"] in table[1]

    found = run_json(data, "recall", "staging database", "--keyword")
    assert found["mode"] == "keyword" and found["hits"][0]["id"] == stored["id"]
    summary = run_json(data, "summarize")
    assert summary["backend"] == "extractive" and summary["covers"]["count"] == 2
    assert "\r" not in run(data, "export").stderr  # no progress bar when stderr is not a terminal


def test_export_then_import_into_a_fresh_dir_reproduces_the_store_and_reimport_changes_nothing(tmp_path: Path) -> None:
    source, copy = tmp_path / "source", tmp_path / "copy"
    meta = '{"source": "notes", "nested": {"n": 1}}'
    run(source, "remember", "Standup moved to 9:30", "--tag", "team", "--metadata", meta, "--session", "s1")
    run(source, "remember", "Ship the beta on Friday", "--role", "assistant", "--created-at", "2024-05-01T10:00:00Z")
    run(source, "remember", "Alice's own note", "--user", "alice", "--namespace", "work")
    run(source, "import", str(FIXTURES / "mem0.json"), "--no-index")
    run(source, "export", "-o", str(tmp_path / "all.jsonl"))
    exported = memories(tmp_path / "all.jsonl")
    assert len(exported) == 6 and {m["user"] for m in exported} == {"default", "alice"}
    assert oct((tmp_path / "all.jsonl").stat().st_mode & 0o777) == "0o600"

    first = run_json(copy, "import", str(tmp_path / "all.jsonl"), "--no-index")
    assert (first["format"], first["stored"], first["duplicates"], first["skipped"]) == ("agent-memory", 6, 0, 0)
    run(copy, "export", "-o", str(tmp_path / "copy.jsonl"))
    assert memories(tmp_path / "copy.jsonl") == exported

    again = run_json(copy, "import", str(tmp_path / "all.jsonl"), "--no-index")
    assert (again["stored"], again["duplicates"]) == (0, 6)
    run(copy, "export", "-o", str(tmp_path / "again.jsonl"))
    assert memories(tmp_path / "again.jsonl") == exported

    run(copy, "export", "-o", str(tmp_path / "alice.jsonl"), "--user", "alice")
    assert [m["content"] for m in memories(tmp_path / "alice.jsonl")] == ["Alice's own note"]
    stats = run_json(copy, "stats")
    assert stats["memories"] == 6 and stats["pending"] == 6
    groups = {(g["user"], g["namespace"]): g for g in stats["groups"]}
    assert groups[("default", "default")]["roles"] == {"assistant": 1, "fact": 3, "user": 1}
    assert groups[("alice", "work")]["total"] == 1


def test_server_memory_file_becomes_facts_tagged_with_their_entities(tmp_path: Path) -> None:
    data = tmp_path / "data"
    report = run_json(data, "import", str(FIXTURES / "server-memory.jsonl"), "--no-index")
    assert (report["format"], report["read"], report["stored"], report["skipped"]) == ("server-memory", 11, 11, 2)
    assert any("not JSON" in p for p in report["problems"])
    facts = {m["content"]: m for m in run_json(data, "recent", "--limit", "50")["messages"]}
    observation = facts["Acme Robotics: Headquartered in Rotterdam"]
    assert observation["role"] == "fact" and observation["tags"] == ["acme robotics", "organization"]
    assert observation["metadata"] == {
        "imported_from": "server-memory",
        "entity": "Acme Robotics",
        "entity_type": "organization",
    }
    assert "Dana_Whitfield works at Acme Robotics" in facts
    assert "PostgreSQL is a technology." in facts
    hits = run_json(data, "recall", "Rotterdam", "--keyword", "--tag", "acme robotics")["hits"]
    assert [h["content"] for h in hits] == ["Acme Robotics: Headquartered in Rotterdam"]
    again = run_json(data, "import", str(FIXTURES / "server-memory.jsonl"), "--no-index", "--format", "server-memory")
    assert (again["stored"], again["duplicates"]) == (0, 11)


def test_mem0_export_keeps_ids_times_and_scope_in_metadata(tmp_path: Path) -> None:
    data = tmp_path / "data"
    report = run(data, "import", str(FIXTURES / "mem0.json"), "--no-index", "--namespace", "travel").stdout
    assert "(mem0): 3 read, 3 stored, 0 already present, 1 skipped" in report
    assert "item 4: item has no 'memory' text" in report
    by_id = {m["id"]: m for m in run_json(data, "recent", "--namespace", "travel")["messages"]}
    food = by_id["8d5c6f0a-2f7e-4b8e-9a51-3c1f0e6b7a21"]
    assert food["created_at"] == "2024-07-20T08:25:44.713498Z" and food["tags"] == ["food", "health"]
    assert food["metadata"]["source"] == "onboarding chat" and food["metadata"]["user_id"] == "alex"
    assert by_id["f3a9e2c4-77b1-4d0e-8c6a-0b5d2e9f1a43"]["session_id"] == "trip-planning"
    assert run_json(data, "recent")["messages"] == []  # the --namespace flag put them in 'travel'


def test_errors_are_one_line_with_exit_code_1_or_2(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for args, code in [
        (["recall", "x", "--keyword", "--limit", "999"], 2),
        (["remember", "x", "--metadata", "[1]"], 2),
        (["remember", "   "], 2),
        (["import", str(tmp_path / "missing.jsonl")], 1),
        (["forget", "no-such-id", "--wait", "0"], 1),
    ]:
        done = run(data, *args, code=code)
        assert len(done.stderr.strip().splitlines()) == 1 or "not found" in done.stdout, done.stderr
    assert "limit must be between 1 and 50" in run(data, "recall", "x", "--keyword", "--limit", "0", code=2).stderr


def test_doctor_says_what_is_broken_and_how_to_fix_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(data, "remember", "something to keep")
    (data / "memory.sqlite3").write_bytes(b"this is not a database" * 100)
    for leftover in ("memory.sqlite3-wal", "memory.sqlite3-shm"):
        (data / leftover).unlink(missing_ok=True)
    data.chmod(0o755)
    found = run_json(data, "doctor", "--model", str(tmp_path / "no-model"), code=1, ANTHROPIC_API_KEY="not-a-key")
    checks = {c["name"]: c for c in found["checks"]}
    assert found["ok"] is False
    assert checks["data dir"]["status"] == "fail" and "chmod 700" in checks["data dir"]["fix"]
    assert checks["sqlite"]["status"] == "fail" and "agent-memory import" in checks["sqlite"]["fix"]
    assert checks["model"]["status"] == "fail" and "AGENT_MEMORY_MODEL" in checks["model"]["fix"]
    assert checks["anthropic key"]["status"] == "fail"
    text = run(data, "doctor", "--no-model", code=1).stdout
    assert "FAIL  sqlite" in text and "fix sqlite:" in text


def test_progress_bar_draws_only_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    shown, hidden = Tty(), io.StringIO()
    for stream in (shown, hidden):
        bar = Progress("import", 10, stream=stream)
        bar.advance(10)
        bar.close()
    assert "10/10" in shown.getvalue() and "100%" in shown.getvalue()
    assert hidden.getvalue() == ""


@pytest.mark.e2e
def test_import_indexes_recall_is_hybrid_forget_drops_the_vector_and_doctor_passes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    report = run_json(data, "import", str(FIXTURES / "server-memory.jsonl"))
    run(data, "import", str(FIXTURES / "mem0.json"), "--namespace", "travel")
    assert report["indexed"] is True
    stats = run_json(data, "stats")
    assert stats["memories"] == 14 and stats["pending"] == 0 and stats["vector_rows"] == 14
    languages = run_json(data, "recall", "Which languages does Dana know?")["hits"][0]["content"]
    assert languages == "Dana_Whitfield: Speaks German and Portuguese"
    # Dana later switches to light mode: the host model supersedes the old fact, and a new process asked for
    # her theme answers light mode first, the dark mode fact kept in the history only.
    dark = run_json(data, "recall", "Which editor theme does Dana prefer?")["hits"][0]
    assert dark["content"] == "Dana_Whitfield: Prefers dark mode in every editor"
    light = run_json(
        data,
        "remember",
        "Dana_Whitfield: Switched to light mode in every editor",
        "--role",
        "fact",
        "--supersedes",
        dark["id"],
        "--wait-index",
    )
    theme = run_json(data, "recall", "Which editor theme does Dana prefer?")["hits"]
    assert theme[0]["id"] == light["id"] and dark["id"] not in [h["id"] for h in theme]
    assert [m["id"] for m in run_json(data, "history", light["id"])] == [dark["id"], light["id"]]

    found = run_json(data, "recall", "Which foods should I avoid eating?", "--namespace", "travel")
    assert found["mode"] == "hybrid" and found["degraded"] is False
    assert found["hits"][0]["content"] == "Is vegetarian and allergic to peanuts"

    assert run(data, "forget", found["hits"][0]["id"], "--namespace", "travel").stdout.startswith("forgot ")
    assert run_json(data, "stats")["vector_rows"] == 14
    assert run_json(data, "reindex")["reindexed"] == 14

    healthy = run_json(data, "doctor")
    assert healthy["ok"] is True, healthy
    assert all(c["status"] == "ok" for c in healthy["checks"]), healthy["checks"]
