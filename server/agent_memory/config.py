"""One frozen Settings object: every setting is read here and nowhere else."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from agent_memory.errors import ConfigError

SummarizerChoice = Literal["auto", "anthropic", "sampling", "extractive"]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
APP_NAME = "agent-memory"
_SCOPE_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")


def default_data_dir() -> Path:
    """Return the platform's per-user data directory for agent-memory."""
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with defaults a new user can live with."""

    data_dir: Path = field(default_factory=default_data_dir)
    user: str = "default"
    namespace: str = "default"
    model: str = DEFAULT_MODEL
    summarizer: SummarizerChoice = "auto"
    anthropic_api_key: str | None = field(default=None, repr=False)
    anthropic_base_url: str | None = None
    summary_model: str = "claude-haiku-4-5"
    max_content_chars: int = 20_000
    max_tags: int = 20
    max_tag_chars: int = 64
    max_metadata_bytes: int = 16_384
    max_recall_limit: int = 50
    max_recent_limit: int = 200
    summary_max_input_chars: int = 24_000
    summary_max_messages: int = 2_000
    model_wait_seconds: float = 0.0
    log_level: str = "WARNING"

    def __post_init__(self) -> None:
        for name in ("user", "namespace"):
            value = getattr(self, name)
            if not _SCOPE_RE.match(value) or value != value.strip():
                raise ConfigError(
                    f"{name} {value!r} is not valid: use 1-64 printable characters without "
                    f"surrounding spaces (AGENT_MEMORY_{name.upper()})."
                )
        if self.summarizer not in ("auto", "anthropic", "sampling", "extractive"):
            raise ConfigError(
                f"AGENT_MEMORY_SUMMARIZER must be auto, anthropic, sampling or extractive, not {self.summarizer!r}."
            )
        if self.model_wait_seconds < 0:
            raise ConfigError("AGENT_MEMORY_MODEL_WAIT_SECONDS must be 0 or more.")
        for f in fields(self):
            if f.name.startswith(("max_", "summary_max_")) and getattr(self, f.name) < 1:
                raise ConfigError(f"{f.name} must be a positive number.")

    @property
    def sqlite_path(self) -> Path:
        """Return the SQLite file that holds the source of truth."""
        return self.data_dir / "memory.sqlite3"

    @property
    def vector_dir(self) -> Path:
        """Return the LanceDB directory that holds the derived index."""
        return self.data_dir / "vectors.lance"

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with the given non-None fields replaced."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


_ENV: dict[str, tuple[str, type]] = {
    "AGENT_MEMORY_DATA_DIR": ("data_dir", Path),
    "AGENT_MEMORY_USER": ("user", str),
    "AGENT_MEMORY_NAMESPACE": ("namespace", str),
    "AGENT_MEMORY_MODEL": ("model", str),
    "AGENT_MEMORY_SUMMARIZER": ("summarizer", str),
    "AGENT_MEMORY_SUMMARY_MODEL": ("summary_model", str),
    "ANTHROPIC_API_KEY": ("anthropic_api_key", str),
    "ANTHROPIC_BASE_URL": ("anthropic_base_url", str),
    "AGENT_MEMORY_MAX_CONTENT_CHARS": ("max_content_chars", int),
    "AGENT_MEMORY_MAX_TAGS": ("max_tags", int),
    "AGENT_MEMORY_MAX_METADATA_BYTES": ("max_metadata_bytes", int),
    "AGENT_MEMORY_MAX_RECALL_LIMIT": ("max_recall_limit", int),
    "AGENT_MEMORY_SUMMARY_MAX_INPUT_CHARS": ("summary_max_input_chars", int),
    "AGENT_MEMORY_MODEL_WAIT_SECONDS": ("model_wait_seconds", float),
    "AGENT_MEMORY_LOG_LEVEL": ("log_level", str),
}


def env_names() -> dict[str, str]:
    """Return environment variable → setting name, for documentation and --help."""
    return {env: name for env, (name, _) in _ENV.items()}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from the environment, then explicit overrides (CLI flags) on top."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for env, (name, kind) in _ENV.items():
        raw = environ.get(env)
        if raw is None or raw == "":
            continue
        try:
            values[name] = kind(raw).expanduser() if kind is Path else kind(raw)  # type: ignore[operator]
        except ValueError:
            raise ConfigError(f"{env}={raw!r} is not a valid {kind.__name__}.") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "data_dir" in values:
        values["data_dir"] = Path(values["data_dir"]).expanduser()
    return Settings(**values)
