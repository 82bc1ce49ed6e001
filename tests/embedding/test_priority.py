"""Indexing runs at a lower CPU priority than queries, so a recall on a busy machine gets the cores first."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from agent_memory.embedding.host import BACKGROUND_NICE, ModelHost
from tests.conftest import HashEmbedder

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="nice values are per thread on Linux only"),
]


class NiceRecorder(HashEmbedder):
    """Records the nice value of the thread each text is embedded on."""

    embeds_concurrently = True

    def __init__(self) -> None:
        self.nice: dict[str, int] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        value = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        self.nice.update(dict.fromkeys(texts, value))
        return super().embed(texts)


async def test_documents_are_embedded_at_a_lower_priority_than_queries() -> None:
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    embedder = NiceRecorder()
    model = ModelHost(embedder)
    model.start()
    assert await model.wait(10)
    await model.embed(["a memory to index", "another one"])
    await model.embed_query("what did I say?")
    assert embedder.nice["what did I say?"] == base
    assert embedder.nice["a memory to index"] == embedder.nice["another one"] == min(19, base + BACKGROUND_NICE)
