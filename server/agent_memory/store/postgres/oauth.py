"""Users, OAuth clients, authorization codes and tokens in Postgres: the OAuthStore of store/oauth.py.

Single-use rules (a code exchanged once, a refresh token rotated once) are conditional UPDATEs inside one
transaction: two servers racing with one code both run the UPDATE, Postgres lets exactly one match the row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agent_memory.store.oauth import CodeRow, FamilyRow, TokenRow, token_row, token_values
from agent_memory.store.postgres.pool import Conn, Database, run

# The kv key of the OAuth client-secret key: every server of one database must derive the same client secrets.
_CLIENT_KEY = "oauth_client_key"
_TOKEN_COLUMNS = "token_hash, kind, client_id, owner, scopes, resource, family, created_ts, expires_ts, used"


class PgOAuth:
    """The sign-in tables on the store's pool."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def set_user(self, name: str, password_hash: str, created_at: str) -> bool:
        """Add a user or replace their password; return whether the user is new."""
        async with self._db.transaction() as conn:
            cur = await run(
                conn,
                "INSERT INTO users VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE"
                " SET password_hash = excluded.password_hash RETURNING (xmax = 0)",
                (name, password_hash, created_at),
            )
            row = await cur.fetchone()
            return bool(row and row[0])

    async def password_hash(self, name: str) -> str | None:
        """Return a user's password hash, or None for no such user."""
        row = await self._db.one("SELECT password_hash FROM users WHERE name = %s", (name,))
        return str(row[0]) if row else None

    async def users(self) -> list[tuple[str, str, int]]:
        """Return (name, created_at, live grants) of every user, by name."""
        rows = await self._db.all(
            "SELECT u.name, u.created_at, (SELECT COUNT(DISTINCT family) FROM oauth_tokens t"
            " WHERE t.owner = u.name AND NOT t.used) FROM users u ORDER BY u.name"
        )
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    async def count_users(self) -> int:
        """Count users who can sign in."""
        return await self._db.scalar("SELECT COUNT(*) FROM users")

    async def remove_user(self, name: str) -> bool:
        """Delete a user with every code and token issued to them; return whether they existed."""
        async with self._db.transaction() as conn:
            await run(conn, "DELETE FROM oauth_tokens WHERE owner = %s", (name,))
            await run(conn, "DELETE FROM oauth_codes WHERE owner = %s", (name,))
            cur = await run(conn, "DELETE FROM users WHERE name = %s", (name,))
            return cur.rowcount > 0

    async def add_client(self, client_id: str, secret_hash: str | None, metadata: str, now: float) -> None:
        """Store a registered client."""
        async with self._db.transaction() as conn:
            await run(
                conn, "INSERT INTO oauth_clients VALUES (%s, %s, %s, %s)", (client_id, secret_hash, metadata, now)
            )

    async def client(self, client_id: str) -> tuple[str | None, str] | None:
        """Return a client's (secret hash, metadata JSON), or None."""
        row = await self._db.one("SELECT secret_hash, metadata FROM oauth_clients WHERE client_id = %s", (client_id,))
        return (row[0], str(row[1])) if row else None

    async def count_clients(self) -> int:
        """Count registered clients."""
        return await self._db.scalar("SELECT COUNT(*) FROM oauth_clients")

    async def add_code(self, code: CodeRow) -> None:
        """Store an authorization code, purging expired ones."""
        async with self._db.transaction() as conn:
            # Spent codes are kept while they could come back (reuse revokes what they issued), then purged.
            await run(conn, "DELETE FROM oauth_codes WHERE expires_ts < %s", (code.expires_ts - 3600,))
            await run(
                conn,
                "INSERT INTO oauth_codes VALUES (%s, %s, %s, %s, %s, %s, FALSE)",
                (code.code_hash, code.client_id, code.user, json.dumps(code.grant), code.family, code.expires_ts),
            )

    async def code(self, code_hash: str) -> CodeRow | None:
        """Return a stored code, used or not."""
        r = await self._db.one(
            "SELECT code_hash, client_id, owner, grant_data, family, expires_ts, used FROM oauth_codes"
            " WHERE code_hash = %s",
            (code_hash,),
        )
        return None if r is None else CodeRow(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], bool(r[6]))

    async def exchange_code(self, code_hash: str, now: float, tokens: Sequence[TokenRow]) -> bool:
        """Mark a live code used and store its tokens, in one transaction; False if it was used or expired."""
        async with self._db.transaction() as conn:
            cur = await run(
                conn,
                "UPDATE oauth_codes SET used = TRUE WHERE code_hash = %s AND NOT used AND expires_ts >= %s",
                (code_hash, now),
            )
            if cur.rowcount != 1:
                return False
            await self._insert(conn, tokens, now)
            return True

    async def rotate(self, token_hash: str, now: float, tokens: Sequence[TokenRow]) -> bool:
        """Mark a live refresh token used and store its successors; False if it was used, revoked or expired."""
        async with self._db.transaction() as conn:
            cur = await run(
                conn,
                "UPDATE oauth_tokens SET used = TRUE WHERE token_hash = %s AND kind = 'refresh' AND NOT used"
                " AND expires_ts >= %s",
                (token_hash, now),
            )
            if cur.rowcount != 1:
                return False
            # The old access tokens of the family go with the refresh token they came with.
            family = tokens[0].family if tokens else ""
            await run(conn, "DELETE FROM oauth_tokens WHERE kind = 'access' AND family = %s", (family,))
            await self._insert(conn, tokens, now)
            return True

    async def _insert(self, conn: Conn, tokens: Sequence[TokenRow], now: float) -> None:
        await run(conn, "DELETE FROM oauth_tokens WHERE expires_ts < %s", (now,))
        for t in tokens:
            await run(
                conn,
                f"INSERT INTO oauth_tokens ({_TOKEN_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, FALSE)",
                token_values(t),
            )

    async def token(self, token_hash: str) -> TokenRow | None:
        """Return a stored token, used or not."""
        row = await self._db.one(f"SELECT {_TOKEN_COLUMNS} FROM oauth_tokens WHERE token_hash = %s", (token_hash,))
        return None if row is None else token_row(row)

    async def revoke_family(self, family: str) -> int:
        """Delete every token of a grant and end its codes; return how many tokens were deleted."""
        async with self._db.transaction() as conn:
            await run(conn, "UPDATE oauth_codes SET used = TRUE WHERE family = %s", (family,))
            cur = await run(conn, "DELETE FROM oauth_tokens WHERE family = %s", (family,))
            return cur.rowcount

    async def shared_client_key(self, candidate: str) -> str | None:
        """Return the key in the kv table, storing `candidate` first if there is none (the first server wins)."""
        async with self._db.transaction() as conn:
            await conn.execute("INSERT INTO kv VALUES (%s, %s) ON CONFLICT (key) DO NOTHING", (_CLIENT_KEY, candidate))
        row = await self._db.one("SELECT value FROM kv WHERE key = %s", (_CLIENT_KEY,))
        assert row is not None  # kv rows are never deleted
        return str(row[0])

    async def families(self) -> list[FamilyRow]:
        """Return every live grant, newest first."""
        rows: list[Any] = await self._db.all(
            "SELECT t.family, MIN(t.owner), MIN(t.client_id), MIN(c.metadata), MIN(t.created_ts), MAX(t.expires_ts)"
            " FROM oauth_tokens t LEFT JOIN oauth_clients c ON c.client_id = t.client_id"
            " WHERE NOT t.used GROUP BY t.family ORDER BY MIN(t.created_ts) DESC"
        )
        return [
            FamilyRow(r[0], r[1], r[2], json.loads(r[3]).get("client_name") if r[3] else None, r[4], r[5]) for r in rows
        ]
