"""The indexer hands freed heap back to the OS during a long burst, not only when it ends."""

from __future__ import annotations

import pytest

from agent_memory.config import Settings
from agent_memory.index import indexer
from agent_memory.models import NewMemory
from tests.conftest import eventually, open_ready

pytestmark = pytest.mark.anyio


async def test_heap_is_trimmed_between_the_batches_of_a_burst(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(indexer, "TRIM_EVERY_SECONDS", 0.0)
    service = await open_ready(settings)
    trims: list[int] = []
    model = service._indexer._model

    async def release_memory() -> None:
        trims.append(await service.count_pending())

    try:
        monkeypatch.setattr(model, "release_memory", release_memory)
        await service.remember_many([NewMemory(content=f"note {n} about the garden") for n in range(3 * indexer.BATCH)])

        async def three() -> bool:
            return len(trims) >= 3

        await eventually(three)
        assert trims[0] > 0  # the first came while memories were still waiting
    finally:
        await service.close()
