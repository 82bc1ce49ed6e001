"""The embedder: the pooling transformers path gives sentence-transformers' vectors, and everything else falls back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from agent_memory.config import DEFAULT_MODEL, EmbedLoader, load_settings
from agent_memory.embedding import pooling as pooling
from agent_memory.embedding.embedder import (
    KERNEL_CACHE_CAPACITY,
    KERNEL_CACHE_VARIABLES,
    SLICE_TOKENS,
    ModelEmbedder,
    resolve_model,
)
from agent_memory.embedding.host import ModelHost
from agent_memory.embedding.model_files import read_pipeline
from agent_memory.errors import ConfigError
from agent_memory.index.batches import read_chars, within_budget
from agent_memory.store.rows import PendingRow
from tests.conftest import HashEmbedder

BUNDLED = Path(resolve_model(DEFAULT_MODEL))

TEXTS = [
    "I prefer green tea in the morning.",
    "",
    "   ",
    "?",
    "Ünïcödé naïve café — 日本語のテキスト, текст по-русски, emoji 🎉🧠 and math ∑ x² ≤ ∞",
    "The deployment runbook lives in docs/ops.md. " * 60,  # far past 256 word pieces: truncated
    "word " * 255,
    "a" * 3000,  # one enormous "word"
    "\tTabs\nand\r\nnewlines\n\n",
    "ok",
]


def _copy_model(tmp_path: Path) -> Path:
    """Copy the bundled model's small files and link its weights: a directory the test may edit."""
    target = tmp_path / "model"
    for source in BUNDLED.rglob("*"):
        dest = target / source.relative_to(BUNDLED)
        if source.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        elif source.suffix == ".safetensors":
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(source)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(source.read_bytes())
    return target


def _edit_json(path: Path, change: dict[str, object]) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))


@pytest.fixture(scope="module")
def library_vectors() -> np.ndarray:
    full = ModelEmbedder(DEFAULT_MODEL, loader="sentence-transformers")
    full.load()
    assert full.backend == "sentence-transformers"
    return full.embed(TEXTS)


@pytest.mark.parametrize(("loader", "backend"), [("auto", "torch"), ("transformers", "transformers")])
def test_lean_vectors_equal_sentence_transformers_vectors(
    library_vectors: np.ndarray, loader: EmbedLoader, backend: str
) -> None:
    pooling = ModelEmbedder(DEFAULT_MODEL, loader=loader, precision="float32")
    assert pooling.load() == 384
    assert (pooling.backend, pooling.precision) == (backend, "float32")
    vectors = pooling.embed(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
    assert np.abs(vectors - library_vectors).max() < 1e-5
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Batch composition (padding) does not change a text's vector.
    one_by_one = np.concatenate([pooling.embed([t]) for t in TEXTS])
    assert np.abs(one_by_one - library_vectors).max() < 1e-5
    assert pooling.embed([]).shape == (0, 384)
    assert pooling.token_counts(["hello world", "word " * 400]) == [4, 256]  # [CLS] hello world [SEP]; truncated


def test_bfloat16_vectors_point_where_the_library_vectors_do(library_vectors: np.ndarray) -> None:
    fast = ModelEmbedder(DEFAULT_MODEL, precision="bfloat16")
    assert fast.load() == 384
    assert (fast.backend, fast.precision) == ("torch", "bfloat16")
    vectors = fast.embed(TEXTS)
    assert vectors.dtype == np.float32 and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # The residual stream and layer norms stay float32: every vector is within a cosine of 1e-4 of the exact one
    # (a layer norm or the residual in bfloat16 would be off by ~1e-3 to 1e-2).
    assert (vectors * library_vectors).sum(axis=1).min() > 0.9999
    one_by_one = np.concatenate([fast.embed([t]) for t in TEXTS])
    assert (one_by_one * library_vectors).sum(axis=1).min() > 0.9999
    # Rankings follow the exact vectors: each text's nearest other text is the same.
    exact, close = library_vectors @ library_vectors.T, vectors @ library_vectors.T
    np.fill_diagonal(exact, -1)
    np.fill_diagonal(close, -1)
    assert (exact.argmax(axis=1) == close.argmax(axis=1)).all()


def test_bfloat16_keeps_the_weights_in_half_the_memory_and_layer_norms_exact() -> None:
    from agent_memory.embedding.bert import BertEncoder

    pipeline = read_pipeline(BUNDLED)
    assert pipeline is not None
    encoder = BertEncoder(pipeline.transformer_dir, 256, torch.bfloat16)
    dtypes = encoder.weight_dtypes()
    assert dtypes["encoder.layer.0.intermediate.dense.weight"] == torch.bfloat16
    assert dtypes["embeddings.word_embeddings.weight"] == torch.bfloat16
    assert dtypes["encoder.layer.5.output.LayerNorm.weight"] == torch.float32
    assert {d for k, d in dtypes.items() if "LayerNorm" not in k and d.is_floating_point} == {torch.bfloat16}


def test_auto_precision_is_bfloat16_only_where_the_cpu_has_it() -> None:
    from agent_memory.embedding.bert import native_bfloat16

    embedder = ModelEmbedder(DEFAULT_MODEL)
    embedder.load()
    assert embedder.precision == ("bfloat16" if native_bfloat16() else "float32")
    assert load_settings({}).embed_precision == "auto"
    assert load_settings({"AGENT_MEMORY_EMBED_PRECISION": "float32"}).embed_precision == "float32"
    with pytest.raises(ConfigError, match="AGENT_MEMORY_EMBED_PRECISION"):
        load_settings({"AGENT_MEMORY_EMBED_PRECISION": "int8"})


def test_the_default_model_loads_on_torch_alone_and_prints_nothing() -> None:
    code = (
        "import sys; from agent_memory.embedding.embedder import ModelEmbedder;"
        "e = ModelEmbedder('all-MiniLM-L6-v2'); e.load(); e.embed(['hello']);"
        "print(e.backend, *(m in sys.modules for m in ('sentence_transformers', 'transformers', 'scipy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.split() == ["torch", "False", "False", "False"]
    assert out.stderr == ""


def test_the_transformers_path_prints_nothing() -> None:
    code = (
        "import sys; from agent_memory.embedding.embedder import ModelEmbedder;"
        "e = ModelEmbedder('all-MiniLM-L6-v2', loader='transformers'); e.load(); e.embed(['hello']);"
        "print(e.backend, 'sentence_transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.split() == ["transformers", "False"]
    assert out.stderr == ""  # no "Loading weights" bar or load report in the client's log


def test_a_bert_variant_plain_torch_does_not_run_loads_with_transformers(tmp_path: Path) -> None:
    model = _copy_model(tmp_path)
    _edit_json(model / "config.json", {"hidden_act": "gelu_new"})  # tanh-approximated GELU
    embedder = ModelEmbedder(str(model))
    assert embedder.load() == 384
    assert embedder.backend == "transformers"


def test_an_unreadable_tokenizer_gives_a_clear_config_error(tmp_path: Path) -> None:
    model = _copy_model(tmp_path)
    (model / "tokenizer.json").write_text("{broken")
    (model / "vocab.txt").unlink()
    with pytest.raises(ConfigError, match="AGENT_MEMORY_MODEL"):
        ModelEmbedder(str(model)).load()


def test_a_non_standard_pipeline_loads_with_sentence_transformers(tmp_path: Path, library_vectors: np.ndarray) -> None:
    model = _copy_model(tmp_path)
    # mean_sqrt_len pooling is one sentence-transformers runs and the pooling path does not.
    pooling = {"pooling_mode_mean_tokens": False, "pooling_mode_mean_sqrt_len_tokens": True}
    _edit_json(model / "1_Pooling" / "config.json", pooling)
    assert read_pipeline(model) is None
    full = ModelEmbedder(str(model))
    assert full.load() == 384
    assert full.backend == "sentence-transformers"
    # Normalised, a mean over sqrt(len) points where the mean does: the library ran the edited pipeline.
    assert np.abs(full.embed(TEXTS[:1]) - library_vectors[:1]).max() < 1e-5


def test_a_broken_non_standard_pipeline_still_fails_with_a_clear_config_error(tmp_path: Path) -> None:
    model = _copy_model(tmp_path)
    modules = json.loads((model / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (model / "modules.json").write_text(json.dumps(modules))
    embedder = ModelEmbedder(str(model))
    with pytest.raises(ConfigError, match="AGENT_MEMORY_MODEL") as caught:
        embedder.load()
    assert str(model) in str(caught.value)


def test_a_failing_lean_load_falls_back_to_transformers_then_sentence_transformers(
    library_vectors: np.ndarray,
) -> None:
    def broken(*args: object) -> pooling.TokenEncoder:
        raise OSError("weights unreadable")

    embedder = ModelEmbedder(DEFAULT_MODEL, encoders=[("torch", broken), ("transformers", pooling.AutoEncoder)])
    embedder.load()
    assert embedder.backend == "transformers"
    embedder = ModelEmbedder(DEFAULT_MODEL, encoders=[("torch", broken), ("transformers", broken)])
    embedder.load()
    assert embedder.backend == "sentence-transformers"
    assert np.abs(embedder.embed(TEXTS) - library_vectors).max() < 1e-5


def test_the_loader_setting_forces_the_library() -> None:
    assert load_settings({}).embed_loader == "auto"
    assert load_settings({"AGENT_MEMORY_EMBED_LOADER": "sentence-transformers"}).embed_loader == "sentence-transformers"
    assert load_settings({"AGENT_MEMORY_EMBED_LOADER": "transformers"}).embed_loader == "transformers"
    with pytest.raises(ConfigError, match="AGENT_MEMORY_EMBED_LOADER"):
        load_settings({"AGENT_MEMORY_EMBED_LOADER": "onnx"})


# ------------------------------------------------------------------------------------ reading the directory


def _model_dir(tmp_path: Path, modules: list[str], pooling: dict[str, object], **extra: object) -> Path:
    types = {
        "T": "sentence_transformers.models.Transformer",
        "P": "sentence_transformers.models.Pooling",
        "N": "sentence_transformers.models.Normalize",
        "D": "sentence_transformers.models.Dense",
        "T6": "sentence_transformers.base.modules.transformer.Transformer",
        "P6": "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
    }
    paths = {"T": "", "T6": "", "P": "1_Pooling", "P6": "1_Pooling", "N": "2_Normalize", "D": "2_Dense"}
    entries = [{"idx": i, "name": str(i), "path": paths[m], "type": types[m]} for i, m in enumerate(modules)]
    (tmp_path / "modules.json").write_text(json.dumps(entries))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    bert = {"max_seq_length": 128, "do_lower_case": True, **extra.get("bert", {})}  # type: ignore[dict-item]
    (tmp_path / "sentence_bert_config.json").write_text(json.dumps(bert))
    if "options" in extra:
        (tmp_path / "config_sentence_transformers.json").write_text(json.dumps(extra["options"]))
    return tmp_path


MEAN = {"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}


def test_the_bundled_model_is_the_standard_pipeline() -> None:
    pipeline = read_pipeline(BUNDLED)
    assert pipeline is not None
    assert (pipeline.transformer_dir, pipeline.max_seq_length, pipeline.do_lower_case, pipeline.pooling) == (
        BUNDLED,
        256,
        False,
        "mean",
    )


@pytest.mark.parametrize(
    ("modules", "pooling", "expected"),
    [
        (["T", "P", "N"], MEAN, "mean"),
        (["T", "P"], MEAN, "mean"),
        (["T6", "P6"], {"embedding_dimension": 384, "pooling_mode": "cls"}, "cls"),
        (["T", "P"], {"pooling_mode_max_tokens": True}, "max"),
        (["T", "P"], {"pooling_mode": ["mean"]}, "mean"),
    ],
)
def test_standard_pipelines_are_recognised(
    tmp_path: Path, modules: list[str], pooling: dict[str, object], expected: str
) -> None:
    pipeline = read_pipeline(_model_dir(tmp_path, modules, pooling))
    assert pipeline is not None
    assert (pipeline.pooling, pipeline.max_seq_length, pipeline.do_lower_case) == (expected, 128, True)


@pytest.mark.parametrize(
    ("modules", "pooling", "extra"),
    [
        (["T", "P", "D", "N"], MEAN, {}),  # a Dense projection
        (["P", "T"], MEAN, {}),
        (["T"], MEAN, {}),
        (["T", "P"], {"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}, {}),  # two modes
        (["T", "P"], {"pooling_mode": "weightedmean"}, {}),
        (["T", "P"], {"pooling_mode_lasttoken": True}, {}),
        (["T", "P"], {}, {}),  # no mode at all
        (["T", "P"], MEAN, {"options": {"default_prompt_name": "query", "prompts": {"query": "query: "}}}),
        (["T", "P"], MEAN, {"bert": {"model_args": {"trust_remote_code": True}}}),
        (["T", "P"], MEAN, {"bert": {"max_seq_length": None}}),
    ],
)
def test_anything_else_is_left_to_the_library(
    tmp_path: Path, modules: list[str], pooling: dict[str, object], extra: dict[str, object]
) -> None:
    assert read_pipeline(_model_dir(tmp_path, modules, pooling, **extra)) is None


def test_a_directory_without_modules_json_is_left_to_the_library(tmp_path: Path) -> None:
    assert read_pipeline(tmp_path) is None
    (tmp_path / "modules.json").write_text("{not json")
    assert read_pipeline(tmp_path) is None


# ------------------------------------------------------------------------------------------------ batching


class WordCountingEmbedder(HashEmbedder):
    """A HashEmbedder that reports words as its tokens and records the slices it embeds."""

    def __init__(self) -> None:
        self.slices: list[list[str]] = []

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]

    def embed(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        self.slices.append(list(texts))
        return super().embed(texts)


@pytest.mark.anyio
async def test_a_batch_is_sliced_by_token_count_when_the_embedder_counts_tokens() -> None:
    embedder = WordCountingEmbedder()
    model = ModelHost(embedder)
    model.start()
    assert await model.wait(10)
    # Characters and words disagree: one long word versus many short ones.
    texts = [("x" * (40 - i) if i % 2 else " ".join(["w"] * (i + 1))) for i in range(40)]
    vectors = await model.embed(texts)
    assert np.array_equal(vectors, HashEmbedder().embed(texts))
    embedded = [t for part in embedder.slices for t in part]
    assert embedded == sorted(texts, key=lambda t: len(t.split()))
    assert [len(part) for part in embedder.slices] == [16, 16, 8]


@pytest.mark.anyio
async def test_long_texts_go_fewer_to_a_slice_so_a_slice_stays_within_its_token_budget() -> None:
    embedder = WordCountingEmbedder()
    model = ModelHost(embedder)
    model.start()
    assert await model.wait(10)
    texts = [" ".join(["long"] * 250) + f" {i}" for i in range(10)] + [f"short {i}" for i in range(20)]
    vectors = await model.embed(texts)
    assert np.array_equal(vectors, HashEmbedder().embed(texts))
    # 16 two-word texts; the last 4 with 4 of the 251-word texts (8 x 251 <= 2048); the other 6 long ones.
    assert [len(part) for part in embedder.slices] == [16, 8, 6]
    assert all(len(part) * max(len(t.split()) for t in part) <= SLICE_TOKENS for part in embedder.slices)


def _row(n: int, words: int) -> PendingRow:
    return PendingRow(f"m{n}", " ".join(f"w{i}" for i in range(words)), "u", "ns", "s", 0.0)


def test_an_indexing_batch_is_bounded_in_characters_read_but_always_makes_progress() -> None:
    short, long = _row(0, 5), _row(1, 400)  # one text; three windows of 160 words
    cs, cl = read_chars(short.content), read_chars(long.content)
    assert cs == len(short.content)
    assert cl > len(long.content)  # the windows overlap: their shared words are read twice
    rows = [short, long, long, short]
    assert within_budget(rows, 2 * cs + 2 * cl) == rows
    assert within_budget(rows, 2 * cs + 2 * cl - 1) == [short, long, long]
    assert within_budget(rows, cs + 2 * cl - 1) == [short, long]
    assert within_budget([long, short], 2) == [long]  # a first row over the limit still goes alone
    assert within_budget([], 2) == []


def test_the_model_load_bounds_the_kernel_caches_unless_the_user_set_them(monkeypatch: pytest.MonkeyPatch) -> None:
    # oneDNN and ideep read these when torch first runs one of their kernels, after the load: their default caches
    # of a kernel per input shape grow with texts of every length (bench/live.py's peak RSS).
    mine, unset = KERNEL_CACHE_VARIABLES
    monkeypatch.setenv(mine, "64")
    monkeypatch.delenv(unset, raising=False)
    ModelEmbedder(DEFAULT_MODEL).load()
    assert os.environ[unset] == str(KERNEL_CACHE_CAPACITY)
    assert os.environ[mine] == "64"
