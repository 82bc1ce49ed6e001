"""`agent-memory backup`, `restore` and `migrate`, each step a new process."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_cli import run, run_json


def test_backup_restore_and_migrate_through_the_command(tmp_path: Path) -> None:
    data, restored, moved = tmp_path / "data", tmp_path / "restored", tmp_path / "moved"
    kept = run_json(data, "remember", "The staging database is db-stage-2", "--tag", "infra")
    run(data, "remember", "Deploys happen on Tuesdays", "--namespace", "ops")
    backup = tmp_path / "memory.sqlite3"
    assert run_json(data, "backup", str(backup))["memories"] == 2
    run(restored, "remember", "something already here")
    refused = run(restored, "restore", str(backup), code=2)
    assert "--force" in refused.stderr and "1 memories" in refused.stderr
    assert run_json(restored, "restore", str(backup), "--force")["restored"] == 2
    found = run_json(restored, "recall", "staging database", "--keyword")
    assert [h["id"] for h in found["hits"]] == [kept["id"]]
    report = run_json(data, "migrate", "--to", str(moved))
    assert (report["copied"], report["mismatches"]) == (2, [])
    assert run_json(data, "migrate", "--to", str(moved))["already_there"] == 2
    assert [h["id"] for h in run_json(moved, "recall", "staging database", "--keyword")["hits"]] == [kept["id"]]
    assert "is the store being copied" in run(data, "migrate", "--to", str(data), code=2).stderr
    assert "not a file" in run(data, "restore", str(tmp_path), code=2).stderr
    # The JSONL export (what `backup` writes on Postgres) restores too, into any store.
    export = tmp_path / "memories.jsonl"
    run(data, "export", "-o", str(export))
    assert run_json(tmp_path / "from-jsonl", "restore", str(export))["restored"] == 2
    assert "1 memories" not in run(restored, "restore", str(export), code=2).stderr
