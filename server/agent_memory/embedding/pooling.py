"""Run a standard sentence-transformers pipeline without the library: encode, pool, normalise.

The token encoder is BERT on plain torch (bert.py) or any transformers model; pooling and normalisation follow
sentence-transformers' Pooling and Normalize modules. torch and transformers are imported only when a model loads.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from agent_memory.config import EmbedPrecision
from agent_memory.embedding.model_files import Pipeline

Vectors = np.ndarray[Any, np.dtype[np.float32]]


class TokenEncoder(Protocol):
    """A transformer that turns texts into token embeddings (the first module of a standard pipeline)."""

    dim: int

    def run(self, texts: list[str]) -> tuple[Any, Any]:
        """Return the last hidden states (batch, tokens, dim) and the attention mask (batch, tokens)."""
        ...

    def token_counts(self, texts: list[str]) -> list[int]:
        """Return how many tokens each text becomes (truncated at the model's limit)."""
        ...


def bert_encoder(pipeline: Pipeline, precision: EmbedPrecision = "auto") -> TokenEncoder:
    """Return the plain-torch BERT encoder of a pipeline (bert.Unsupported, a ValueError, if it is no plain BERT)."""
    import torch

    from agent_memory.embedding.bert import BertEncoder, native_bfloat16  # its Unsupported is a ValueError

    bf16 = precision == "bfloat16" or (precision == "auto" and native_bfloat16())
    dtype = torch.bfloat16 if bf16 else torch.float32
    return BertEncoder(pipeline.transformer_dir, pipeline.max_seq_length, dtype)


class AutoEncoder:
    """Any transformers model as a TokenEncoder (imports transformers' model classes: ~120 MB more than bert)."""

    def __init__(self, pipeline: Pipeline) -> None:
        import transformers
        from transformers import AutoModel, AutoTokenizer

        # The "Loading weights" bar of transformers 5 would land in the client's log (stderr).
        transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        self._max_length = pipeline.max_seq_length
        self._tokenizer = AutoTokenizer.from_pretrained(pipeline.transformer_dir)
        self._model = AutoModel.from_pretrained(pipeline.transformer_dir).eval()
        self.dim: int = self._model.config.hidden_size

    def run(self, texts: list[str]) -> tuple[Any, Any]:
        """Return the last hidden states and the attention mask."""
        features = self._tokenizer(
            texts, padding=True, truncation="longest_first", max_length=self._max_length, return_tensors="pt"
        )
        return self._model(**features).last_hidden_state, features["attention_mask"]

    def token_counts(self, texts: list[str]) -> list[int]:
        """Return how many tokens each text becomes (truncated at the model's limit)."""
        ids = self._tokenizer(texts, truncation="longest_first", max_length=self._max_length)["input_ids"]
        return [len(i) for i in ids]


class Pooled:
    """A standard sentence-transformers pipeline without the library: encode, pool, normalise."""

    def __init__(self, encoder: TokenEncoder, pipeline: Pipeline, batch_size: int) -> None:
        self._encoder = encoder
        self._pipeline = pipeline
        self._batch_size = batch_size
        self.dim = encoder.dim
        self.token_counts = encoder.token_counts
        self.precision = str(getattr(encoder, "dtype", "float32")).removeprefix("torch.")
        # A text's mean pooling can be summed from its parts' passes; cls and max pooling cannot.
        self.sums_tokens = pipeline.pooling == "mean"

    def encode(self, texts: list[str]) -> Vectors:
        """Embed texts, a batch at a time, as L2-normalised float32 vectors."""
        import torch

        if self._pipeline.do_lower_case:
            texts = [t.lower() for t in texts]
        parts = []
        with torch.inference_mode():
            for i in range(0, len(texts), self._batch_size):
                tokens, attention_mask = self._encoder.run(texts[i : i + self._batch_size])
                pooled = _pool(torch, tokens, attention_mask, self._pipeline.pooling)
                parts.append(torch.nn.functional.normalize(pooled, p=2, dim=1))
        if not parts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(torch.cat(parts).numpy(), dtype=np.float32)

    def token_sums(self, texts: list[str], max_tokens: int) -> tuple[Vectors, Vectors]:
        """Return each text's last hidden states summed over its tokens, and its token count (unnormalised).

        Mean pooling divides the first by the second; kept apart, the parts of a text add up to a mean over all
        their tokens (ModelHost.embed_spans). Texts of similar length go together, at most max_tokens padded
        tokens (or one text) at a time.
        """
        import torch

        assert self.sums_tokens, "token_sums needs mean pooling"
        if self._pipeline.do_lower_case:
            texts = [t.lower() for t in texts]
        counts = self._encoder.token_counts(texts)
        sums, sizes = torch.zeros((len(texts), self.dim)), torch.zeros((len(texts), 1))
        # Sentences are short: a batch is bounded by its padded tokens alone, so small matrix products do not each
        # pay the per-call cost that a 16-text batch of them would.
        with torch.inference_mode():
            for rows in slices(sorted(range(len(texts)), key=counts.__getitem__), counts, max_tokens, max_tokens):
                tokens, attention_mask = self._encoder.run([texts[i] for i in rows])
                mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
                sums[rows] = (tokens * mask).sum(dim=1).float()
                sizes[rows] = mask.sum(dim=1).float()
        return np.asarray(sums.numpy(), dtype=np.float32), np.asarray(sizes.numpy(), dtype=np.float32)


def slices(order: list[int], tokens: list[int] | None, size: int, max_tokens: int) -> list[list[int]]:
    """Cut texts sorted by cost into slices of at most size texts and, if counted, max_tokens padded tokens."""
    cut: list[list[int]] = []
    for i in order:
        # Sorted ascending, so text i is the longest of its slice: with it, the slice pads to (n + 1) x its tokens.
        n = len(cut[-1]) if cut else size
        if n < size and (tokens is None or (n + 1) * tokens[i] <= max_tokens):
            cut[-1].append(i)
        else:
            cut.append([i])
    return cut


def _pool(torch: Any, tokens: Any, attention_mask: Any, mode: str) -> Any:
    """Pool token embeddings into one vector per text the way sentence-transformers' Pooling does."""
    mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
    if mode == "cls":
        return tokens[:, 0]
    if mode == "max":
        return tokens.masked_fill(mask == 0, float("-inf")).max(dim=1).values
    return (tokens * mask).sum(dim=1) / torch.clamp(mask.sum(dim=1), min=1e-9)
