"""A query is never held up by an indexing slice: embed_query runs beside it, embed_query_now only when it is free."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from agent_memory.config import DEFAULT_MODEL
from agent_memory.embedding.embedder import ModelEmbedder
from agent_memory.embedding.host import ModelHost
from tests.conftest import HashEmbedder


class HeldEmbedder(HashEmbedder):
    """A HashEmbedder whose embedding of "batch" blocks until the test releases it (an indexing batch running)."""

    embeds_concurrently = True  # queries may go beside the batch (the query lane), as with the bundled model

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


@pytest.mark.anyio
async def test_a_query_is_embedded_while_a_slice_holds_the_model() -> None:
    embedder = HeldEmbedder()
    model = ModelHost(embedder)
    model.start()
    assert await model.wait(10)
    batch = asyncio.create_task(model.embed(["batch"]))
    try:
        assert await asyncio.to_thread(embedder.inside.wait, 30)
        async with asyncio.timeout(10):  # without the lane it waits for the release, which comes after this
            vector = await model.embed_query("Where did Dana move?")
        assert not batch.done()
        assert np.array_equal(vector, HashEmbedder().embed(["Where did Dana move?"])[0])
    finally:
        embedder.release.set()
        await batch


@pytest.mark.anyio
async def test_the_real_model_gives_the_same_query_vectors_beside_an_indexing_batch() -> None:
    embedder = ModelEmbedder(DEFAULT_MODEL)
    model = ModelHost(embedder)
    model.start()
    assert await model.wait(60)
    assert embedder.embeds_concurrently
    questions = [f"What did I say about the trip to place number {n}?" for n in range(8)]
    alone = [embedder.embed([q])[0] for q in questions]
    documents = [f"Turn {n}: we talked for a long while about gardens, trains and tea. " * 6 for n in range(96)]
    batch = asyncio.create_task(model.embed(documents))
    beside = []
    overlapped = 0
    for question in questions:
        beside.append(await model.embed_query(question))
        overlapped += not batch.done()
    expected = embedder.embed(documents)
    assert np.allclose(await batch, expected, atol=1e-5)
    assert overlapped, "the batch ended before any query: nothing ran side by side"
    for got, want in zip(beside, alone, strict=True):
        assert np.allclose(got, want, atol=1e-5)
