"""The service with its vector index on pgvector (index/backends.py picks it): indexing, recall, scope."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_memory.config import Settings
from agent_memory.index.pgvector import PgVectorIndex
from tests.conftest import HashEmbedder, open_ready

pytestmark = pytest.mark.anyio


def _on_postgres(settings: Settings, url: str) -> Settings:
    # HOUSE (issue 16): `database_url` is a real setting once the pg-store branch is merged.
    object.__setattr__(settings, "database_url", url)
    return settings


async def test_memories_are_indexed_into_pgvector_and_recalled_within_their_user(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = _on_postgres(Settings(data_dir=tmp_path / "data", model_wait_seconds=30), postgres_url)
    service = await open_ready(settings, HashEmbedder())
    try:
        assert isinstance(service._indexer.vectors, PgVectorIndex)
        bob = service.scoped("bob")
        kept = await service.remember("The bicycle lives in the garden shed")
        await service.remember("Quarterly taxes are due in April")
        await bob.remember("Bob keeps his bicycle in the garden shed too")
        assert await service.wait_indexed(30) is None
        status = await service.index_status()
        assert status.open and status.memories == 3 and status.pending == 0
        found = await service.recall("The bicycle lives in the garden shed", mode="vector")
        assert [h.id for h in found.hits][:1] == [kept.id]
        assert all("Bob" not in h.content for h in found.hits)
        await service.forget(kept.id)
        again = await service.recall("The bicycle lives in the garden shed", mode="vector")
        assert all(h.id != kept.id for h in again.hits)
    finally:
        await service.close()
    assert service._indexer.vectors is None  # its connection pool is closed with the service
    # A second process on the same database finds the index complete: nothing to re-embed.
    again = await open_ready(_on_postgres(Settings(data_dir=tmp_path / "data"), postgres_url), HashEmbedder())
    try:
        assert (await again.index_status()).memories == 2
    finally:
        await again.close()
