"""Recognise the standard sentence-transformers pipeline in a local model directory.

Most sentence-transformers models, the bundled MiniLM among them, are a Hugging Face transformer followed by a
pooling step (and a normalisation we always apply anyway). Such a model runs on transformers and torch alone,
without importing sentence-transformers itself, which costs ~170 MB of resident memory and seconds of start-up
(it pulls in scikit-learn, scipy and sympy). This module reads the directory's JSON files and says whether the
model is exactly that pipeline; anything else (other modules, prompts, pooling modes) is left to the full library.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

Pooling = Literal["mean", "cls", "max"]

# The class names modules.json uses: the 2.x-5.x spelling and the module paths of sentence-transformers 6.
_ST = "sentence_transformers"
_TRANSFORMER = {f"{_ST}.models.Transformer", f"{_ST}.base.modules.transformer.Transformer"}
_POOLING = {f"{_ST}.models.Pooling", f"{_ST}.sentence_transformer.modules.pooling.Pooling"}
_NORMALIZE = {f"{_ST}.models.Normalize", f"{_ST}.base.modules.normalize.Normalize"}
_LEGACY_POOLING_KEYS: dict[str, str] = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_TRANSFORMER_KEYS = {"max_seq_length", "do_lower_case"}


@dataclass(frozen=True)
class Pipeline:
    """What it takes to run a standard model with transformers: where its weights are, how to cut and pool."""

    transformer_dir: Path
    max_seq_length: int
    do_lower_case: bool
    pooling: Pooling


class NotStandard(Exception):
    """The directory is not the plain Transformer → Pooling (→ Normalize) pipeline; the reason says why."""


def read_pipeline(directory: Path) -> Pipeline | None:
    """Return the pipeline of a standard sentence-transformers directory, or None (with the reason logged)."""
    try:
        return _read(directory)
    except NotStandard as exc:
        logger.info("model %s needs the sentence-transformers library: %s", directory, exc)
        return None


def _read(directory: Path) -> Pipeline:
    modules = _json(directory / "modules.json")
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise NotStandard("modules.json is not a list of modules")
    types = [m.get("type") for m in modules]
    if not (
        len(types) in (2, 3)
        and types[0] in _TRANSFORMER
        and types[1] in _POOLING
        and (len(types) == 2 or types[2] in _NORMALIZE)
    ):
        raise NotStandard(f"modules {types} are not Transformer, Pooling (, Normalize)")
    transformer_dir = directory / str(modules[0].get("path", ""))
    settings = _json(transformer_dir / "sentence_bert_config.json")
    if not isinstance(settings, dict) or set(settings) - _TRANSFORMER_KEYS:
        raise NotStandard(f"sentence_bert_config.json has settings beyond {sorted(_TRANSFORMER_KEYS)}")
    max_seq_length = settings.get("max_seq_length")
    if not isinstance(max_seq_length, int) or max_seq_length < 1:
        raise NotStandard("sentence_bert_config.json has no max_seq_length")
    options = _json(directory / "config_sentence_transformers.json", required=False) or {}
    if not isinstance(options, dict) or options.get("default_prompt_name"):
        raise NotStandard("the model prepends a default prompt")
    return Pipeline(
        transformer_dir=transformer_dir,
        max_seq_length=max_seq_length,
        do_lower_case=bool(settings.get("do_lower_case", False)),
        pooling=_pooling(_json(directory / str(modules[1].get("path", "")) / "config.json")),
    )


def _pooling(config: Any) -> Pooling:
    """Return the one pooling mode of a Pooling config, if it is one we run (mean, cls, max)."""
    if not isinstance(config, dict):
        raise NotStandard("the pooling config is not an object")
    mode = config.get("pooling_mode")
    if mode is None:
        active = [name for key, name in _LEGACY_POOLING_KEYS.items() if config.get(key)]
        mode = active[0] if len(active) == 1 else active
    if isinstance(mode, list) and len(mode) == 1:
        mode = mode[0]
    if mode == "mean":
        return "mean"
    if mode == "cls":
        return "cls"
    if mode == "max":
        return "max"
    raise NotStandard(f"pooling mode {mode!r} is not mean, cls or max")


def _json(path: Path, *, required: bool = True) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if required:
            raise NotStandard(f"{path.name} is missing") from None
        return None
    except (OSError, ValueError) as exc:
        raise NotStandard(f"{path.name} is unreadable ({exc})") from None
