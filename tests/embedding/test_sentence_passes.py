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
from agent_memory.embedding.embedder import SLICE_TOKENS, MeanPooler, ModelEmbedder, Vectors, resolve_model
from agent_memory.embedding.host import ModelHost
from agent_memory.embedding.model_files import read_pipeline
from agent_memory.embedding.pooling import TokenEncoder, bert_encoder
from agent_memory.index.protocol import VectorScope
from agent_memory.service import MemoryService
from tests.conftest import HashEmbedder, vector_table

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


@pytest.fixture(scope="module")
def encoder() -> TokenEncoder:
    """The same model's token encoder on its own, to see what a text read alone becomes inside the model."""
    pipeline = read_pipeline(Path(resolve_model(DEFAULT_MODEL)))
    assert pipeline is not None
    return bert_encoder(pipeline, "float32")


def _hidden_states(encoder: TokenEncoder, text: str) -> torch.Tensor:
    """Return the last hidden states of a text read alone, [CLS] and [SEP] included."""
    tokens, mask = encoder.run([text])
    return tokens[0, : int(mask.sum())].float()


async def test_the_memorys_vector_is_the_mean_of_its_sentences_tokens_and_each_sentence_keeps_its_own(
    embedder: ModelEmbedder, encoder: TokenEncoder
) -> None:
    spans = sentence_spans(TEXT)
    (block,) = await _blocks(embedder, [TEXT], [spans])
    assert block.shape == (4, 384) and block.dtype == np.float32
    sentences = [TEXT[a:b] for a, b in spans]
    assert np.abs(block[1:] - embedder.embed(sentences)).max() < 1e-5  # each sentence as if read alone
    pooled = torch.cat([_hidden_states(encoder, s) for s in sentences]).mean(dim=0)
    expected = torch.nn.functional.normalize(pooled, dim=0).numpy()
    assert float(block[0] @ expected) > 0.99999
    # Not a mean of the sentence vectors, and not the text read in one pass (no attention across sentences).
    assert float(block[0] @ (v := embedder.embed(sentences).mean(axis=0)) / np.linalg.norm(v)) < 0.9999
    assert float(block[0] @ embedder.embed([TEXT])[0]) < 0.99
    # A text without spans is its ordinary vector; batching with other texts (padding) changes nothing.
    batched = await _blocks(embedder, ["ok", TEXT, "Short. Text."], [[], spans, sentence_spans("Short. Text.")])
    assert np.abs(batched[0] - embedder.embed(["ok"])).max() < 1e-5
    assert np.abs(batched[1] - block).max() < 1e-4 and batched[2].shape == (3, 384)


class RecordingPooler:
    """The model embedder, recording the padded tokens of each call that reads sentences for their token sums."""

    def __init__(self, embedder: ModelEmbedder) -> None:
        self.embedder = embedder
        self.padded: list[int] = []

    @property
    def name(self) -> str:
        return self.embedder.name

    def load(self) -> int:
        return self.embedder.load()

    def embed(self, texts: Sequence[str]) -> Vectors:
        return self.embedder.embed(texts)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return self.embedder.token_counts(texts)

    @property
    def sums_tokens(self) -> bool:
        return self.embedder.sums_tokens

    def token_sums(self, texts: Sequence[str]) -> tuple[Vectors, Vectors]:
        sums, sizes = self.embedder.token_sums(texts)
        self.padded.append(len(texts) * int(sizes.max()))  # each text padded to the longest
        return sums, sizes


async def test_many_long_sentences_are_read_within_the_slice_token_budget(embedder: ModelEmbedder) -> None:
    # 16 sentences of ~160 tokens: in one batch 2,560 padded tokens, over the budget.
    sentence = "The quarterly infrastructure review covered " + "storage, networking and compute capacity " * 25 + "."
    text = " ".join([sentence] * 2)
    recording = RecordingPooler(embedder)
    model = ModelHost(recording)
    model.start()
    assert await model.wait(60) and recording.sums_tokens
    blocks = await model.embed_spans([text] * 8, [sentence_spans(text)] * 8)
    assert [b.shape for b in blocks] == [(3, 384)] * 8
    assert len(recording.padded) > 1 and max(recording.padded) <= SLICE_TOKENS


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
    (expected,) = await _blocks(embedder, [TEXT], [sentence_spans(TEXT)])
    settings = Settings(data_dir=tmp_path / "d", model_wait_seconds=60)
    service = await MemoryService.open(settings, embedder)
    try:
        target = (await service.remember(TEXT)).id
        await service.remember("The dentist appointment is on Tuesday at 3pm.")
        assert await service.wait_indexed(60) is None
        assert (await service.index_status()).memories == 2
        vectors = await vector_table(service, 384)
        for vector in expected:  # the memory's own vector, then each sentence's
            (nearest,) = vectors.search(vector, VectorScope("default", "default"), 1)
            # A row equal to it, of the memory stored as four rows.
            assert (nearest.id, nearest.windows) == (target, 4)
            # Searched in memory from the first write, where vectors are held in float16 (index/exact.py).
            assert nearest.similarity == pytest.approx(1.0, abs=1e-4)
        assert (await service.recall("Which museum did I visit?")).hits[0].id == target
    finally:
        await service.close()
