"""Numbered schema migrations, applied in order at start-up and recorded in `schema_migrations`."""

import sqlite3

MIGRATIONS: list[str] = [
    # 1: memories, keyword index, summaries
    """
    CREATE TABLE memories (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        user TEXT NOT NULL,
        namespace TEXT NOT NULL,
        session_id TEXT NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '[]',
        metadata TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        created_ts REAL NOT NULL,
        indexed INTEGER NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX memories_dedupe ON memories(user, namespace, content_hash);
    CREATE INDEX memories_scope_time ON memories(user, namespace, created_ts);
    CREATE INDEX memories_session_time ON memories(user, namespace, session_id, created_ts);
    CREATE INDEX memories_unindexed ON memories(indexed) WHERE indexed = 0;
    CREATE VIRTUAL TABLE memories_fts USING fts5(
        content, content='memories', content_rowid='rowid',
        tokenize='porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts(rowid, content) VALUES (new.rowid, new.content);
    END;
    CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts(memories_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
    END;
    CREATE TABLE summaries (
        rowid INTEGER PRIMARY KEY,
        user TEXT NOT NULL,
        namespace TEXT NOT NULL,
        session_key TEXT NOT NULL,
        focus TEXT NOT NULL,
        text TEXT NOT NULL,
        backend TEXT NOT NULL,
        covered_ids TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX summaries_key ON summaries(user, namespace, session_key, focus, rowid);
    CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: keyword search reads each turn of a named conversation with the turn before it (`context`: derived,
    # never returned; NULL for what is no such turn). Rows of the server's default sessions get none.
    """
    ALTER TABLE memories ADD COLUMN context TEXT;
    DROP TRIGGER memories_ai;
    DROP TRIGGER memories_ad;
    DROP TABLE memories_fts;
    UPDATE memories SET context = COALESCE((
        SELECT group_concat(content, char(10)) FROM (
            SELECT p.content FROM memories p
            WHERE p.user = memories.user AND p.namespace = memories.namespace
              AND p.session_id = memories.session_id AND p.role IN ('user', 'assistant')
              AND p.session_id NOT LIKE 'session-%' AND p.session_id NOT LIKE 'http-%'
              AND (p.created_ts < memories.created_ts
                   OR (p.created_ts = memories.created_ts AND p.rowid < memories.rowid))
            ORDER BY p.created_ts DESC, p.rowid DESC LIMIT 1
        )
    ), '') WHERE role IN ('user', 'assistant') AND session_id NOT LIKE 'session-%' AND session_id NOT LIKE 'http-%';
    CREATE VIRTUAL TABLE memories_fts USING fts5(
        content, context, content='memories', content_rowid='rowid',
        tokenize='porter unicode61 remove_diacritics 2'
    );
    INSERT INTO memories_fts(memories_fts, rank) VALUES ('rank', 'bm25(1.0, 0.3)');
    CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts(rowid, content, context) VALUES (new.rowid, new.content, new.context);
    END;
    CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts(memories_fts, rowid, content, context)
        VALUES ('delete', old.rowid, old.content, old.context);
    END;
    CREATE TRIGGER memories_au AFTER UPDATE OF context ON memories BEGIN
        INSERT INTO memories_fts(memories_fts, rowid, content, context)
        VALUES ('delete', old.rowid, old.content, old.context);
        INSERT INTO memories_fts(rowid, content, context) VALUES (new.rowid, new.content, new.context);
    END;
    INSERT INTO memories_fts(memories_fts) VALUES ('rebuild');
    """,
    # 3 (OAuth sign-in, issue 19): users with a password, registered OAuth clients, authorization codes and
    # tokens. Secrets are stored as hashes only; `family` is one grant (one consent), revoked as a whole.
    """
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE oauth_clients (
        client_id TEXT PRIMARY KEY,
        secret_hash TEXT,
        metadata TEXT NOT NULL,
        created_ts REAL NOT NULL
    );
    CREATE TABLE oauth_codes (
        code_hash TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        user TEXT NOT NULL,
        grant_data TEXT NOT NULL,
        family TEXT NOT NULL,
        expires_ts REAL NOT NULL,
        used INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE oauth_tokens (
        token_hash TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
        client_id TEXT NOT NULL,
        user TEXT NOT NULL,
        scopes TEXT NOT NULL,
        resource TEXT NOT NULL,
        family TEXT NOT NULL,
        created_ts REAL NOT NULL,
        expires_ts REAL NOT NULL,
        used INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX oauth_tokens_family ON oauth_tokens(family);
    CREATE INDEX oauth_tokens_user ON oauth_tokens(user);
    CREATE INDEX oauth_codes_family ON oauth_codes(family);
    """,
    # 4 (facts change, issue 15): a memory superseded by a newer one (the link and the newer one's time, as
    # text and as a number for comparisons), and when a memory expires. NULL: current, never expires.
    # vector_tombstones: forgotten memories whose vectors could not be deleted yet (the index closed or busy).
    """
    ALTER TABLE memories ADD COLUMN superseded_by TEXT;
    ALTER TABLE memories ADD COLUMN superseded_at TEXT;
    ALTER TABLE memories ADD COLUMN superseded_ts REAL;
    ALTER TABLE memories ADD COLUMN expires_at TEXT;
    ALTER TABLE memories ADD COLUMN expires_ts REAL;
    CREATE INDEX memories_superseded_by ON memories(superseded_by) WHERE superseded_by IS NOT NULL;
    CREATE INDEX memories_expiry ON memories(expires_ts) WHERE expires_ts IS NOT NULL;
    CREATE TABLE vector_tombstones (id TEXT PRIMARY KEY);
    """,
    # 5 (web page, issue 18): each memory's tags as rows with the columns a page filters on, newest first per
    # (user, namespace, tag), so a tag filter counts and charts from this index alone instead of reading every
    # row's JSON. Derived from memories (the source of truth): filled here, kept in step by triggers, rebuilt by
    # deleting its rows and running the INSERT ... SELECT below again.
    """
    CREATE TABLE memory_tags (
        user TEXT NOT NULL,
        namespace TEXT NOT NULL,
        tag TEXT NOT NULL,
        created_ts REAL NOT NULL,
        memory_rowid INTEGER NOT NULL,
        role TEXT NOT NULL,
        session_id TEXT NOT NULL,
        superseded_by TEXT,
        superseded_ts REAL,
        expires_ts REAL,
        PRIMARY KEY (user, namespace, tag, created_ts, memory_rowid)
    ) WITHOUT ROWID;
    CREATE INDEX memory_tags_memory ON memory_tags(memory_rowid);
    INSERT OR IGNORE INTO memory_tags
        SELECT m.user, m.namespace, j.value, m.created_ts, m.rowid, m.role, m.session_id, m.superseded_by,
               m.superseded_ts, m.expires_ts
        FROM memories m, json_each(m.tags) j WHERE j.type = 'text';
    CREATE TRIGGER memory_tags_ai AFTER INSERT ON memories BEGIN
        INSERT OR IGNORE INTO memory_tags
            SELECT new.user, new.namespace, value, new.created_ts, new.rowid, new.role, new.session_id,
                   new.superseded_by, new.superseded_ts, new.expires_ts
            FROM json_each(new.tags) WHERE type = 'text';
    END;
    CREATE TRIGGER memory_tags_ad AFTER DELETE ON memories BEGIN
        DELETE FROM memory_tags WHERE memory_rowid = old.rowid;
    END;
    CREATE TRIGGER memory_tags_au AFTER UPDATE OF tags, user, namespace, created_ts, role, session_id, superseded_by,
        superseded_ts, expires_ts ON memories BEGIN
        DELETE FROM memory_tags WHERE memory_rowid = old.rowid;
        INSERT OR IGNORE INTO memory_tags
            SELECT new.user, new.namespace, value, new.created_ts, new.rowid, new.role, new.session_id,
                   new.superseded_by, new.superseded_ts, new.expires_ts
            FROM json_each(new.tags) WHERE type = 'text';
    END;
    """,
]


def statements(script: str) -> list[str]:
    """Split a migration script into statements, keeping trigger bodies whole."""
    statements: list[str] = []
    current: list[str] = []
    for line in script.strip().splitlines():
        current.append(line)
        joined = "\n".join(current).strip()
        if joined.endswith(";") and sqlite3.complete_statement(joined):
            statements.append(joined)
            current = []
    if "".join(current).strip():
        statements.append("\n".join(current))
    return statements
