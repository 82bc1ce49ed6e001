"""The pgvector index tests' database: a fresh, empty one on the session's Postgres (tests/postgres.py)."""

from __future__ import annotations

import pytest

from tests.postgres import PostgresServer


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """Return the URL of a new, empty database with pgvector available."""
    return postgres_server.create(migrated=False)
