"""Which vector index a server opens: pgvector when the store is Postgres, else LanceDB beside SQLite."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent_memory.config import Settings

if TYPE_CHECKING:
    from agent_memory.index.protocol import VectorIndex


def database_url(settings: Settings) -> str | None:
    """Return the Postgres URL the settings name, or None for the embedded SQLite + LanceDB default."""
    return settings.database_url or None


def open_vector_index(settings: Settings, table_name: str, dim: int) -> VectorIndex:
    """Open (or create) the vector table for this model and layout (blocking: call it from a worker thread)."""
    url = database_url(settings)
    if url is not None:
        from agent_memory.index.pgvector import PgVectorIndex

        return PgVectorIndex(url, table_name, dim, build_memory_mb=settings.pg_build_memory_mb)
    from agent_memory.embedding import malloc
    from agent_memory.embedding.half import half_product
    from agent_memory.index.lance import LanceVectorIndex
    from agent_memory.index.tuning import IndexTuning

    return LanceVectorIndex(
        settings.vector_location,
        table_name,
        dim,
        storage_options=dict(settings.vector_storage_options),
        # Local even when the index lives in an object store.
        lock_path=settings.data_dir / "vectors.lock",
        tuning=IndexTuning(exact_search_rows=settings.exact_search_rows),
        product=half_product,
        release_memory=malloc.trim,
    )
