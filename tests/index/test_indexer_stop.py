"""Stopping the indexer always stops it, whatever it was waiting on when the cancel came."""

from __future__ import annotations

import asyncio
import time

import pytest

from agent_memory.service import MemoryService
from tests.conftest import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

# Bounds, not expectations: a stop takes well under a second here. A cancel swallowed along the way turns the
# timeout into a late return rather than an error, hence the elapsed-time check as well.
STOP_SECONDS = 30.0


async def test_a_stop_that_meets_a_wake_up_still_stops_the_indexer(service: MemoryService) -> None:
    indexer = service._indexer

    async def idle() -> bool:
        return bool(indexer._wake._waiters)  # type: ignore[attr-defined]  # asyncio.Event's waiters: it sleeps

    await eventually(idle)
    # A write (or a notify from another task) lands in the same turn of the loop as the cancel: on Python 3.11
    # asyncio.wait_for returned the wake-up and dropped the cancel, so the loop ran on and stop() never returned.
    indexer.notify()
    started = time.monotonic()
    async with asyncio.timeout(STOP_SECONDS):
        await indexer.stop()
    assert time.monotonic() - started < STOP_SECONDS / 2
    assert indexer._task is not None and indexer._task.cancelled()


async def test_a_closing_service_stops_even_when_woken_as_it_closes(service: MemoryService) -> None:
    indexer = service._indexer

    async def idle() -> bool:
        return bool(indexer._wake._waiters)  # type: ignore[attr-defined]

    await eventually(idle)
    await service.remember("written just before close")
    started = time.monotonic()
    async with asyncio.timeout(STOP_SECONDS):
        await service.close()
    assert time.monotonic() - started < STOP_SECONDS / 2
