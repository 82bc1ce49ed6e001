"""Sign-in use cases, part of the service: users with passwords, OAuth clients, codes and rotating tokens.

Passwords are hashed with scrypt from the standard library (memory-hard, no compiled dependency to ship).
Codes and tokens are 256-bit random strings, so a plain SHA-256 is enough to store them: nothing to guess.
A client secret is an HMAC of its client id under a key kept in a file beside the database, never in it, so
a copy of the database alone holds no secret that works. On a shared Postgres database the servers have data
dirs of their own, so the key lives in the database's kv table instead (the first server's key file wins):
otherwise a client registered through one server would be refused by the others.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent_memory.config import Settings
from agent_memory.errors import InvalidInput
from agent_memory.store.oauth import CodeRow, FamilyRow, OAuthStore, TokenRow

ACCESS_SECONDS = 3600
REFRESH_SECONDS = 30 * 86400
CODE_SECONDS = 300
MIN_PASSWORD_CHARS = 8
# scrypt at n=2**14, r=8: 16 MiB and tens of milliseconds per try (the parameters travel with each hash).
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_KEY_FILE = "oauth-client.key"


def hash_password(password: str) -> str:
    """Return a salted scrypt hash of a password, with its parameters."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, maxmem=64 * 2**20, **_SCRYPT)
    n, r, p = _SCRYPT["n"], _SCRYPT["r"], _SCRYPT["p"]
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Return whether a password matches a hash made by hash_password."""
    _, n, r, p, salt, digest = stored.split("$")
    got = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32, maxmem=64 * 2**20
    )
    return hmac.compare_digest(got, bytes.fromhex(digest))


@functools.cache
def _dummy_hash() -> str:
    """Return a hash checked when the user does not exist, so a wrong name costs as long as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))


def digest(secret: str) -> str:
    """Return the stored form of a high-entropy code or token."""
    return hashlib.sha256(secret.encode()).hexdigest()


def has_users(settings: Settings) -> bool:
    """Return whether anyone can sign in, read straight from the database (before the server starts)."""
    if settings.database_url:  # the users are in Postgres, shared by every server of it
        from agent_memory.store.postgres.schema import has_users as has_postgres_users

        return has_postgres_users(settings.database_url)
    if not settings.sqlite_path.exists():
        return False
    db = sqlite3.connect(f"{settings.sqlite_path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    try:
        return bool(db.execute("SELECT COUNT(*) FROM users").fetchone()[0])
    except sqlite3.OperationalError:  # no users table yet: a database older than migration 3
        return False
    finally:
        db.close()


@dataclass(frozen=True)
class Grant:
    """What a code or token lets its client do: whose memories, for which resource, with which scopes."""

    client_id: str
    user: str
    scopes: tuple[str, ...]
    resource: str
    expires_at: float
    family: str
    details: dict[str, Any]


@dataclass(frozen=True)
class Issued:
    """A new access token with its refresh token."""

    access_token: str
    refresh_token: str
    expires_in: int
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class UserInfo:
    """A user as `user list` shows them."""

    name: str
    created_at: str
    grants: int


class Accounts:
    """Users, clients and grants over the store's sign-in tables."""

    def __init__(self, store: OAuthStore, data_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._data_dir = data_dir
        self.clock = clock
        self._shared_key: bytes | None = None

    async def share_client_key(self) -> None:
        """Use the database's client-secret key when the store is shared (Postgres); a no-op on SQLite."""
        path = self._data_dir / _KEY_FILE
        candidate = path.read_bytes() if path.exists() else secrets.token_bytes(32)
        shared = await self._store.shared_client_key(candidate.hex())
        self._shared_key = bytes.fromhex(shared) if shared is not None else None

    async def set_user(self, name: str, password: str) -> bool:
        """Add a user who signs in with this password, or reset their password; return whether they are new."""
        Settings(data_dir=self._data_dir, user=name)  # the same rules as every user name
        if len(password) < MIN_PASSWORD_CHARS:
            raise InvalidInput(f"the password must have at least {MIN_PASSWORD_CHARS} characters.")
        created = datetime.now(UTC).isoformat(timespec="seconds")
        return await self._store.set_user(name, await asyncio.to_thread(hash_password, password), created)

    async def remove_user(self, name: str) -> bool:
        """Remove a user's sign-in and revoke every token issued to them (their memories stay)."""
        return await self._store.remove_user(name)

    async def users(self) -> list[UserInfo]:
        """Return every user who can sign in."""
        return [UserInfo(*row) for row in await self._store.users()]

    async def has_users(self) -> bool:
        """Return whether anyone can sign in."""
        return await self._store.count_users() > 0

    async def sign_in(self, name: str, password: str) -> bool:
        """Return whether the name and password match a user."""
        stored = await self._store.password_hash(name)
        # On a worker thread: scrypt takes tens of milliseconds, which the event loop must not wait through.
        ok = await asyncio.to_thread(lambda: check_password(password, stored or _dummy_hash()))
        return ok and stored is not None

    def client_secret(self, client_id: str) -> str:
        """Return the secret of a confidential client, derived from its id under the key file."""
        mac = hmac.new(self._client_key(), client_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def _client_key(self) -> bytes:
        if self._shared_key is not None:
            return self._shared_key
        path = self._data_dir / _KEY_FILE
        try:
            return path.read_bytes()
        except FileNotFoundError:
            key = secrets.token_bytes(32)
            with path.open("xb") as out:  # umask 077 keeps it private, like the database
                out.write(key)
            return key

    async def register_client(self, client_id: str, confidential: bool, metadata: str) -> None:
        """Store a registered client's metadata (its secret is derived, never stored)."""
        secret = digest(self.client_secret(client_id)) if confidential else None
        await self._store.add_client(client_id, secret, metadata, self.clock())

    async def client(self, client_id: str) -> tuple[str | None, str] | None:
        """Return a client's (secret, metadata JSON), or None for an unknown client."""
        found = await self._store.client(client_id)
        if found is None:
            return None
        return (self.client_secret(client_id) if found[0] else None), found[1]

    async def count_clients(self) -> int:
        """Count registered clients."""
        return await self._store.count_clients()

    async def issue_code(self, client_id: str, user: str, resource: str, details: dict[str, Any]) -> str:
        """Store a new authorization code for a user's consent; return the code."""
        code = secrets.token_urlsafe(32)
        row = CodeRow(digest(code), client_id, user, details, uuid.uuid4().hex, self.clock() + CODE_SECONDS)
        await self._store.add_code(row)
        return code

    async def load_code(self, code: str) -> Grant | None:
        """Return an unused code's grant; a used one revokes what it issued (RFC 6749 section 4.1.2)."""
        row = await self._store.code(digest(code))
        if row is None:
            return None
        if row.used:
            await self._store.revoke_family(row.family)
            return None
        details = row.grant
        scopes = tuple(details.get("scopes", ()))
        return Grant(row.client_id, row.user, scopes, details["resource"], row.expires_ts, row.family, details)

    async def exchange_code(self, code: str, grant: Grant) -> Issued | None:
        """Spend a code on a first token pair; None if it was spent meanwhile (which revokes the family)."""
        issued, rows = self._pair(grant)
        if not await self._store.exchange_code(digest(code), self.clock(), rows):
            await self._store.revoke_family(grant.family)
            return None
        return issued

    async def load_token(self, token: str, kind: str) -> Grant | None:
        """Return a live token's grant; a used refresh token is a replay, which revokes its family."""
        row = await self._store.token(digest(token))
        if row is None or row.kind != kind:
            return None
        if row.used:
            await self._store.revoke_family(row.family)
            return None
        if row.expires_ts < self.clock():
            return None
        return Grant(row.client_id, row.user, row.scopes, row.resource, row.expires_ts, row.family, {})

    async def rotate(self, refresh_token: str, grant: Grant, scopes: tuple[str, ...]) -> Issued | None:
        """Spend a refresh token on a new pair; None if it was spent meanwhile (which revokes the family)."""
        issued, rows = self._pair(Grant(grant.client_id, grant.user, scopes, grant.resource, 0, grant.family, {}))
        if not await self._store.rotate(digest(refresh_token), self.clock(), rows):
            await self._store.revoke_family(grant.family)
            return None
        return issued

    def _pair(self, grant: Grant) -> tuple[Issued, list[TokenRow]]:
        now = self.clock()
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        common = (grant.client_id, grant.user, grant.scopes, grant.resource, grant.family, now)
        rows = [
            TokenRow(digest(access), "access", *common, now + ACCESS_SECONDS),
            TokenRow(digest(refresh), "refresh", *common, now + REFRESH_SECONDS),
        ]
        return Issued(access, refresh, ACCESS_SECONDS, grant.scopes), rows

    async def revoke(self, family: str) -> int:
        """Revoke a grant: every token of its family; return how many tokens went."""
        return await self._store.revoke_family(family)

    async def grants(self) -> list[FamilyRow]:
        """Return every live grant, newest first."""
        return await self._store.families()
