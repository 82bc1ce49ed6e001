"""Top-10 agreement of the product's pgvector search with exact search, on a table a bench run filled.

`bench/postgres.py` fills its own table row by row through HNSW, which takes hours at 1M rows here; this measures
the table `postgres_servers.py recall` has just filled (real rows, synthetic vectors, HNSW built by upkeep):
each query vector is drawn around the same centres as the rows (`SyntheticEmbedder` on a query text), searched
through `PgVectorIndex.search` as recall searches (ef_search at the product's floor, iterative scans), and by an
exact scan (index scans off: every row of the user's scope ordered by cosine distance).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import psycopg
from psycopg import sql

from agent_memory.index import pgvector
from agent_memory.index.pgvector import PgVectorIndex
from agent_memory.index.protocol import VectorScope
from seeded_vectors import DIM, SyntheticEmbedder

K = 10


def vector_table(database: str) -> str:
    """Return the name of the one vector table the server filled."""
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'memories\\_all\\_%'"
        ).fetchone()
    assert row is not None, "no vector table"
    return str(row[0])


def exact(conn: psycopg.Connection[Any], table: str, vector: Any, user: str) -> set[str]:
    """Return the ids of the K nearest rows of `user` by a full scan (no HNSW)."""
    query = sql.SQL('SELECT id FROM {t} WHERE "user" = %s ORDER BY embedding <=> %s::vector LIMIT %s').format(
        t=sql.Identifier(table)
    )
    with conn.transaction():
        conn.execute("SET LOCAL enable_indexscan = off")
        conn.execute("SET LOCAL enable_bitmapscan = off")
        rows = conn.execute(query, (user, "[" + ",".join(f"{x:.7g}" for x in vector) + "]", K)).fetchall()
    return {str(r[0]) for r in rows}


def agreement(database: str, user: str, queries: int) -> dict[str, Any]:
    """Search `queries` query vectors both ways; return p50/p95 ms, the mean agreement and the exact scan's time."""
    table = vector_table(database)
    vectors = SyntheticEmbedder("bench").embed([f"which item is {n}" for n in range(queries)])
    index = PgVectorIndex(database, table, DIM)
    times, exact_times, agree = [], [], []
    try:
        index.search(vectors[0], VectorScope(user, None), K)  # warm
        with psycopg.connect(database) as conn:
            for vector in vectors:
                start = time.perf_counter()
                hits = index.search(vector, VectorScope(user, None), K)
                times.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                truth = exact(conn, table, vector, user)
                exact_times.append((time.perf_counter() - start) * 1000)
                agree.append(len(truth & {h.id for h in hits}) / K)
    finally:
        index.close()
    cut = statistics.quantiles(times, n=20)
    return {
        "agreement_queries": queries,
        "agreement_ef_search": max(pgvector._EF_SEARCH_MIN, 2 * K),
        "agreement_top10": round(statistics.fmean(agree), 3),
        "agreement_min": min(agree),
        "hnsw_search_p50_ms": round(statistics.median(times), 1),
        "hnsw_search_p95_ms": round(cut[18], 1),
        "exact_scan_p50_ms": round(statistics.median(exact_times), 1),
    }
