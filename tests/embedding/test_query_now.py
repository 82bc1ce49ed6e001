"""ModelHost.embed_query_now: an embedding only when the model is free this instant, never a wait behind a batch."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from agent_memory.embedding.host import ModelHost
from tests.conftest import HashEmbedder


class HeldEmbedder(HashEmbedder):
    """A HashEmbedder whose embedding of "batch" blocks until the test releases it (an indexing batch running)."""

    def __init__(self) -> None:
        self.inside = threading.Event()
        self.release = threading.Event()

    def embed(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        if "batch" in texts:
            self.inside.set()
            assert self.release.wait(timeout=30)
        return super().embed(texts)


@pytest.mark.anyio
async def test_a_query_now_is_none_while_a_batch_holds_the_model_and_a_vector_once_it_is_free() -> None:
    embedder = HeldEmbedder()
    model = ModelHost(embedder)
    model.start()
    assert await model.wait(10)
    batch = asyncio.create_task(model.embed(["batch"]))
    assert await asyncio.to_thread(embedder.inside.wait, 30)
    assert await model.embed_query_now("Dana prefers light mode.") is None
    embedder.release.set()
    await batch
    vector = await model.embed_query_now("Dana prefers light mode.")
    assert vector is not None
    assert np.array_equal(vector, HashEmbedder().embed(["Dana prefers light mode."])[0])
    embedder.release.clear()  # cached now: answered even while the model is busy again
    batch = asyncio.create_task(model.embed(["batch"]))
    assert await asyncio.to_thread(embedder.inside.wait, 30)
    cached = await model.embed_query_now("Dana prefers light mode.")
    assert cached is not None and np.array_equal(cached, vector)
    embedder.release.set()
    await batch
