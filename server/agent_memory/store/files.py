"""The data directory: created readable by its owner only, with the database file inside it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from agent_memory.config import Settings


def make_private_dir(settings: Settings) -> None:
    """Create the data dir, the database file and the vector dir readable by the user only."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(settings.data_dir, 0o700)
    # Create the database file 0600 before SQLite does (SQLite gives its -wal and -shm files the same mode).
    # Only when it is absent: closing any descriptor of a file drops every POSIX lock this process holds on
    # it, so opening an existing database here could release SQLite's locks and let another process
    # checkpoint and delete the WAL under our feet.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(settings.sqlite_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    if settings.vector_uri is None:
        settings.vector_dir.mkdir(exist_ok=True, mode=0o700)
    for path in (settings.sqlite_path, *_sidecars(settings), *([] if settings.vector_uri else [settings.vector_dir])):
        if path.exists():
            os.chmod(path, 0o700 if path.is_dir() else 0o600)


def _sidecars(settings: Settings) -> list[Path]:
    return [settings.sqlite_path.with_name(settings.sqlite_path.name + suffix) for suffix in ("-wal", "-shm")]
