"""What every CLI command shares: the service opened for one command, and waiting for the index with a bar."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

from agent_memory.cli import output as out
from agent_memory.config import Settings
from agent_memory.service import MemoryService

NO_MODEL = "this command does not load the model"


@asynccontextmanager
async def opened(settings: Settings, without_model: str | None = NO_MODEL) -> AsyncIterator[MemoryService]:
    """Open the service for one command and close it after."""
    service = await MemoryService.open(settings, without_model=without_model)
    try:
        yield service
    finally:
        await service.close()


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """Yield a (done, total) callback that draws a progress bar from its first call, and close the bar after."""
    bar: out.Progress | None = None

    def report(done: int, total: int) -> None:
        nonlocal bar
        bar = bar or out.Progress(label, total)
        bar.update(done)

    try:
        yield report
    finally:
        if bar is not None:
            bar.close()


async def index(service: MemoryService, timeout: float | None = None) -> str | None:
    """Wait until every pending memory is indexed, with a progress bar; return the problem if it cannot be."""
    with progress_bar("index") as report:
        return await service.wait_indexed(timeout, report)
