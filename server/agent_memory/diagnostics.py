"""Diagnostics: `stats` (what the store holds) and `doctor` (is everything usable, and if not, what to do)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from agent_memory.config import Settings
from agent_memory.embedding.embedder import ModelEmbedder
from agent_memory.errors import ConfigError
from agent_memory.index.indexer import table_name
from agent_memory.models import Check, CheckStatus, Group, Stats
from agent_memory.store.migrations import MIGRATIONS
from agent_memory.store.protocol import VECTOR_TABLE_KEY, MemoryStore
from agent_memory.store.sqlite import inspect_file

LOW_DISK_BYTES = 200 * 1024 * 1024


async def stats(settings: Settings, store: MemoryStore) -> Stats:
    """Count memories per user, namespace and role, the index state and the disk use."""
    from agent_memory.index.lance_table import table_rows

    groups: dict[tuple[str, str], Group] = {}
    for user, namespace, role, total, pending in await store.counts():
        group = groups.setdefault(
            (user, namespace), Group(user=user, namespace=namespace, roles={}, total=0, pending=0)
        )
        group.roles[role] = total
        group.total += total
        group.pending += pending
    table = await store.get_value(VECTOR_TABLE_KEY)
    rows = None
    if table and (settings.vector_uri or settings.vector_dir.exists()):
        try:
            rows = table_rows(settings.vector_location, table, dict(settings.vector_storage_options))
        except (ValueError, OSError, RuntimeError):
            rows = None
    sqlite_files = [settings.sqlite_path.with_name(settings.sqlite_path.name + s) for s in ("", "-wal", "-shm")]
    return Stats(
        data_dir=str(settings.data_dir),
        memories=sum(g.total for g in groups.values()),
        pending=sum(g.pending for g in groups.values()),
        summaries=await store.summaries.count(),
        groups=list(groups.values()),
        vector_table=table,
        vector_rows=rows,
        sqlite_bytes=sum(p.stat().st_size for p in sqlite_files if p.exists()),
        vector_bytes=_tree_size(settings.vector_dir),
    )


def doctor(settings: Settings, *, check_model: bool = True) -> list[Check]:
    """Run every check, read-only; the caller fails when any check has status 'fail'."""
    checks = [_data_dir(settings)]
    database = _sqlite(settings, checks)
    dim = _model(settings, checks) if check_model else None
    _vectors(settings, database, dim, checks)
    checks.append(_anthropic(settings))
    return checks


def _data_dir(settings: Settings) -> Check:
    path = settings.data_dir
    if not path.exists():
        return Check(name="data dir", status="ok", detail=f"{path} does not exist yet; it is created on first use")
    if not path.is_dir():
        return Check(name="data dir", status="fail", detail=f"{path} is not a directory", fix="move it aside")
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        return Check(
            name="data dir",
            status="fail",
            detail=f"{path} is not readable and writable by you",
            fix=f"chown -R $(id -u) {path} && chmod 700 {path}",
        )
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        return Check(
            name="data dir",
            status="fail",
            detail=f"{path} is open to other users (mode {mode:o})",
            fix=f"chmod 700 {path}",
        )
    free = shutil.disk_usage(path).free
    if free < LOW_DISK_BYTES:
        return Check(name="data dir", status="warn", detail=f"only {free // 2**20} MB free", fix="free disk space")
    return Check(name="data dir", status="ok", detail=f"{path} (private, {free // 2**30} GB free)")


def _sqlite(settings: Settings, checks: list[Check]) -> dict[str, Any] | None:
    path = settings.sqlite_path
    if not path.exists():
        checks.append(Check(name="sqlite", status="ok", detail="no database yet; it is created on first use"))
        return None
    restore = f"move {path} aside and restore a backup or an `agent-memory export` file with `agent-memory import`"
    try:
        found = inspect_file(path)
    except sqlite3.DatabaseError as exc:
        checks.append(Check(name="sqlite", status="fail", detail=f"{path} cannot be read: {exc}", fix=restore))
        return None
    if found["problems"]:
        problems = "; ".join(str(p) for p in found["problems"][:3])
        checks.append(Check(name="sqlite", status="fail", detail=f"integrity check failed: {problems}", fix=restore))
    elif int(found["schema_version"]) > len(MIGRATIONS):
        checks.append(
            Check(
                name="sqlite",
                status="fail",
                detail=f"schema version {found['schema_version']} is newer than this agent-memory knows",
                fix="upgrade agent-memory",
            )
        )
    else:
        checks.append(Check(name="sqlite", status="ok", detail=f"{found['memories']:,} memories, integrity ok"))
    return found


def _model(settings: Settings, checks: list[Check]) -> int | None:
    embedder = ModelEmbedder.from_settings(settings)
    start = time.monotonic()
    try:
        dim = embedder.load()
        embedder.embed(["doctor check"])
    except ConfigError as exc:
        detail = f"the embedding model {settings.model!r} does not load"
        checks.append(Check(name="model", status="fail", detail=detail, fix=str(exc)))
        return None
    took = time.monotonic() - start
    detail = f"{embedder.name} loads in {took:.1f} s with {embedder.backend} in {embedder.precision} (dim {dim})"
    checks.append(Check(name="model", status="ok", detail=detail))
    return dim


def _vectors(settings: Settings, database: dict[str, Any] | None, dim: int | None, checks: list[Check]) -> None:
    from agent_memory.index.lance_table import table_rows

    name = "vector index"
    if database is None or not database["memories"]:
        checks.append(Check(name=name, status="ok", detail="nothing to index yet"))
        return
    rebuild = "run `agent-memory reindex` (it rebuilds the index from SQLite; a server start also does)"
    table = database["vector_table"]
    if not isinstance(table, str):
        checks.append(Check(name=name, status="warn", detail="never built", fix=rebuild))
        return
    try:
        rows = table_rows(settings.vector_location, table, dict(settings.vector_storage_options))
    except (ValueError, OSError, RuntimeError) as exc:
        checks.append(Check(name=name, status="fail", detail=f"{table} cannot be opened: {exc}", fix=rebuild))
        return
    indexed = int(database["memories"]) - int(database["pending"]) - int(database["unembeddable"])
    if rows < indexed:
        detail = f"{rows:,} rows but {indexed:,} memories are marked indexed"
        checks.append(Check(name=name, status="fail", detail=detail, fix=rebuild))
    elif dim is not None and table != table_name(ModelEmbedder(settings.model).name, dim):
        detail = f"{table} was built with another model"
        checks.append(Check(name=name, status="warn", detail=detail, fix=rebuild))
    elif database["pending"]:
        detail = f"{database['pending']:,} memories wait to be indexed"
        fix = "a running server indexes them; otherwise run `agent-memory reindex`"
        checks.append(Check(name=name, status="warn", detail=detail, fix=fix))
    elif database["unembeddable"]:
        detail = f"{database['unembeddable']:,} memories could not be embedded; keyword search still finds them"
        fix = "see the server log for the model's error; `agent-memory reindex` tries them again"
        checks.append(Check(name=name, status="warn", detail=detail, fix=fix))
    else:
        checks.append(Check(name=name, status="ok", detail=f"{rows:,} rows, in step with SQLite"))


def _anthropic(settings: Settings) -> Check:
    name = "anthropic key"
    key = settings.anthropic_api_key
    if not key:
        if settings.summarizer == "anthropic":
            fix = "set ANTHROPIC_API_KEY, or AGENT_MEMORY_SUMMARIZER=auto"
            return Check(name=name, status="fail", detail="AGENT_MEMORY_SUMMARIZER=anthropic but no key", fix=fix)
        return Check(name=name, status="ok", detail="not set: summaries use MCP sampling or the local summary")
    if key != key.strip() or any(c.isspace() for c in key):
        return Check(name=name, status="fail", detail="ANTHROPIC_API_KEY contains spaces", fix="remove them")
    if not key.startswith("sk-ant-") or len(key) < 40:
        # A proxy (ANTHROPIC_BASE_URL) may take keys of its own shape.
        status: CheckStatus = "warn" if settings.anthropic_base_url else "fail"
        detail = "ANTHROPIC_API_KEY does not look like an Anthropic key (sk-ant-…)"
        return Check(name=name, status=status, detail=detail, fix="copy the key again from console.anthropic.com")
    return Check(name=name, status="ok", detail="set and well-formed (not checked online)")


def _tree_size(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
