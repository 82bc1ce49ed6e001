"""Sign-in storage on real SQLite and Postgres: hashed secrets, one winner when a code or token races, purging."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from agent_memory.accounts import ACCESS_SECONDS, Accounts, Grant, Issued, check_password, hash_password
from agent_memory.config import Settings
from agent_memory.errors import InvalidInput
from tests.conftest import open_store

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

RESOURCE = "http://127.0.0.1:8765/mcp"


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Tables:
    """The test's database read through a second connection, as another process sees it."""

    settings: Settings

    @property
    def dir(self) -> Path:
        return self.settings.data_dir

    def count(self, table: str) -> int:
        """Count a table's rows."""
        return int(self._rows(f"SELECT COUNT(*) FROM {table}")[0][0])

    def dump(self) -> bytes:
        """Return everything stored about sign-in, as bytes to search for a secret."""
        if self.settings.database_url is None:
            path = self.settings.sqlite_path
            return path.read_bytes() + path.with_name(path.name + "-wal").read_bytes()
        tables = ("users", "oauth_clients", "oauth_codes", "oauth_tokens")
        return repr([self._rows(f"SELECT * FROM {t}") for t in tables]).encode()

    def _rows(self, sql: str) -> list[tuple[object, ...]]:
        if self.settings.database_url is None:
            with sqlite3.connect(self.settings.sqlite_path) as db:
                return db.execute(sql).fetchall()
        import psycopg

        with psycopg.connect(self.settings.database_url) as conn:
            return conn.execute(sql).fetchall()  # type: ignore[arg-type]


@pytest.fixture
async def accounts(settings: Settings) -> AsyncIterator[tuple[Accounts, Clock, Tables]]:
    """Accounts on a fresh database, with a movable clock."""
    store = await open_store(settings)
    clock = Clock()
    try:
        yield Accounts(store.oauth, settings.data_dir, clock), clock, Tables(settings)
    finally:
        await store.close()


async def grant(accounts: Accounts) -> tuple[str, Grant]:
    """Issue a code for alice; return it with its grant."""
    code = await accounts.issue_code("client-1", "alice", RESOURCE, {"resource": RESOURCE, "scopes": []})
    loaded = await accounts.load_code(code)
    assert loaded is not None and loaded.user == "alice" and loaded.resource == RESOURCE
    return code, loaded


def test_a_password_hash_is_salted_scrypt_and_checks_only_the_right_password() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and first.startswith("scrypt$16384$8$1$") and "correct" not in first
    assert check_password("correct horse", first) and not check_password("correct horsf", first)


async def test_users_sign_in_with_their_own_password_only(accounts: tuple[Accounts, Clock, Tables]) -> None:
    acc, _, _ = accounts
    with pytest.raises(InvalidInput, match="at least 8"):
        await acc.set_user("alice", "short")
    assert await acc.set_user("alice", "alice-password") is True
    assert await acc.set_user("bob", "bob-password") is True
    assert await acc.sign_in("alice", "alice-password") and not await acc.sign_in("alice", "bob-password")
    assert not await acc.sign_in("carol", "alice-password")
    assert await acc.set_user("alice", "new-password") is False
    assert await acc.sign_in("alice", "new-password") and not await acc.sign_in("alice", "alice-password")


async def test_a_code_raced_by_two_exchanges_issues_at_most_one_live_pair(
    accounts: tuple[Accounts, Clock, Tables],
) -> None:
    acc, _, tables = accounts
    code, loaded = await grant(acc)
    results: list[Issued | None] = []

    async def exchange() -> None:
        results.append(await acc.exchange_code(code, loaded))

    async with anyio.create_task_group() as tg:
        for _ in range(2):
            tg.start_soon(exchange)
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    # The loser is a replay: the grant is revoked, so the winner's tokens stop working too.
    assert await acc.load_token(winners[0].access_token, "access") is None
    assert tables.count("oauth_tokens") == 0
    assert await acc.load_code(code) is None


async def test_a_refresh_token_raced_twice_rotates_once_and_revokes_the_family(
    accounts: tuple[Accounts, Clock, Tables],
) -> None:
    acc, _, tables = accounts
    code, loaded = await grant(acc)
    pair = await acc.exchange_code(code, loaded)
    assert pair is not None
    refresh = await acc.load_token(pair.refresh_token, "refresh")
    assert refresh is not None
    results = []

    async def rotate() -> None:
        results.append(await acc.rotate(pair.refresh_token, refresh, ()))

    async with anyio.create_task_group() as tg:
        for _ in range(2):
            tg.start_soon(rotate)
    assert sum(r is not None for r in results) == 1
    assert tables.count("oauth_tokens") == 0


async def test_tokens_are_stored_hashed_expire_and_are_purged(accounts: tuple[Accounts, Clock, Tables]) -> None:
    acc, clock, tables = accounts
    code, loaded = await grant(acc)
    pair = await acc.exchange_code(code, loaded)
    assert pair is not None
    dump = tables.dump()
    assert pair.access_token.encode() not in dump and code.encode() not in dump
    assert await acc.load_token(pair.access_token, "access") is not None
    assert await acc.load_token(pair.access_token, "refresh") is None  # an access token is no refresh token
    clock.now += ACCESS_SECONDS + 1
    assert await acc.load_token(pair.access_token, "access") is None
    assert await acc.load_token(pair.refresh_token, "refresh") is not None  # refresh tokens live longer
    before = tables.count("oauth_tokens")
    await acc.exchange_code(*(await grant(acc)))  # issuing purges what has expired
    assert tables.count("oauth_tokens") == before - 1 + 2


async def test_a_client_secret_is_derived_from_a_key_file_and_never_stored(
    accounts: tuple[Accounts, Clock, Tables],
) -> None:
    acc, _, tables = accounts
    await acc.register_client("client-1", True, '{"client_name": "x"}')
    await acc.register_client("client-2", False, '{"client_name": "y"}')
    first = await acc.client("client-1")
    assert first is not None and first[0] == acc.client_secret("client-1")
    assert await acc.client("client-2") == (None, '{"client_name": "y"}')
    assert acc.client_secret("client-1") != acc.client_secret("client-2")
    assert first[0] is not None and first[0].encode() not in tables.dump()
    assert (tables.dir / "oauth-client.key").stat().st_size == 32


async def test_servers_on_one_postgres_database_derive_the_same_client_secrets(pg_url: str, tmp_path: Path) -> None:
    """Each server has a data dir (and key file) of its own; the first one's key, kept in the database, wins."""
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    for path in (first_dir, second_dir):
        path.mkdir()
    (first_dir / "oauth-client.key").write_bytes(b"k" * 32)  # an existing single server's key carries over
    stores = [await open_store(Settings(data_dir=d, database_url=pg_url)) for d in (first_dir, second_dir)]
    try:
        first, second = Accounts(stores[0].oauth, first_dir), Accounts(stores[1].oauth, second_dir)
        before = first.client_secret("client-1")
        await first.share_client_key()
        await second.share_client_key()
        assert first.client_secret("client-1") == second.client_secret("client-1") == before
        assert first.client_secret("client-2") != first.client_secret("client-1")
        assert not (second_dir / "oauth-client.key").exists()
    finally:
        for store in stores:
            await store.close()


async def test_the_client_key_is_in_the_data_dir_on_sqlite_and_in_the_database_on_postgres(settings: Settings) -> None:
    store = await open_store(settings)
    try:
        accounts = Accounts(store.oauth, settings.data_dir)
        await accounts.share_client_key()
        secret = accounts.client_secret("client-1")
        again = Accounts(store.oauth, settings.data_dir)
        await again.share_client_key()
        assert again.client_secret("client-1") == secret
        assert (settings.data_dir / "oauth-client.key").exists() == (settings.database_url is None)
    finally:
        await store.close()
