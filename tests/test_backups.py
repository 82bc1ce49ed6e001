"""Backup, restore and migrate on real SQLite stores: consistent under writes, refusing to clobber, resumable."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from agent_memory import backups, moving
from agent_memory.config import Settings
from agent_memory.errors import InvalidInput
from agent_memory.models import Memory, NewMemory, StoredSummary
from agent_memory.store.sqlite import SQLiteStore
from agent_memory.write.prepare import new_row

pytestmark = pytest.mark.anyio


async def _open(settings: Settings) -> SQLiteStore:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return await SQLiteStore.open(settings.sqlite_path)


async def _fill(
    store: SQLiteStore, settings: Settings, n: int, *, user: str = "alice", namespace: str = "work"
) -> None:
    scoped = replace(settings, user=user)
    items = [
        NewMemory(content=f"note {i} of {user} about topic {i % 7}", namespace=namespace, tags=[f"t{i % 3}"])
        for i in range(n)
    ]
    for start in range(0, n, 500):
        await store.insert_many([new_row(m, scoped, "s1")[0] for m in items[start : start + 500]])


async def _everything(store: SQLiteStore) -> list[tuple[str, Memory]]:
    out: list[tuple[str, Memory]] = []
    after = 0
    while page := await store.export_page(None, None, after, 1000):
        out.extend((owner, m) for _, owner, m in page)
        after = page[-1][0]
    return out


async def test_a_backup_is_one_consistent_moment_while_another_connection_writes(settings: Settings) -> None:
    store = await _open(settings)
    await _fill(store, settings, 2000)
    await store.close()
    with sqlite3.connect(settings.sqlite_path) as conn:
        # Bulk, so the copy takes long enough for the writer to commit during it.
        conn.execute("CREATE TABLE ballast (b BLOB)")
        conn.executemany("INSERT INTO ballast VALUES (?)", [(b"x" * 65536,) for _ in range(600)])
        conn.execute("CREATE TABLE ticks (n INTEGER PRIMARY KEY)")
    stop, first = threading.Event(), threading.Event()
    committed = [0]

    def write() -> None:
        writer = sqlite3.connect(settings.sqlite_path, timeout=30, isolation_level=None)
        n = 0
        while not stop.is_set():
            n += 1
            writer.execute("INSERT INTO ticks VALUES (?)", (n,))
            committed[0] = n
            first.set()
        writer.close()

    thread = threading.Thread(target=write)
    thread.start()
    assert first.wait(30)
    before = committed[0]
    report = await backups.backup_sqlite(settings, settings.data_dir.parent / "backup.sqlite3")
    after = committed[0]
    stop.set()
    thread.join(30)
    assert after > before, "the writer never wrote during the backup: the test proves nothing"
    copy = sqlite3.connect(report.path)
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    ticks = [r[0] for r in copy.execute("SELECT n FROM ticks ORDER BY n")]
    # A snapshot: every tick up to one moment, none missing in between, none from after the copy ended.
    assert ticks == list(range(1, len(ticks) + 1)) and before <= len(ticks) <= after
    assert copy.execute("SELECT COUNT(*) FROM memories").fetchone() == (2000,) and report.memories == 2000
    copy.close()
    assert oct(settings.data_dir.parent.joinpath("backup.sqlite3").stat().st_mode & 0o777) == "0o600"


async def test_restore_refuses_to_overwrite_and_marks_the_index_for_rebuild(settings: Settings, tmp_path: Path) -> None:
    store = await _open(settings)
    await _fill(store, settings, 30)
    await store.mark_indexed([m.id for _, m in await _everything(store)])
    originals = await _everything(store)
    await store.close()
    backup = (await backups.backup_sqlite(settings, tmp_path / "b.sqlite3")).path
    other = Settings(data_dir=tmp_path / "other")
    second = await _open(other)
    await _fill(second, other, 5, user="bob")
    await second.close()
    other.vector_dir.mkdir()
    with pytest.raises(InvalidInput, match=r"holds 5 memories.*--force"):
        await backups.restore_sqlite(other, Path(backup), force=False)
    report = await backups.restore_sqlite(other, Path(backup), force=True)
    assert report.memories == 30
    restored = await _open(other)
    assert await _everything(restored) == originals
    assert await restored.count_pending() == 30  # the index is derived: rebuilt from the restored rows
    await restored.close()
    assert not other.vector_dir.exists()
    empty = Settings(data_dir=tmp_path / "empty")
    assert (await backups.restore_sqlite(empty, Path(backup), force=False)).memories == 30


async def test_restore_rejects_what_is_not_a_backup(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    with pytest.raises(InvalidInput, match=r"bad\.sqlite3"):
        await backups.restore_sqlite(settings, bad, force=True)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InvalidInput, match="not an SQLite backup"):
        await backups.restore_sqlite(settings, text, force=True)
    with pytest.raises(InvalidInput, match="no store to back up"):
        await backups.backup_sqlite(settings, tmp_path / "x.sqlite3")


async def _rich_store(settings: Settings) -> SQLiteStore:
    """A store with two users, two namespaces, a supersede link, an expiry, tags, metadata and a summary."""
    store = await _open(settings)
    await _fill(store, settings, 1200)
    await _fill(store, settings, 40, user="bob", namespace="home")
    leeds = NewMemory(content="The office is in Leeds", role="fact", metadata={"k": [1, "two"]})
    old = new_row(leeds, settings, "s")[0]
    await store.insert_many([old])
    new = new_row(
        NewMemory(content="The office moved to York", role="fact", expires_at="2030-01-01T00:00:00Z"), settings, "s"
    )[0]
    await store.insert_many([replace(new, supersedes=(old.id,))])
    summary = StoredSummary(text="Alice wrote notes.", backend="extractive", covered_ids=[old.id])
    await store.summaries.save("alice", "work", "s1", "", summary)
    return store


async def test_migrate_copies_everything_and_is_resumable_and_idempotent(settings: Settings, tmp_path: Path) -> None:
    source = await _rich_store(settings)
    target = await moving.open_store(str(tmp_path / "second"))

    def interrupt(n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await moving.copy_store(source, target, interrupt)  # stops after the first page
    assert await target.count_scope(None, None) == moving.PAGE
    report = await moving.copy_store(source, target)
    assert (report.memories, report.already_there, report.copied) == (1242, moving.PAGE, 1242 - moving.PAGE)
    assert report.summaries == 1 and report.mismatches == [] and report.same_content == 0
    assert await _everything(target) == await _everything(source)
    assert await target.summaries.latest("alice", "work", "s1", "") == await source.summaries.latest(
        "alice", "work", "s1", ""
    )
    again = await moving.copy_store(source, target)
    assert (again.copied, again.already_there, again.summaries, again.mismatches) == (0, 1242, 0, [])
    assert await target.summaries.count() == 1
    chain_of = {m.content: m for _, m in await _everything(target)}
    assert chain_of["The office is in Leeds"].superseded_by == chain_of["The office moved to York"].id
    assert chain_of["The office moved to York"].expires_at is not None
    assert await target.count_pending() == 1242  # the target's index is built by its first server
    await target.close()
    await source.close()


async def test_migrate_reports_a_target_that_lost_memories(settings: Settings, tmp_path: Path) -> None:
    source = await _rich_store(settings)
    target = await moving.open_store(str(tmp_path / "t.sqlite3"))
    await moving.copy_store(source, target)
    gone = (await _everything(target))[0][1]
    assert await target.delete("alice", gone.id)
    # Deleted in the target after the copy: the id is copied again on a rerun, and nothing is missing.
    assert (await moving.copy_store(source, target)).copied == 1
    await target.close()
    await source.close()


async def test_a_postgres_target_without_the_postgres_store_is_a_clear_error() -> None:
    try:
        import agent_memory.store.postgres  # noqa: F401
    except ImportError:
        with pytest.raises(InvalidInput, match="no Postgres store"):
            await moving.open_store("postgresql://u@localhost/db")
    else:
        pytest.skip("the Postgres store is installed: the integration tests cover it")


async def test_a_migrated_store_answers_recall_with_the_same_ids(settings: Settings, tmp_path: Path) -> None:
    from tests.conftest import HashEmbedder, open_ready

    topics = ["garden", "taxes", "bicycle", "kitchen", "holiday", "invoice", "printer", "meeting"]
    service = await open_ready(settings, HashEmbedder())
    try:
        for i in range(80):
            await service.remember(f"{topics[i % 8]} note {i}: the {topics[(i * 3) % 8]} plan needs work")
    finally:
        await service.close()
    source = await _open(settings)
    target = await moving.open_store(str(tmp_path / "copy"))
    assert (await moving.copy_store(source, target)).copied == 80
    await source.close()
    await target.close()
    copied = await open_ready(Settings(data_dir=tmp_path / "copy", model_wait_seconds=30), HashEmbedder())
    original = await open_ready(settings, HashEmbedder())
    try:
        for query in ("garden plan", "the invoice for the printer", "holiday meeting note 7"):
            want = [h.id for h in (await original.recall(query, limit=8)).hits]
            assert want and [h.id for h in (await copied.recall(query, limit=8)).hits] == want, query
    finally:
        await copied.close()
        await original.close()
