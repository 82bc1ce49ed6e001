"""The connection pool: statement timeouts, reconnection, and database failures as clear BackendErrors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from agent_memory.errors import BackendError, ConfigError, InvalidInput

logger = logging.getLogger(__name__)

Conn = psycopg.AsyncConnection[tuple[Any, ...]]

# One statement runs at most this long before Postgres cancels it (a stuck query must not hold a pool slot).
STATEMENT_TIMEOUT_SECONDS = 30.0
# A request waits this long for a free or fresh connection before the caller hears the database is away.
CONNECT_WAIT_SECONDS = 10.0
POOL_MAX_SIZE = 10


def first_line(exc: BaseException) -> str:
    """Return the first line of an error's message (its type's name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def describe(url: str) -> str:
    """Return where a database URL points (host, port, database), never its password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"AGENT_MEMORY_DATABASE_URL is not a valid PostgreSQL URL: {exc}") from None
    host = str(parts.get("host") or "localhost")
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"{host}{port}/{parts.get('dbname') or parts.get('user') or ''}"


def check_text(params: Iterable[Any]) -> None:
    """Raise InvalidInput for a NUL character in any text value: Postgres text cannot hold one."""
    for value in params:
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput(
                "a value contains a NUL character (\\x00), which the PostgreSQL store cannot hold: remove it."
            )
        if isinstance(value, list | tuple):
            check_text(value)


class Database:
    """A pool of autocommit connections to one database; every write runs in an explicit transaction."""

    def __init__(self, pool: AsyncConnectionPool[Conn], where: str) -> None:
        self._pool = pool
        self.where = where

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        statement_timeout: float = STATEMENT_TIMEOUT_SECONDS,
        connect_wait: float = CONNECT_WAIT_SECONDS,
        max_size: int = POOL_MAX_SIZE,
    ) -> Database:
        """Open a pool on the URL and wait (bounded) for its first connection."""
        where = describe(url)
        millis = str(int(statement_timeout * 1000))

        async def configure(conn: Conn) -> None:
            # set_config takes a bound value where SET takes none; `false`: for the session, not one transaction.
            await conn.execute("SELECT set_config('statement_timeout', %s, false)", (millis,))

        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            url,
            open=False,
            min_size=1,
            max_size=max_size,
            timeout=connect_wait,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(connect_wait))},
            configure=configure,
            # A connection that died with the server (restart, failover) is replaced before it is handed out.
            check=AsyncConnectionPool.check_connection,
            name="agent-memory",
        )
        try:
            await pool.open(wait=True, timeout=connect_wait)
        except PoolTimeout:
            await pool.close()
            raise BackendError(
                f"Cannot connect to the memory database at {where} within {connect_wait:g} s: check that it runs"
                " and that AGENT_MEMORY_DATABASE_URL (host, port, user, password) is right."
            ) from None
        return cls(pool, where)

    async def close(self) -> None:
        """Close every connection of the pool."""
        await self._pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """Lend a connection; a database that is away or too slow becomes a BackendError that says so."""
        try:
            async with self._pool.connection() as conn:
                yield conn
        except PoolTimeout:
            raise BackendError(
                f"The memory database at {self.where} is unreachable (no connection within the wait); nothing was"
                " written. The server reconnects by itself when it is back: try again."
            ) from None
        except psycopg.DataError as exc:
            first = first_line(exc)
            raise InvalidInput(f"A value cannot be stored in the PostgreSQL memory database: {first}.") from None
        except psycopg.errors.QueryCanceled:
            raise BackendError(
                f"A query on the memory database at {self.where} ran longer than the statement timeout and was"
                " cancelled; nothing of it was written. Narrow the request or try again."
            ) from None
        except psycopg.OperationalError as exc:
            first = first_line(exc)
            raise BackendError(
                f"The memory database at {self.where} failed ({first}); nothing of this request was written."
                " The server reconnects by itself when the database is back: try again."
            ) from None
        except psycopg.Error as exc:
            # A conflict with a concurrent writer (a unique key taken meanwhile) or a closed pool: never raw.
            first = first_line(exc)
            raise BackendError(
                f"The memory database at {self.where} refused the request ({first}); nothing of it was written."
                " Try again."
            ) from None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """Run a transaction on one pooled connection: all of it commits or none of it."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Return every row of a query (NUL-free parameters only)."""
        check_text(params)
        # Shielded: a caller cancelled mid-read (a service closing) leaves the short read to finish on its own,
        # where psycopg would otherwise cancel it in the server and wait up to 10 s for that.
        return await asyncio.shield(self._all(sql, params))

    async def _all(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with self.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    async def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """Return the first row of a query, or None."""
        rows = await self.all(sql, params)
        return rows[0] if rows else None

    async def scalar(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Return the first column of the first row as an int (0 for none)."""
        row = await self.one(sql, params)
        return int(row[0]) if row and row[0] is not None else 0


async def run(conn: Conn, sql: str, params: Sequence[Any] = ()) -> psycopg.AsyncCursor[tuple[Any, ...]]:
    """Execute on a connection already lent (inside a transaction), NUL-free parameters only."""
    check_text(params)
    return await conn.execute(sql, params)
