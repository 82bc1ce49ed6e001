"""Exact search: a small vector table held in memory and searched with one matrix product.

Below ANN size, LanceDB's exact search reads and scores every row of the table per query; the same search over
a matrix in memory is an order of magnitude faster. An exact search belongs to the table version it was loaded
from (`version`): the owner applies its own writes to it and moves the version on, and must not search one
whose version is not the table's (`VersionedExactSearch` keeps that rule).

The vectors are held normalised in float16, half the memory of float32. One float16 product over every row
ranks them closely; the best few are then scored again in float32 from the same rows, which puts their
similarities close to the float32 ones. The float16 product is handed in (`product`): numpy has no fast one,
and only the embedding package may use torch's (embedding/half.py).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from agent_memory.index.protocol import VectorHit, VectorRow, VectorScope

if TYPE_CHECKING:
    import pyarrow as pa

Floats = np.ndarray[Any, np.dtype[np.float32]]
Halves = np.ndarray[Any, np.dtype[np.float16]]
# rows @ query for float16 rows and query, in float32.
Product = Callable[[Halves, Halves], Floats]
# Filter columns held as small integer codes, so a filter is one vectorised comparison.
_CODED = ("user", "namespace", "session_id")
# Rows rescored in float32 past the limit: the float16 product ranks closely, and rows that close to the cut are
# few.
_RESCORE_EXTRA = 32
# Up to this many candidates (the chosen memories' rows, or a narrow scope) are scored directly in float32; past it
# one float16 product over the whole table comes first.
_GATHER_ROWS = 4096
# Rows converted to float32 at a time by the numpy product, bounding its transient memory.
_NUMPY_BLOCK = 8192


class ExactSearch:
    """Rows of one vector table as numpy arrays (vectors, their filter columns and memory ids), searched exactly."""

    def __init__(self, dim: int, version: int, product: Product | None = None) -> None:
        self.version = version
        self._dim = dim
        self._product = product or numpy_product
        self._n = 0
        self._vectors: Halves = np.zeros((0, dim), dtype=np.float16)
        self._created = np.zeros(0, dtype=np.float64)
        self._windows = np.zeros(0, dtype=np.int32)
        self._alive = np.zeros(0, dtype=bool)
        self._coded = {name: np.zeros(0, dtype=np.int32) for name in _CODED}
        self._codes: dict[str, dict[str, int]] = {name: {} for name in _CODED}
        self._ids: list[str] = []
        self._slot_of_key: dict[str, int] = {}
        self._slots_of_id: dict[str, set[int]] = {}

    @classmethod
    def from_batches(
        cls, batches: Iterable[pa.RecordBatch], dim: int, version: int, rows: int, product: Product | None = None
    ) -> ExactSearch:
        """Load the table's rows read at `version`, batch by batch (`rows`: how many to expect).

        Batches, and columns rather than rows, keep the transient memory of a load to one batch's worth.
        """
        exact = cls(dim, version, product)
        # Room for a quarter more rows now: pages of zeros take no memory until rows land in them, while
        # growing later copies the whole matrix, old and new resident at once (the peak of a write burst).
        exact._reserve(rows + rows // 4)
        for batch in batches:
            start, n = exact._n, batch.num_rows
            exact._reserve(start + n)
            end = start + n
            vectors = batch.column("vector").flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
            exact._vectors[start:end] = _normalised(vectors)
            exact._created[start:end] = batch.column("created_ts").to_numpy()
            exact._windows[start:end] = batch.column("windows").to_numpy()
            exact._alive[start:end] = True
            for name in _CODED:
                codes = exact._codes[name]
                exact._coded[name][start:end] = [
                    codes.setdefault(str(v), len(codes)) for v in batch.column(name).to_pylist()
                ]
            ids = [str(i) for i in batch.column("id").to_pylist()]
            for slot, (memory, chunk) in enumerate(zip(ids, batch.column("chunk").to_pylist(), strict=True), start):
                exact._slot_of_key[f"{memory}:{chunk}"] = slot
                exact._slots_of_id.setdefault(memory, set()).add(slot)
            exact._ids.extend(ids)
            exact._n = end
        return exact

    @property
    def rows(self) -> int:
        """Return the number of live rows."""
        return len(self._slot_of_key)

    @property
    def capacity(self) -> int:
        """Return how many rows fit before the arrays must grow."""
        return len(self._alive)

    @property
    def vector_bytes(self) -> int:
        """Return the memory the vectors take, room included."""
        return int(self._vectors.nbytes)

    def upsert(self, rows: Sequence[VectorRow]) -> None:
        """Insert rows, or replace the rows with the same key."""
        self._reserve(self._n + len(rows))
        for row in rows:
            slot = self._slot_of_key.get(row.key)
            if slot is None:
                slot = self._n
                self._n += 1
                self._ids.append(row.id)
                self._slot_of_key[row.key] = slot
                self._slots_of_id.setdefault(row.id, set()).add(slot)
            self._vectors[slot] = _normalised(np.asarray(row.vector, dtype=np.float32)[None, :])[0]
            self._created[slot] = row.created_ts
            self._windows[slot] = row.windows
            self._alive[slot] = True
            for name in _CODED:
                codes = self._codes[name]
                self._coded[name][slot] = codes.setdefault(getattr(row, name), len(codes))

    def delete(self, ids: Iterable[str]) -> None:
        """Remove every row of these memories."""
        for memory in ids:
            for slot in self._slots_of_id.pop(memory, ()):
                self._alive[slot] = False
        self._slot_of_key = {key: slot for key, slot in self._slot_of_key.items() if self._alive[slot]}

    def first_vectors(self, ids: Iterable[str]) -> dict[str, Floats]:
        """Return the vector of each memory's first window, for those held."""
        slots = {i: self._slot_of_key.get(f"{i}:0") for i in ids}
        return {i: self._vectors[s].astype(np.float32) for i, s in slots.items() if s is not None and self._alive[s]}

    def search(self, vector: Floats, scope: VectorScope, limit: int) -> list[VectorHit]:
        """Return up to `limit` nearest rows in scope, best first."""
        candidates = self._in_scope(scope)
        if candidates.size == 0 or limit <= 0:
            return []
        query = _unit(np.asarray(vector, dtype=np.float32)[None, :])[0]
        shortlist = limit + _RESCORE_EXTRA
        if candidates.size > max(shortlist, _GATHER_ROWS):
            # One product over all rows is cheaper than gathering many candidates' rows first.
            rough = self._product(self._vectors[: self._n], query.astype(np.float16))[candidates]
            candidates = candidates[np.argpartition(-rough, shortlist - 1)[:shortlist]]
        scores = self._vectors[candidates].astype(np.float32) @ query
        best = np.sort(np.argpartition(-scores, limit - 1)[:limit]) if limit < scores.size else np.arange(scores.size)
        order = best[np.argsort(-scores[best], kind="stable")]
        # Whole arrays to Python lists at once: indexing numpy scalar by scalar held the GIL for longer than the
        # search itself.
        slots = candidates[order]
        ids = [self._ids[slot] for slot in slots.tolist()]
        found = zip(ids, scores[order].tolist(), self._windows[slots].tolist(), strict=True)
        return [VectorHit(i, similarity, windows) for i, similarity, windows in found]

    def _in_scope(self, scope: VectorScope) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Return the slots of the live rows in scope: among every row, or among the chosen memories' rows."""
        if scope.ids is None:
            slots = np.arange(self._n)
        else:
            # Only the chosen rows are checked: a few thousand, not a mask over the whole table.
            chosen = [slot for memory in scope.ids for slot in self._slots_of_id.get(memory, ())]
            slots = np.asarray(sorted(chosen), dtype=np.int64)
        keep = self._alive[slots]
        for name, value in (("user", scope.user), ("namespace", scope.namespace), ("session_id", scope.session_id)):
            if value is None:
                continue
            code = self._codes[name].get(value)
            if code is None:
                return np.zeros(0, dtype=np.int64)
            keep &= self._coded[name][slots] == code
        if scope.since_ts is not None:
            keep &= self._created[slots] >= scope.since_ts
        if scope.until_ts is not None:
            keep &= self._created[slots] <= scope.until_ts
        return slots[keep]

    def _reserve(self, size: int) -> None:
        """Grow the arrays (by a quarter, at least) to hold `size` rows."""
        capacity = self.capacity
        if size <= capacity:
            return
        # A quarter more, not double: at tens of thousands of rows a doubling would hold tens of MB of empty rows.
        capacity = max(size, capacity + capacity // 4, 64)

        def grown(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
            bigger = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
            bigger[: self._n] = array[: self._n]
            return bigger

        self._vectors = grown(self._vectors)
        self._created = grown(self._created)
        self._windows = grown(self._windows)
        self._alive = grown(self._alive)
        self._coded = {name: grown(array) for name, array in self._coded.items()}


def _unit(vectors: Floats) -> Floats:
    """Return the rows scaled to unit length (a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: Floats = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return unit


def _normalised(vectors: Floats) -> Halves:
    """Return the rows scaled to unit length, in float16: how the exact search holds them."""
    return np.asarray(_unit(vectors), dtype=np.float16)


def numpy_product(rows: Halves, query: Halves) -> Floats:
    """Return rows @ query in float32, a block of rows at a time: the product to use when no faster one is given."""
    wide = query.astype(np.float32)
    scores = np.empty(len(rows), dtype=np.float32)
    for start in range(0, len(rows), _NUMPY_BLOCK):
        scores[start : start + _NUMPY_BLOCK] = rows[start : start + _NUMPY_BLOCK].astype(np.float32) @ wide
    return scores


class VersionedExactSearch:
    """Holds the exact search of one table and keeps it tied to the table's version.

    The owner reports each of its commits (`follow`), which the exact search applies when it was current just
    before; any other commit (another process, compaction) leaves it stale, and `current` then returns None
    until `load` reads the table again.
    """

    def __init__(self, dim: int, table_version: Callable[[], int], product: Product | None = None) -> None:
        self._dim = dim
        self._table_version = table_version
        self._product = product
        self._exact: ExactSearch | None = None
        self._lock = threading.Lock()
        # The version the owner's commit in flight starts from: the exact search stands for the table until the
        # owner follows the commit, rather than leave the searches of that moment to LanceDB's scans.
        self._committing_from: int | None = None

    def current(self) -> ExactSearch | None:
        """Return the exact search if it was loaded from, or followed to, the table's current version."""
        version = self._table_version()
        with self._lock:
            return self._exact if self._fresh(version) else None

    @contextlib.contextmanager
    def searchable(self) -> Iterator[ExactSearch | None]:
        """Hold the exact search for a search: yield it if it is current, else None."""
        version = self._table_version()
        # Under the lock: a write followed onto it mid-search could tear a row being replaced.
        with self._lock:
            yield self._exact if self._fresh(version) else None

    @contextlib.contextmanager
    def committing(self) -> Iterator[None]:
        """Keep the exact search current while the owner commits and then follows its commit (under its write lock)."""
        version = self._table_version()
        with self._lock:
            self._committing_from = version if self._fresh(version) else None
        try:
            yield
        finally:
            with self._lock:
                self._committing_from = None

    def _fresh(self, version: int) -> bool:
        exact = self._exact
        return exact is not None and (exact.version == version or exact.version == self._committing_from)

    def follow(
        self, versions: tuple[int, int], change: Callable[[ExactSearch], None], *, only_ours: bool = False
    ) -> None:
        """Apply the owner's commit, made between table versions (before, after), if it was current before it.

        `only_ours`: every version in between is the owner's (its commits held the lock every writer takes), so a
        call that commits several times (compaction) is followed too.
        """
        before, after = versions
        with self._lock:
            exact = self._exact
            if exact is None or exact.version != before or after == before:
                return
            if after == before + 1 or only_ours:
                change(exact)
                exact.version = after
            else:  # another commit slipped in between: only a reload can tell what it did
                self._exact = None

    def load(self, read: Callable[[], Iterable[pa.RecordBatch]], rows: int) -> None:
        """Read the table into a new exact search; searches keep going to the table until it is in place."""
        before = self._table_version()
        with self._lock:
            if not self._fresh(before):
                # Never searched again (versions only move on): free it before its replacement is built beside it.
                self._exact = None
        exact = ExactSearch.from_batches(read(), self._dim, before, rows, self._product)
        if self._table_version() != before:
            return  # the table moved while it was read: the next upkeep tries again
        with self._lock:
            # A commit since the check would leave it stale from the start: keep the old state then.
            if self._table_version() == before:
                self._exact = exact

    def drop(self) -> None:
        """Free the exact search (the table has outgrown it)."""
        with self._lock:
            self._exact = None
