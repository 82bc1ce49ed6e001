"""`agent-memory backup` and `restore` when the store is a Postgres database: the JSONL export, both ways."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from agent_memory.cli import operate
from agent_memory.config import Settings
from agent_memory.errors import InvalidInput
from agent_memory.service import MemoryService
from tests.conftest import HashEmbedder

pytestmark = pytest.mark.anyio


def _on_postgres(settings: Settings, url: str) -> Settings:
    # HOUSE (issue 16): `database_url` is a real setting once the pg-store branch is merged.
    object.__setattr__(settings, "database_url", url)
    return settings


async def test_backup_on_a_database_url_writes_the_export_and_restore_reads_it(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = _on_postgres(Settings(data_dir=tmp_path / "data"), postgres_url)
    service = await MemoryService.open(settings, HashEmbedder())
    try:
        kept = await service.remember("The staging database is db-stage-2", tags=["infra"])
    finally:
        await service.close()
    path = tmp_path / "backup.jsonl"
    assert await operate.backup(argparse.Namespace(path=str(path), json=True), settings) == 0
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["type"] == "header" and [r["id"] for r in lines[1:]] == [kept.id]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(InvalidInput, match="--force"):
        await operate.restore(argparse.Namespace(path=str(path), json=True, force=False), settings)
    with pytest.raises(InvalidInput, match="SQLite backup and the store is Postgres"):
        sqlite_file = tmp_path / "x.sqlite3"
        sqlite_file.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
        await operate.restore(argparse.Namespace(path=str(sqlite_file), json=True, force=True), settings)
    fresh = Settings(data_dir=tmp_path / "fresh")
    assert await operate.restore(argparse.Namespace(path=str(path), json=True, force=False), fresh) == 0
