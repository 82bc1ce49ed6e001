"""Facts that change through the `agent-memory` command, each step a new process: supersede, history, expiry."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.cli.test_cli import _script, run, run_json


def test_dana_switches_to_light_mode_and_a_new_process_answers_light_mode(tmp_path: Path) -> None:
    data = tmp_path / "data"
    dark = run_json(data, "remember", "Dana prefers dark mode in every editor", "--role", "fact")
    light = run_json(
        data, "remember", "Dana switched to light mode in every editor", "--role", "fact", "--supersedes", dark["id"]
    )
    assert light["superseded"] == [dark["id"]]
    found = run_json(data, "recall", "Which editor theme mode does Dana prefer?", "--keyword")
    assert [h["id"] for h in found["hits"]] == [light["id"]]
    assert found["hits"][0]["supersedes"] == [dark["id"]]
    both = run_json(data, "recall", "Dana editor mode", "--keyword", "--include-superseded")
    assert {h["id"] for h in both["hits"]} == {dark["id"], light["id"]}
    then = run_json(data, "recall", "Dana editor mode", "--keyword", "--as-of", dark["created_at"])
    assert [h["id"] for h in then["hits"]] == [dark["id"]]
    chain = run_json(data, "history", dark["id"])
    assert [(m["id"], m["superseded_by"]) for m in chain] == [(dark["id"], light["id"]), (light["id"], None)]
    table = run(data, "history", light["id"]).stdout
    assert dark["id"] in table and "current" in table
    refused = run(data, "remember", "Dana uses a blue theme", "--supersedes", "nope", code=1)
    assert "no memory with that id" in refused.stderr
    assert "--ttl" in run(data, "remember", "--help").stdout
    timed = run_json(data, "remember", "Dana is in Berlin this week", "--ttl", "604800")
    assert timed["expires_at"]
    run(data, "remember", "Dana switched to light mode in every editor today")
    dry = run_json(data, "tidy")
    assert [[m["id"] for m in c] for c in dry["clusters"]] == [[light["id"], dry["clusters"][0][1]["id"]]]
    assert "would fold" in run(data, "tidy").stdout
    assert run_json(data, "tidy", "--apply")["superseded"] == 1 and run_json(data, "tidy")["clusters"] == []


def test_two_processes_superseding_the_same_memory_at_once_make_one_chain(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old = run_json(data, "remember", "The meeting room is B12")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_MEMORY_", "ANTHROPIC_"))}
    env |= {"AGENT_MEMORY_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    both = [
        subprocess.Popen(
            [_script(), "remember", f"The meeting room is {room}", "--supersedes", old["id"], "--json"],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for room in ("C1", "C2")
    ]
    outputs = [json.loads(p.communicate(timeout=600)[0]) for p in both]
    assert [p.returncode for p in both] == [0, 0]
    chain = run_json(data, "history", old["id"])
    assert len(chain) == 3 and chain[0]["id"] == old["id"]
    assert {m["id"] for m in chain[1:]} == {o["id"] for o in outputs}
    assert [m["superseded_by"] for m in chain] == [chain[1]["id"], chain[2]["id"], None]
    assert [m["id"] for m in run_json(data, "recent")["messages"]] == [chain[2]["id"]]
