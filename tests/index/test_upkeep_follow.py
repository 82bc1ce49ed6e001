"""The exact search follows its own process's upkeep (compaction, scalar indexes) instead of reading the table."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pytest

from agent_memory.index.exact import ExactSearch, VersionedExactSearch
from agent_memory.index.lance import LanceVectorIndex
from agent_memory.index.tuning import IndexTuning
from tests.index.test_lance import DIM, _rows, _scanned, _search


def _watch_reads(index: LanceVectorIndex, monkeypatch: pytest.MonkeyPatch) -> list[ExactSearch | None]:
    """Record, for each whole-table read that (re)loads the exact search from now on, the exact search held then."""
    held: list[ExactSearch | None] = []
    read_all = index._table.read_all

    def reading() -> Iterable[pa.RecordBatch]:
        held.append(index._exact._exact)
        return read_all()

    monkeypatch.setattr(index._table, "read_all", reading)
    return held


def test_own_compaction_and_scalar_indexes_keep_the_exact_search_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = LanceVectorIndex(tmp_path, "t", DIM, lock_path=tmp_path / "lock", tuning=IndexTuning(compact_every=20))
    assert index.describe().exact_search_current  # loaded at open, empty
    reads = _watch_reads(index, monkeypatch)
    rows = _rows(0, 60)
    for row in rows[:40]:
        index.upsert([row])
    assert index.needs_upkeep()
    index.maintain()  # the scalar indexes, then a compaction: several commits, none moving a row
    state = index.describe()
    assert state.fragments <= 2 and state.exact_search_current and state.exact_search_rows == 40
    assert not reads, "the exact search was read from the table again after this process's own upkeep"
    index.upsert(rows[40:])
    index.delete(["m3"])
    assert index.describe().exact_search_current and not reads
    assert _search(index, rows[59].vector)[0] == "m59"
    assert _search(index, rows[3].vector) == _search(_scanned(tmp_path), rows[3].vector)


def test_compaction_beside_a_write_burst_keeps_the_exact_search_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Upkeep runs in the indexer's idle moments, so a burst's writes come while it compacts: were the two
    # interleaved, the exact search would drop and every search of the burst would go to LanceDB's scans.
    index = LanceVectorIndex(tmp_path, "t", DIM, lock_path=tmp_path / "lock")
    reads = _watch_reads(index, monkeypatch)
    rows = _rows(0, 60)
    with ThreadPoolExecutor(1) as pool:
        burst = pool.submit(lambda: [index.upsert([row]) for row in rows])
        compactions = 0
        while not burst.done():
            index.maintain(compact=True)
            compactions += 1
        burst.result(timeout=30)  # raises what the writer raised
    state = index.describe()
    assert compactions > 1 and state.exact_search_current and state.exact_search_rows == state.rows == 60
    assert not reads, f"the exact search was read again {len(reads)} times during the burst"
    scanning = _scanned(tmp_path)
    for row in rows[::6]:
        assert _search(index, row.vector) == _search(scanning, row.vector)


def test_a_jump_of_several_versions_is_followed_only_when_every_commit_was_ours() -> None:
    version = [5]
    held = VersionedExactSearch(DIM, lambda: version[0])
    held.load(lambda: [], 0)
    changed: list[ExactSearch] = []
    version[0] = 8
    held.follow((5, 8), changed.append, only_ours=True)
    assert held.current() is not None and len(changed) == 1
    version[0] = 11
    held.follow((8, 11), changed.append)  # another process may have committed in between
    assert held.current() is None and len(changed) == 1


def test_searches_during_an_own_commit_still_go_to_the_exact_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Between this process's commit and its following of it, the table is a version ahead of the exact search.
    index = LanceVectorIndex(tmp_path, "t", DIM, lock_path=tmp_path / "lock")
    rows = _rows(0, 11)
    index.upsert(rows[:10])
    scans: list[object] = []
    scan = index._table.search
    monkeypatch.setattr(index._table, "search", lambda *a, **k: scans.append(a) or scan(*a, **k))
    during: list[list[str]] = []
    merge = index._table.merge

    def merging(data: pa.Table) -> tuple[int, int]:
        versions = merge(data)
        during.append(_search(index, rows[3].vector))
        return versions

    monkeypatch.setattr(index._table, "merge", merging)
    index.upsert(rows[10:])
    assert during and during[0][0] == "m3"
    assert not scans, "a search during the commit went to LanceDB's scan"
    assert index.describe().exact_search_current and _search(index, rows[10].vector)[0] == "m10"
    assert not scans


def test_a_stale_exact_search_is_freed_before_its_replacement_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = LanceVectorIndex(tmp_path, "t", DIM, lock_path=tmp_path / "lock")
    rows = _rows(0, 31)
    index.upsert(rows[:30])
    LanceVectorIndex(tmp_path, "t", DIM, lock_path=tmp_path / "lock").upsert(rows[30:])  # another process
    index.refresh()
    held = _watch_reads(index, monkeypatch)
    index.maintain()
    assert held == [None], "the stale exact search was still held while its replacement was read"
    assert index.describe().exact_search_current and _search(index, rows[30].vector)[0] == "m30"
