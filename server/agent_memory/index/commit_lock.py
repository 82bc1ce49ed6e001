"""Commits to a LanceDB table shared by several processes: a cross-process lock and retries with backoff."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from agent_memory.errors import BackendError

logger = logging.getLogger(__name__)

T = TypeVar("T")


@contextlib.contextmanager
def exclusive_lock(path: Path | None) -> Iterator[None]:
    """Hold an exclusive lock on `path` across processes (flock: released by the kernel if the process dies)."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; a single writer process is assumed there
        yield
        return
    if path is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def retry(
    what: str,
    action: Callable[[], T],
    *,
    attempts: int,
    first_seconds: float,
    max_seconds: float,
    refresh: Callable[[], None] | None = None,
) -> T:
    """Run a LanceDB call, retrying transient failures (commit conflicts, cleaned-up files) with backoff.

    The delay doubles from `first_seconds` up to `max_seconds`; `refresh` runs before each retry.
    """
    delay = first_seconds
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except (RuntimeError, OSError, ValueError) as exc:  # LanceDB's errors: lance errors are RuntimeErrors
            if attempt == attempts:
                raise BackendError(f"The vector index failed to {what} after {attempts} attempts: {exc}") from exc
            logger.info("vector index %s failed (attempt %d of %d), retrying: %s", what, attempt, attempts, exc)
        # Jitter so processes that collided do not collide again in step.
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, max_seconds)
        if refresh is not None:
            refresh()
    raise AssertionError("unreachable")
