"""PostgreSQL as the shared source of truth: one database behind many servers (AGENT_MEMORY_DATABASE_URL).

Built on psycopg 3 with psycopg_pool rather than asyncpg: one library gives the store an async connection pool
and gives the vector index (which runs on a worker thread, like LanceDB's) a plain synchronous connection, with
the same types, errors and parameter binding on both sides. Only this package imports psycopg, and only when a
database URL is configured: the SQLite default never loads it.
"""

from agent_memory.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
