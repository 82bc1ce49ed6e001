"""How the LanceDB vector index trades memory, build time and search speed: one frozen set of numbers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IndexTuning:
    """Thresholds and retry bounds of the vector index; the defaults suit MiniLM vectors on a small machine."""

    # Compact after this many writes: each add makes a table version and a small fragment.
    compact_every: int = 200
    # Past this many rows exact search gets slow enough that an ANN index pays for its build.
    ann_min_rows: int = 20_000
    # Retrain the ANN index when the table has grown by this factor since it was trained.
    ann_retrain_growth: float = 2.0
    # Share of the IVF partitions probed, and candidates re-ranked with full vectors per hit: probing PQ codes
    # is cheap and re-ranking is not, so probing many partitions with a small refine keeps recall high for less.
    probe_share: float = 0.3
    refine: int = 5
    # Up to this many rows, searches go to the exact search in memory (float16: 2 bytes per dimension and row),
    # and no ANN index is built; 0 never loads it.
    exact_search_rows: int = 50_000
    # LanceDB's caches of index pages and of table metadata. Its metadata default (1 GB) let a server that writes
    # memories one by one grow for hours: every commit is a table version whose metadata stays cached. The index
    # cache holds the ANN index's partitions: bounded at 128 MB it slowed recall at 100k memories.
    index_cache_bytes: int = 1 << 30
    metadata_cache_bytes: int = 64 << 20
    # Attempts for a write and for a read: LanceDB commits are optimistic and may lose a race to another process.
    write_attempts: int = 8
    read_attempts: int = 3
    # Backoff between attempts: doubles from the first delay up to the cap.
    retry_first_seconds: float = 0.05
    retry_max_seconds: float = 2.0
