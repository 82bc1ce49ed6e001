"""Conversation imports: each format's awkward parts, a round trip into recall, and a re-import that changes nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

from agent_memory.config import Settings
from agent_memory.conversations import chatgpt, claude_ai, claude_code
from agent_memory.conversations.turns import Turn
from tests.cli.test_cli import run, run_json
from tests.serving import clean_env, console_script

FIXTURES = Path(__file__).parents[1] / "fixtures" / "conversations"
CLAUDE_CODE = FIXTURES / "claude-code-session.jsonl"
CLAUDE_AI = FIXTURES / "claude-ai-conversations.json"
CHATGPT = FIXTURES / "chatgpt-conversations.json"


def turns(found: object) -> list[Turn]:
    items = list(found)  # type: ignore[call-overload]
    assert all(isinstance(t, Turn) for t in items), items
    return items


def test_claude_code_keeps_what_was_said_and_stores_tools_only_when_asked() -> None:
    lines = CLAUDE_CODE.read_text().splitlines()
    said = turns(claude_code.read_lines(lines, lambda cwd: cwd and cwd.rsplit("/", 1)[-1]))
    assert [t.role for t in said] == ["user", "assistant", "assistant", "user", "assistant"]
    assert {t.namespace for t in said} == {"billing-service"} and {t.session_id for t in said} == {
        "7f3c9a2e-1b4d-4e8f-9a6b-2c5d8e1f0a3b"
    }
    assert said[0].created_at == "2025-06-02T09:01:00.000Z" and "hunter2" not in said[0].text
    assert said[3].text.endswith("the totals column is cut off.")  # the reminder and the image are gone
    with_tools = turns(claude_code.read_lines(lines, lambda _: None, tools="store"))
    tool_texts = [t.text for t in with_tools if t.tags == ("tool",)]
    assert tool_texts[0].startswith("[tool call] Read: {") and tool_texts[1].startswith("[tool result]")


def test_claude_ai_reads_the_kept_branch_attachments_and_the_old_text_only_messages() -> None:
    said = turns(claude_ai.read(json.loads(CLAUDE_AI.read_text())))
    texts = [t.text for t in said]
    assert "Rye ferments faster, so feed it more often." not in texts  # the branch left by an edit
    assert texts[2].startswith("I use whole wheat flour") and "WL-5531" not in texts[2]
    assert said[2].metadata["attachments"] == ["feeding-log.csv", "starter-jar.jpg"]
    assert said[1].text.startswith("It is not dead") and "[tool" not in said[1].text
    assert texts[-2:] == ["What is the capital of Australia?", "Canberra is the capital of Australia."]
    assert [t.role for t in said] == ["user", "assistant", "user", "assistant", "user", "assistant"]
    stored_tools = [t for t in turns(claude_ai.read(json.loads(CLAUDE_AI.read_text()), "store")) if t.tags]
    assert [t.text.split(":")[0] for t in stored_tools] == ["[tool call] web_search", "[tool result] web_search"]


def test_chatgpt_reads_the_current_branch_and_leaves_out_hidden_messages_images_and_tools() -> None:
    said = turns(chatgpt.read(json.loads(CHATGPT.read_text())))
    texts = [t.text for t in said]
    assert texts[0] == "How do I find duplicate rows in a Postgres table by email?"
    assert "And delete them?" not in texts and "I am a data engineer." not in json.dumps(texts)
    assert texts[2] == "Here is the query plan screenshot; delete the duplicates but keep the oldest row per email."
    assert texts[3].startswith("There are 42 duplicates.") and len(texts) == 6
    assert said[0].created_at == "2024-06-10T06:13:20+00:00"
    with_tools = [t.text for t in turns(chatgpt.read(json.loads(CHATGPT.read_text()), "store")) if t.role == "system"]
    assert with_tools[0].startswith("[tool call to python] import pandas as pd\n")
    assert with_tools[1:] == ["[tool result] 42"]


def test_each_format_round_trips_into_recall_and_importing_twice_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cases = [(CLAUDE_CODE, "claude-code", 5), (CLAUDE_AI, "claude-ai", 6), (CHATGPT, "chatgpt", 6)]
    for path, fmt, count in cases:
        first = run_json(data, "import", str(path), "--no-index")
        assert (first["format"], first["stored"], first["skipped"]) == (fmt, count, 0), first
        again = run_json(data, "import", str(path), "--no-index")
        assert (again["stored"], again["duplicates"]) == (0, count)
    recent = run_json(data, "recent", "--limit", "50", "--namespace", "billing-service")["messages"]
    assert len(recent) == 5  # Claude Code turns go to their project, named after the transcript's cwd
    for query, expected in [
        ("starter smells like acetone nail polish", "It is not dead"),
        ("delete duplicate emails keep oldest row", "There are 42 duplicates."),
    ]:
        hits = run_json(data, "recall", query, "--keyword")["hits"]
        assert any(h["content"].startswith(expected) for h in hits[:3]), hits
    hits = run_json(data, "recall", "double charging idempotency", "--keyword", "--namespace", "billing-service")
    assert "idempotency key" in hits["hits"][0]["content"]


def test_a_transcript_the_hooks_captured_imports_as_nothing_new_from_a_directory_or_zip(tmp_path: Path) -> None:
    data, cwd = tmp_path / "data", tmp_path / "billing-service"
    (cwd / ".git").mkdir(parents=True)
    projects = tmp_path / "claude-projects" / "-home-dana-src-billing-service"
    projects.mkdir(parents=True)
    shutil.copy(CLAUDE_CODE, projects / "session.jsonl")
    payload = {"session_id": "s", "transcript_path": str(projects / "session.jsonl"), "cwd": str(cwd)}
    subprocess.run(
        [console_script(), "hook", "stop", "--wait"],
        input=json.dumps({**payload, "hook_event_name": "Stop", "stop_hook_active": False}),
        env=clean_env(AGENT_MEMORY_DATA_DIR=str(data)),
        check=True,
        timeout=120,
        text=True,
    )
    imported = run_json(data, "import", str(tmp_path / "claude-projects"), "--no-index")
    assert (imported["stored"], imported["duplicates"]) == (0, 5)

    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(CHATGPT, "conversations.json")
        zipped.writestr("chat.html", "<html></html>")
    assert run_json(data, "import", str(archive), "--no-index")["stored"] == 6
    assert "chatgpt" in run(data, "import", str(archive), "--no-index").stdout


def test_settings_pinned_to_config_import_claude_code_into_the_configured_namespace(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(data, "import", str(CLAUDE_CODE), "--no-index", AGENT_MEMORY_NAMESPACE_FROM="config")
    assert {m["namespace"] for m in run_json(data, "recent")["messages"]} == {Settings().namespace}
