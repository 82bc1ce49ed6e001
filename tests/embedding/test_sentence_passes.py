"""A chat-sized memory's sentences are read once: the memory's own vector is pooled from its sentences' passes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from agent_memory.config import DEFAULT_MODEL, Settings
from agent_memory.embedding.chunking import Span, chunks, flatten, plan, sentence_spans
from agent_memory.embedding.embedder import SLICE_TOKENS, MeanPooler, ModelEmbedder
from agent_memory.embedding.host import ModelHost
from agent_memory.service import MemoryService
from tests.conftest import HashEmbedder

pytestmark = pytest.mark.anyio

TEXT = "Can you suggest a tomato variety? By the way, I visited the Louvre on 2/8! It was lovely."


async def _blocks(embedder: Any, texts: list[str], spans: list[list[Span]]) -> list[np.ndarray]:
    model = ModelHost(embedder)
    model.start()
    assert await model.wait(60)
    return await model.embed_spans(texts, spans)


@pytest.fixture(scope="module")
def embedder() -> ModelEmbedder:
    # float32: bfloat16 vectors move by ~1e-3 with what they are batched with, too much for exact checks.
    model = ModelEmbedder(DEFAULT_MODEL, precision="float32")
    model.load()
    assert model.backend == "torch"
    return model


def test_a_chat_sized_memory_is_one_text_whose_sentences_are_its_spans() -> None:
    ((whole, spans),) = plan(TEXT)
    assert whole == TEXT and spans == sentence_spans(TEXT) and len(spans) == 3
    assert chunks(TEXT) == flatten([whole], [spans])  # the rows of the index, in the same order
    assert plan("One sentence only.") == [("One sentence only.", [])]
    long = " ".join(f"w{i}." for i in range(400))
    assert len(plan(long)) > 1 and all(not spans for _, spans in plan(long))


def _hidden_states(embedder: ModelEmbedder, text: str) -> torch.Tensor:
    """Return the last hidden states of a text read alone, [CLS] and [SEP] included."""
    assert embedder._summing is not None
    tokens, mask = embedder._summing._encoder.run([text])
    return tokens[0, : int(mask.sum())].float()


async def test_the_memorys_vector_is_the_mean_of_its_sentences_tokens_and_each_sentence_keeps_its_own(
    embedder: ModelEmbedder,
) -> None:
    spans = sentence_spans(TEXT)
    (block,) = await _blocks(embedder, [TEXT], [spans])
    assert block.shape == (4, 384) and block.dtype == np.float32
    sentences = [TEXT[a:b] for a, b in spans]
    assert np.abs(block[1:] - embedder.embed(sentences)).max() < 1e-5  # each sentence as if read alone
    pooled = torch.cat([_hidden_states(embedder, s) for s in sentences]).mean(dim=0)
    expected = torch.nn.functional.normalize(pooled, dim=0).numpy()
    assert float(block[0] @ expected) > 0.99999
    # Not a mean of the sentence vectors, and not the text read in one pass (no attention across sentences).
    assert float(block[0] @ (v := embedder.embed(sentences).mean(axis=0)) / np.linalg.norm(v)) < 0.9999
    assert float(block[0] @ embedder.embed([TEXT])[0]) < 0.99
    # A text without spans is its ordinary vector; batching with other texts (padding) changes nothing.
    batched = await _blocks(embedder, ["ok", TEXT, "Short. Text."], [[], spans, sentence_spans("Short. Text.")])
    assert np.abs(batched[0] - embedder.embed(["ok"])).max() < 1e-5
    assert np.abs(batched[1] - block).max() < 1e-4 and batched[2].shape == (3, 384)


async def test_many_long_sentences_are_read_within_the_slice_token_budget(
    embedder: ModelEmbedder,
) -> None:
    # 16 sentences of ~160 tokens: in one batch 2,560 padded tokens, over the budget.
    sentence = "The quarterly infrastructure review covered " + "storage, networking and compute capacity " * 25 + "."
    text = " ".join([sentence] * 2)
    model = ModelHost(embedder)
    model.start()
    assert await model.wait(60) and embedder._summing is not None
    encoder = embedder._summing._encoder
    seen: list[int] = []
    run = encoder.run

    def recording(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens, mask = run(texts)
        seen.append(int(mask.shape[0] * mask.shape[1]))
        return tokens, mask

    encoder.run = recording  # type: ignore[method-assign]
    try:
        blocks = await model.embed_spans([text] * 8, [sentence_spans(text)] * 8)
    finally:
        del encoder.run
    assert [b.shape for b in blocks] == [(3, 384)] * 8
    assert len(seen) > 1 and max(seen) <= SLICE_TOKENS + 64  # padded to a multiple of 8 at most


async def test_the_library_reads_the_text_and_each_span_in_passes_of_their_own() -> None:
    library = ModelEmbedder(DEFAULT_MODEL, loader="sentence-transformers")
    spans = sentence_spans(TEXT)
    (block,) = await _blocks(library, [TEXT], [spans])
    assert not library.sums_tokens
    assert np.abs(block - library.embed(flatten([TEXT], [spans]))).max() < 1e-6


async def test_an_embedder_without_spans_gets_the_text_and_each_span_as_texts_of_their_own() -> None:
    class Recording(HashEmbedder):
        def __init__(self) -> None:
            self.seen: list[str] = []

        def embed(self, texts: Sequence[str]) -> np.ndarray:
            self.seen += texts
            return super().embed(texts)

    hashed = Recording()
    assert not isinstance(hashed, MeanPooler)
    texts, spans = ["Hi.", TEXT], [[], sentence_spans(TEXT)]
    blocks = await _blocks(hashed, texts, spans)
    assert [b.shape[0] for b in blocks] == [1, 4]
    assert sorted(hashed.seen) == sorted(flatten(texts, spans))
    assert np.array_equal(np.concatenate(blocks), hashed.embed(flatten(texts, spans)))


async def test_indexing_stores_each_memorys_vector_and_its_sentences_vectors(
    tmp_path: Path, embedder: ModelEmbedder
) -> None:
    settings = Settings(data_dir=tmp_path / "d", model_wait_seconds=60)
    service = await MemoryService.open(settings, embedder)
    try:
        target = (await service.remember(TEXT)).id
        await service.remember("The dentist appointment is on Tuesday at 3pm.")
        assert await service.indexer.drain(60)
        vectors = service.indexer.vectors
        assert vectors is not None and vectors.count() == 2
        (expected,) = await service.model.embed_spans([TEXT], [sentence_spans(TEXT)])
        stored = vectors._table.to_arrow().to_pylist()
        rows = sorted((r["chunk"], np.asarray(r["vector"])) for r in stored if r["id"] == target)
        assert [n for n, _ in rows] == [0, 1, 2, 3]
        assert np.abs(np.stack([v for _, v in rows]) - expected).max() < 1e-4
        assert (await service.recall("Which museum did I visit?")).hits[0].id == target
    finally:
        await service.close()
