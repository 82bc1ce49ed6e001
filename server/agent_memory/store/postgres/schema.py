"""The Postgres schema: numbered migrations, applied in order under an advisory lock, recorded in schema_migrations.

The tables mirror the SQLite ones (store/migrations.py) with two differences: the owner column is `owner`
(`user` is a reserved word in Postgres, and unquoted it means the session's role, never an error), and the
insertion order is an identity column `pos` in place of SQLite's rowid.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg.conninfo import conninfo_to_dict

from agent_memory.errors import ConfigError
from agent_memory.store.postgres.pool import describe

logger = logging.getLogger(__name__)

# The advisory lock every server takes while it migrates: two servers starting together never both migrate.
MIGRATION_LOCK = 0x61676D656D  # "agmem"
CONNECT_SECONDS = 10

MIGRATIONS: list[str] = [
    # 1: memories with keyword search (a generated tsvector of the content and, weighted lower, the turn before
    # it, as SQLite's FTS5 indexes both), summaries, settings, OAuth sign-in, vector tombstones.
    """
    CREATE TABLE memories (
        pos BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        owner TEXT NOT NULL,
        namespace TEXT NOT NULL,
        session_id TEXT NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        tags JSONB NOT NULL DEFAULT '[]',
        metadata TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        created_ts DOUBLE PRECISION NOT NULL,
        indexed SMALLINT NOT NULL DEFAULT 0,
        claimed_until DOUBLE PRECISION,
        claimed_by TEXT,
        context TEXT,
        superseded_by TEXT,
        superseded_at TEXT,
        superseded_ts DOUBLE PRECISION,
        expires_at TEXT,
        expires_ts DOUBLE PRECISION,
        search TSVECTOR GENERATED ALWAYS AS (
            setweight(to_tsvector('english', content), 'A')
            || setweight(to_tsvector('english', COALESCE(context, '')), 'D')
        ) STORED
    );
    CREATE UNIQUE INDEX memories_dedupe ON memories(owner, namespace, content_hash);
    CREATE INDEX memories_scope_time ON memories(owner, namespace, created_ts);
    CREATE INDEX memories_session_time ON memories(owner, namespace, session_id, created_ts, pos);
    CREATE INDEX memories_unindexed ON memories(pos) WHERE indexed = 0;
    CREATE INDEX memories_search ON memories USING GIN (search);
    CREATE INDEX memories_superseded_by ON memories(superseded_by) WHERE superseded_by IS NOT NULL;
    CREATE INDEX memories_expiry ON memories(expires_ts) WHERE expires_ts IS NOT NULL;
    CREATE TABLE summaries (
        pos BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        owner TEXT NOT NULL,
        namespace TEXT NOT NULL,
        session_key TEXT NOT NULL,
        focus TEXT NOT NULL,
        text TEXT NOT NULL,
        backend TEXT NOT NULL,
        covered_ids JSONB NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX summaries_key ON summaries(owner, namespace, session_key, focus, pos);
    CREATE INDEX summaries_covered ON summaries USING GIN (covered_ids);
    CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE vector_tombstones (id TEXT PRIMARY KEY);
    CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE TABLE oauth_clients (
        client_id TEXT PRIMARY KEY,
        secret_hash TEXT,
        metadata TEXT NOT NULL,
        created_ts DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE oauth_codes (
        code_hash TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        owner TEXT NOT NULL,
        grant_data TEXT NOT NULL,
        family TEXT NOT NULL,
        expires_ts DOUBLE PRECISION NOT NULL,
        used BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE TABLE oauth_tokens (
        token_hash TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
        client_id TEXT NOT NULL,
        owner TEXT NOT NULL,
        scopes TEXT NOT NULL,
        resource TEXT NOT NULL,
        family TEXT NOT NULL,
        created_ts DOUBLE PRECISION NOT NULL,
        expires_ts DOUBLE PRECISION NOT NULL,
        used BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX oauth_tokens_family ON oauth_tokens(family);
    CREATE INDEX oauth_tokens_owner ON oauth_tokens(owner);
    CREATE INDEX oauth_codes_family ON oauth_codes(family);
    """,
]


async def migrate(url: str, migrations: list[str] | None = None) -> int:
    """Apply the pending migrations under the advisory lock; return the schema version now in place.

    On a connection of its own, without the pool's statement timeout: a migration of a large table may take a
    while, and a server waiting on the lock for another one's migration must not give up half-way.
    """
    scripts = MIGRATIONS if migrations is None else migrations
    # A bounded connect: an unreachable host is an error in seconds, not after the system's TCP timeout.
    wait = conninfo_to_dict(url).get("connect_timeout") or CONNECT_SECONDS  # the URL's own, when it names one
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=wait) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            cur = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            row = await cur.fetchone()
            current = int(row[0]) if row else 0
            if current > len(scripts):
                raise ConfigError(
                    f"The memory database at {describe(url)} has schema version {current}, newer than this"
                    f" agent-memory knows (up to {len(scripts)}): a newer version wrote to it. Upgrade agent-memory"
                    " on this machine (pip install -U 'agent-memory[postgres]') before using this database."
                )
            for version, script in enumerate(scripts, start=1):
                if version <= current:
                    continue
                # One transaction: a failed migration leaves the schema as it was.
                async with conn.transaction():
                    await conn.execute(script)
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                logger.info("applied Postgres migration %d", version)
                current = version
            return current
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


def has_users(url: str) -> bool:
    """Return whether anyone can sign in, read before the server starts (whether it serves OAuth)."""
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            row = conn.execute("SELECT EXISTS (SELECT 1 FROM users)").fetchone()
    except psycopg.errors.UndefinedTable:  # not migrated yet: nobody signs in
        return False
    except psycopg.OperationalError as exc:
        raise ConfigError(f"Cannot reach the memory database at {describe(url)}: {exc}") from None
    return bool(row and row[0])
