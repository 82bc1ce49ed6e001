"""BERT's encoder in plain torch, for the standard sentence-transformers models built on it (MiniLM among them).

Running a model through transformers imports `transformers.modeling_utils`, which pulls in scipy, sympy and
torch.distributed: ~120 MB of resident memory, for a server that runs one small encoder forward. BERT is
simple enough to run directly: the tokenizer is the model's own tokenizer.json (the `tokenizers` library
transformers uses too), the weights come from model.safetensors, and the forward below is the arithmetic of
transformers' BertModel in eval mode (tests compare the vectors with sentence-transformers' own).
Anything this does not recognise raises `Unsupported`, and the embedder uses transformers instead.

In bfloat16 the matrix products run on the CPU's bf16 instructions (avx512_bf16, AMX): ~3x the texts per
second of float32 here, and the weights take half the memory. The residual stream, layer norms and pooling
stay float32, so a vector differs from the float32 one by a cosine of ~1e-5: rankings do not change, and an
index built either way serves queries embedded the other way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from tokenizers import Tokenizer

# The config values whose forward this module implements; any other value means another architecture variant.
_EXPECTED = {"model_type": "bert", "hidden_act": "gelu", "position_embedding_type": "absolute"}


class Unsupported(ValueError):
    """The model is not the plain BERT this module runs, or its files do not load."""


def native_bfloat16() -> bool:
    """Return whether this CPU multiplies bfloat16 natively (emulated, bf16 is slower than float32)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, so looked up with a default
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


class BertEncoder:
    """Tokenizes texts and returns BERT's last hidden states, as transformers' BertModel would."""

    def __init__(self, directory: Path, max_seq_length: int, dtype: torch.dtype = torch.float32) -> None:
        config = _config(directory)
        for key, value in _EXPECTED.items():
            if config.get(key, "absolute" if key == "position_embedding_type" else None) != value:
                raise Unsupported(f"{key} is {config.get(key)!r}, not {value!r}")
        self.dim = int(config["hidden_size"])
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        if self.dim % self._heads:
            raise Unsupported("hidden_size is not a multiple of num_attention_heads")
        if not (directory / "tokenizer.json").exists() or not (directory / "model.safetensors").exists():
            raise Unsupported("tokenizer.json or model.safetensors is missing")
        try:
            self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        # tokenizers raises a bare Exception for a file it cannot parse; nothing else happens in this call.
        except Exception as exc:
            raise Unsupported(f"tokenizer.json does not load ({exc})") from None
        limit = min(max_seq_length, int(config["max_position_embeddings"]))
        self._tokenizer.enable_truncation(max_length=limit, strategy="longest_first")
        self._counter = Tokenizer.from_str(self._tokenizer.to_str())  # the same, unpadded: counts tokens
        self._counter.no_padding()
        padding = self._tokenizer.padding or {}
        pad_token = str(padding.get("pad_token", "[PAD]"))
        pad_id = self._tokenizer.token_to_id(pad_token)
        # Lengths padded to a multiple of 8: each new batch shape makes oneDNN build and keep kernels, and a
        # burst of mixed lengths makes dozens (~25 MB less resident after a burst, ~30 MB lower peak, same speed).
        self._tokenizer.enable_padding(
            pad_id=0 if pad_id is None else pad_id, pad_token=pad_token, pad_to_multiple_of=8
        )
        self.dtype = dtype
        self._w = _load_weights(directory / "model.safetensors", dtype)
        self._layers = int(config["num_hidden_layers"])
        missing = [k for k in self._names() if k not in self._w]
        if missing:
            raise Unsupported(f"the weights lack {missing[0]}")

    def weight_dtypes(self) -> dict[str, Any]:
        """Return each weight's torch dtype (the precision the encoder computes in)."""
        return {name: tensor.dtype for name, tensor in self._w.items()}

    def _names(self) -> list[str]:
        names = [f"embeddings.{n}.weight" for n in ("word_embeddings", "position_embeddings", "token_type_embeddings")]
        names += ["embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]
        for i in range(self._layers):
            for part in (
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
                "attention.output.LayerNorm",
                "intermediate.dense",
                "output.dense",
                "output.LayerNorm",
            ):
                names += [f"encoder.layer.{i}.{part}.weight", f"encoder.layer.{i}.{part}.bias"]
        return names

    def run(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the last hidden states and the attention mask of texts."""
        ids, types, mask = self.tokenize(texts)
        return self.forward(ids, types, mask), mask

    def token_counts(self, texts: list[str]) -> list[int]:
        """Return how many tokens each text becomes (truncated at the model's limit)."""
        return [len(e.ids) for e in self._counter.encode_batch(texts)]

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return input ids, token type ids and the attention mask, padded to the longest text."""
        encodings = self._tokenizer.encode_batch(texts)
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
        types = torch.tensor([e.type_ids for e in encodings], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
        return ids, types, mask

    def forward(self, ids: torch.Tensor, types: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Return the last hidden states, shape (batch, tokens, dim)."""
        w, eps, dim = self._w, self._eps, self.dim
        positions = torch.arange(ids.shape[1])
        x = (
            w["embeddings.word_embeddings.weight"][ids].float()
            + w["embeddings.token_type_embeddings.weight"][types].float()
            + w["embeddings.position_embeddings.weight"][positions].float()
        )
        x = F.layer_norm(x, (dim,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        attend = mask.bool()[:, None, None, :]  # padding is never attended to
        batch, length = ids.shape
        for i in range(self._layers):
            p = f"encoder.layer.{i}."
            h = x.to(self.dtype)  # the matrix products run in the weights' dtype; the residual stream stays float32

            def heads(name: str, h: torch.Tensor = h, p: str = p) -> torch.Tensor:
                out = F.linear(h, w[f"{p}attention.self.{name}.weight"], w[f"{p}attention.self.{name}.bias"])
                return out.view(batch, length, self._heads, dim // self._heads).transpose(1, 2)

            context = F.scaled_dot_product_attention(heads("query"), heads("key"), heads("value"), attn_mask=attend)
            context = context.transpose(1, 2).reshape(batch, length, dim)
            x = _dense_norm(w, f"{p}attention.output", context, x, eps)
            h = x.to(self.dtype)
            inner = F.gelu(F.linear(h, w[f"{p}intermediate.dense.weight"], w[f"{p}intermediate.dense.bias"]))
            x = _dense_norm(w, f"{p}output", inner, x, eps)
        return x


def _dense_norm(w: dict[str, torch.Tensor], prefix: str, h: torch.Tensor, residual: torch.Tensor, eps: float) -> Any:
    """Project, add the residual, layer-normalise: the output block of BERT's attention and feed-forward."""
    out = F.linear(h, w[f"{prefix}.dense.weight"], w[f"{prefix}.dense.bias"]).float() + residual
    return F.layer_norm(out, (out.shape[-1],), w[f"{prefix}.LayerNorm.weight"], w[f"{prefix}.LayerNorm.bias"], eps)


def _load_weights(path: Path, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Read the weights one tensor at a time, as dtype except the layer norms (float32 keeps them exact)."""
    weights = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                # One tensor at a time: the float32 model never sits whole next to the converted one. Each
                # tensor is copied out of the file's memory map, which a single view left in it would keep
                # mapped (and resident) whole.
                tensor = f.get_tensor(key)
                if tensor.is_floating_point() and "LayerNorm" not in key:
                    weights[key.removeprefix("bert.")] = tensor.to(dtype, copy=True)
                else:
                    weights[key.removeprefix("bert.")] = tensor.clone()
    except SafetensorError as exc:
        raise Unsupported(f"model.safetensors does not load ({exc})") from None
    return weights


def _config(directory: Path) -> dict[str, Any]:
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Unsupported(f"config.json is unreadable ({exc})") from None
    if not isinstance(config, dict):
        raise Unsupported("config.json is not an object")
    return config
