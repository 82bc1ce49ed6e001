"""Users, OAuth clients, authorization codes and tokens in SQLite (migration 3); every secret arrives hashed.

A `family` is one grant: the codes and tokens that descend from one consent. Rotation, reuse detection and
revocation act on families, in single transactions, so two requests racing with one code or refresh token
cannot both win.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import aiosqlite

Transaction = Callable[[], AbstractAsyncContextManager[aiosqlite.Connection]]


@dataclass(frozen=True)
class TokenRow:
    """One stored access or refresh token (its hash, never the token)."""

    token_hash: str
    kind: str
    client_id: str
    user: str
    scopes: tuple[str, ...]
    resource: str
    family: str
    created_ts: float
    expires_ts: float
    used: bool = False

    @property
    def timestamps(self) -> tuple[float, float]:
        """Return (created, expires)."""
        return self.created_ts, self.expires_ts


@dataclass(frozen=True)
class CodeRow:
    """One stored authorization code (its hash) with the grant it carries."""

    code_hash: str
    client_id: str
    user: str
    grant: dict[str, Any]
    family: str
    expires_ts: float
    used: bool = False


@dataclass(frozen=True)
class FamilyRow:
    """One live grant: whose, which client, since when, until when."""

    family: str
    user: str
    client_id: str
    client_name: str | None
    created_ts: float
    expires_ts: float


TOKEN_COLUMNS = "token_hash, kind, client_id, user, scopes, resource, family, created_ts, expires_ts, used"


def token_row(row: Sequence[Any]) -> TokenRow:
    scopes = tuple(str(s) for s in json.loads(row[4]))
    return TokenRow(row[0], row[1], row[2], row[3], scopes, row[5], row[6], row[7], row[8], bool(row[9]))


def token_values(t: TokenRow) -> tuple[Any, ...]:
    return (t.token_hash, t.kind, t.client_id, t.user, json.dumps(t.scopes), t.resource, t.family, *t.timestamps)


class OAuthStore(Protocol):
    """The sign-in tables: users, registered clients, authorization codes and tokens (SQLite or Postgres)."""

    async def set_user(self, name: str, password_hash: str, created_at: str) -> bool:
        """Add a user or replace their password; return whether the user is new."""
        ...

    async def password_hash(self, name: str) -> str | None:
        """Return a user's password hash, or None for no such user."""
        ...

    async def users(self) -> list[tuple[str, str, int]]:
        """Return (name, created_at, live grants) of every user, by name."""
        ...

    async def count_users(self) -> int:
        """Count users who can sign in."""
        ...

    async def remove_user(self, name: str) -> bool:
        """Delete a user with every code and token issued to them; return whether they existed."""
        ...

    async def add_client(self, client_id: str, secret_hash: str | None, metadata: str, now: float) -> None:
        """Store a registered client."""
        ...

    async def client(self, client_id: str) -> tuple[str | None, str] | None:
        """Return a client's (secret hash, metadata JSON), or None."""
        ...

    async def count_clients(self) -> int:
        """Count registered clients."""
        ...

    async def add_code(self, code: CodeRow) -> None:
        """Store an authorization code, purging expired ones."""
        ...

    async def code(self, code_hash: str) -> CodeRow | None:
        """Return a stored code, used or not."""
        ...

    async def exchange_code(self, code_hash: str, now: float, tokens: Sequence[TokenRow]) -> bool:
        """Mark a live code used and store its tokens, in one transaction; False if it was used or expired."""
        ...

    async def rotate(self, token_hash: str, now: float, tokens: Sequence[TokenRow]) -> bool:
        """Mark a live refresh token used and store its successors; False if it was used, revoked or expired."""
        ...

    async def token(self, token_hash: str) -> TokenRow | None:
        """Return a stored token, used or not."""
        ...

    async def revoke_family(self, family: str) -> int:
        """Delete every token of a grant and end its codes; return how many tokens were deleted."""
        ...

    async def families(self) -> list[FamilyRow]:
        """Return every live grant, newest first."""
        ...

    async def shared_client_key(self, candidate: str) -> str | None:
        """Return the client-secret key the servers of a shared database use (`candidate` if none yet), or None."""
        ...


class SQLiteOAuth:
    """The sign-in tables, on the store's one connection and its write transactions."""

    def __init__(self, db: aiosqlite.Connection, transaction: Transaction) -> None:
        self._db = db
        self._transaction = transaction

    async def shared_client_key(self, candidate: str) -> str | None:
        """Return None: one SQLite file has one server's data dir, which keeps the key in a file beside it."""
        return None

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async with self._db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def set_user(self, name: str, password_hash: str, created_at: str) -> bool:
        """Add a user or replace their password; return whether the user is new."""
        async with self._transaction() as db:
            async with db.execute("SELECT 1 FROM users WHERE name = ?", (name,)) as cur:
                known = await cur.fetchone() is not None
            await db.execute(
                "INSERT INTO users VALUES (?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET password_hash = excluded.password_hash",
                (name, password_hash, created_at),
            )
            return not known

    async def password_hash(self, name: str) -> str | None:
        """Return a user's password hash, or None for no such user."""
        rows = await self._all("SELECT password_hash FROM users WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    async def users(self) -> list[tuple[str, str, int]]:
        """Return (name, created_at, live grants) of every user, by name."""
        return await self._all(
            "SELECT u.name, u.created_at, (SELECT COUNT(DISTINCT family) FROM oauth_tokens t"
            " WHERE t.user = u.name AND t.used = 0) FROM users u ORDER BY u.name"
        )

    async def count_users(self) -> int:
        """Count users who can sign in."""
        return int((await self._all("SELECT COUNT(*) FROM users"))[0][0])

    async def remove_user(self, name: str) -> bool:
        """Delete a user with every code and token issued to them; return whether they existed."""
        async with self._transaction() as db:
            await db.execute("DELETE FROM oauth_tokens WHERE user = ?", (name,))
            await db.execute("DELETE FROM oauth_codes WHERE user = ?", (name,))
            cur = await db.execute("DELETE FROM users WHERE name = ?", (name,))
            return cur.rowcount > 0

    async def add_client(self, client_id: str, secret_hash: str | None, metadata: str, now: float) -> None:
        """Store a registered client."""
        async with self._transaction() as db:
            await db.execute("INSERT INTO oauth_clients VALUES (?, ?, ?, ?)", (client_id, secret_hash, metadata, now))

    async def client(self, client_id: str) -> tuple[str | None, str] | None:
        """Return a client's (secret hash, metadata JSON), or None."""
        rows = await self._all("SELECT secret_hash, metadata FROM oauth_clients WHERE client_id = ?", (client_id,))
        return (rows[0][0], str(rows[0][1])) if rows else None

    async def count_clients(self) -> int:
        """Count registered clients."""
        return int((await self._all("SELECT COUNT(*) FROM oauth_clients"))[0][0])

    async def add_code(self, code: CodeRow) -> None:
        """Store an authorization code, purging expired ones."""
        async with self._transaction() as db:
            # Spent codes are kept while they could come back (reuse revokes what they issued), then purged.
            await db.execute("DELETE FROM oauth_codes WHERE expires_ts < ?", (code.expires_ts - 3600,))
            await db.execute(
                "INSERT INTO oauth_codes VALUES (?, ?, ?, ?, ?, ?, 0)",
                (code.code_hash, code.client_id, code.user, json.dumps(code.grant), code.family, code.expires_ts),
            )

    async def code(self, code_hash: str) -> CodeRow | None:
        """Return a stored code, used or not."""
        rows = await self._all(
            "SELECT code_hash, client_id, user, grant_data, family, expires_ts, used FROM oauth_codes"
            " WHERE code_hash = ?",
            (code_hash,),
        )
        if not rows:
            return None
        r = rows[0]
        return CodeRow(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], bool(r[6]))

    async def exchange_code(self, code_hash: str, now: float, tokens: Sequence[TokenRow]) -> bool:
        """Mark a live code used and store its tokens, in one transaction; False if it was used or expired."""
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE oauth_codes SET used = 1 WHERE code_hash = ? AND used = 0 AND expires_ts >= ?", (code_hash, now)
            )
            if cur.rowcount != 1:
                return False
            await self._insert(db, tokens, now)
            return True

    async def rotate(self, token_hash: str, now: float, tokens: Sequence[TokenRow]) -> bool:
        """Mark a live refresh token used and store its successors; False if it was used, revoked or expired."""
        async with self._transaction() as db:
            cur = await db.execute(
                "UPDATE oauth_tokens SET used = 1 WHERE token_hash = ? AND kind = 'refresh' AND used = 0"
                " AND expires_ts >= ?",
                (token_hash, now),
            )
            if cur.rowcount != 1:
                return False
            # The old access tokens of the family go with the refresh token they came with.
            await db.execute(
                "DELETE FROM oauth_tokens WHERE kind = 'access' AND family = ?", (tokens[0].family if tokens else "",)
            )
            await self._insert(db, tokens, now)
            return True

    async def _insert(self, db: aiosqlite.Connection, tokens: Sequence[TokenRow], now: float) -> None:
        await db.execute("DELETE FROM oauth_tokens WHERE expires_ts < ?", (now,))
        await db.executemany(
            f"INSERT INTO oauth_tokens ({TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            [token_values(t) for t in tokens],
        )

    async def token(self, token_hash: str) -> TokenRow | None:
        """Return a stored token, used or not."""
        rows = await self._all(f"SELECT {TOKEN_COLUMNS} FROM oauth_tokens WHERE token_hash = ?", (token_hash,))
        return token_row(rows[0]) if rows else None

    async def revoke_family(self, family: str) -> int:
        """Delete every token of a grant and end its codes; return how many tokens were deleted."""
        async with self._transaction() as db:
            await db.execute("UPDATE oauth_codes SET used = 1 WHERE family = ?", (family,))
            cur = await db.execute("DELETE FROM oauth_tokens WHERE family = ?", (family,))
            return cur.rowcount

    async def families(self) -> list[FamilyRow]:
        """Return every live grant, newest first."""
        rows = await self._all(
            "SELECT t.family, t.user, t.client_id, c.metadata, MIN(t.created_ts), MAX(t.expires_ts)"
            " FROM oauth_tokens t LEFT JOIN oauth_clients c ON c.client_id = t.client_id"
            " WHERE t.used = 0 GROUP BY t.family ORDER BY MIN(t.created_ts) DESC"
        )
        return [
            FamilyRow(r[0], r[1], r[2], json.loads(r[3]).get("client_name") if r[3] else None, r[4], r[5]) for r in rows
        ]
