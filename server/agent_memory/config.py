"""One frozen Settings object: every setting is read here and nowhere else."""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args

from agent_memory.errors import ConfigError

SummarizerChoice = Literal["auto", "anthropic", "sampling", "extractive"]
EmbedLoader = Literal["auto", "transformers", "sentence-transformers"]
EmbedPrecision = Literal["auto", "float32", "bfloat16"]
# Which candidates recall fuses: both (the product), or one alone (to measure each against the fusion).
RecallMode = Literal["hybrid", "keyword", "vector"]
# Where the default namespace comes from: the workspace (MCP roots, a project working directory) or config only.
NamespaceFrom = Literal["roots", "config"]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
APP_NAME = "agent-memory"
_SCOPE_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
# RFC 6750 b64token: what an HTTP client can send after "Bearer " (no spaces, commas or colons).
_TOKEN_RE = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
MIN_TOKEN_CHARS = 16


def _check_choice(variable: str, value: str, choices: Any) -> None:
    """Raise ConfigError unless value is one of the Literal type's choices (the type is the one list of them)."""
    allowed = get_args(choices)
    if value not in allowed:
        listed = ", ".join(allowed[:-1]) + f" or {allowed[-1]}"
        raise ConfigError(f"{variable} must be {listed}, not {value!r}.")


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
    namespace_from: NamespaceFrom = "roots"
    model: str = DEFAULT_MODEL
    # How a standard local model loads: auto (plain torch for BERT, else transformers), transformers, or always
    # the sentence-transformers library (README, configuration).
    embed_loader: EmbedLoader = "auto"
    # The plain-torch BERT's matrix products: auto is bfloat16 where the CPU has bf16 instructions (see bert.py).
    embed_precision: EmbedPrecision = "auto"
    summarizer: SummarizerChoice = "auto"
    anthropic_api_key: str | None = field(default=None, repr=False)
    anthropic_base_url: str | None = None
    summary_model: str = "claude-haiku-4-5"
    max_content_chars: int = 20_000
    max_tags: int = 20
    max_tag_chars: int = 64
    max_metadata_bytes: int = 16_384
    max_metadata_depth: int = 8
    max_recall_limit: int = 50
    max_recent_limit: int = 200
    summary_max_input_chars: int = 24_000
    summary_max_messages: int = 2_000
    model_wait_seconds: float = 0.0
    index_poll_seconds: float = 2.0
    # Vector rows searched exactly in memory (~0.9 KB each; 0: always search LanceDB): see index/exact.py.
    exact_search_rows: int = 50_000
    recall_mode: RecallMode = "hybrid"
    # Query embeddings kept for repeated queries (0: none; benchmarks measure fresh queries).
    query_cache_size: int = 256
    scrub_secrets: bool = True
    log_level: str = "WARNING"
    # HTTP transport: bearer token -> user; the token, never a tool argument, decides whose memories.
    http_tokens: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    http_host: str = "127.0.0.1"
    http_port: int = 8765
    http_allow_unauthenticated: bool = False
    http_allowed_hosts: tuple[str, ...] = ()
    # OAuth sign-in over HTTP (on whenever users exist); the issuer is the public origin behind a proxy.
    oauth: bool = True
    oauth_issuer_url: str | None = None
    # The vector index at an object-store URI (s3://bucket/prefix) instead of the data dir.
    vector_uri: str | None = None
    vector_storage_options: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # PostgreSQL as the source of truth (postgresql://...), shared by many servers; None: SQLite in the data dir.
    database_url: str | None = field(default=None, repr=False)
    # Most memory (MB) one HNSW build may ask the Postgres server for (maintenance_work_mem): see docs/deploy.md.
    pg_build_memory_mb: int = 1024

    def __post_init__(self) -> None:
        for name in ("user", "namespace"):
            _check_scope(name, getattr(self, name))
        _check_choice("AGENT_MEMORY_SUMMARIZER", self.summarizer, SummarizerChoice)
        _check_choice("AGENT_MEMORY_EMBED_LOADER", self.embed_loader, EmbedLoader)
        _check_choice("AGENT_MEMORY_EMBED_PRECISION", self.embed_precision, EmbedPrecision)
        _check_choice("AGENT_MEMORY_RECALL_MODE", self.recall_mode, RecallMode)
        _check_choice("AGENT_MEMORY_NAMESPACE_FROM", self.namespace_from, NamespaceFrom)
        if self.query_cache_size < 0:
            raise ConfigError("AGENT_MEMORY_QUERY_CACHE_SIZE must be 0 (off) or more.")
        if self.model_wait_seconds < 0:
            raise ConfigError("AGENT_MEMORY_MODEL_WAIT_SECONDS must be 0 or more.")
        if self.exact_search_rows < 0:
            raise ConfigError("AGENT_MEMORY_EXACT_SEARCH_ROWS must be 0 (off) or more.")
        if self.pg_build_memory_mb < 64:
            raise ConfigError("AGENT_MEMORY_PG_BUILD_MEMORY_MB must be 64 or more (megabytes).")
        if not self.index_poll_seconds > 0:
            raise ConfigError("AGENT_MEMORY_INDEX_POLL_SECONDS must be more than 0.")
        for f in fields(self):
            if f.name.startswith(("max_", "summary_max_")) and getattr(self, f.name) < 1:
                raise ConfigError(f"{f.name} must be a positive number.")
        if not 0 <= self.http_port <= 65535:
            raise ConfigError("AGENT_MEMORY_HTTP_PORT must be between 0 and 65535.")
        for token, user in self.http_tokens:
            if len(token) < MIN_TOKEN_CHARS or not _TOKEN_RE.match(token):
                raise ConfigError(
                    f"an HTTP token for user {user!r} is too short or has characters a Bearer header cannot carry: "
                    f"use {MIN_TOKEN_CHARS}+ characters, "
                    "e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'."
                )
            _check_scope("user", user)
        if len({token for token, _ in self.http_tokens}) != len(self.http_tokens):
            raise ConfigError("the same HTTP token is listed twice: give each user a token of their own.")
        if self.oauth_issuer_url is not None:
            _check_issuer(self.oauth_issuer_url)
        if self.database_url is not None and not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError(
                "AGENT_MEMORY_DATABASE_URL must be a PostgreSQL URL (postgresql://user:password@host:5432/dbname),"
                " or unset to keep memories in SQLite in the data dir."
            )
        if self.vector_uri is not None and "://" not in self.vector_uri:
            raise ConfigError(
                f"AGENT_MEMORY_VECTOR_URI {self.vector_uri!r} is not a URI: use e.g. s3://bucket/prefix, "
                "or leave it unset to keep the index in the data dir."
            )

    @property
    def sqlite_path(self) -> Path:
        """Return the SQLite file that holds the source of truth."""
        return self.data_dir / "memory.sqlite3"

    @property
    def vector_dir(self) -> Path:
        """Return the LanceDB directory that holds the derived index."""
        return self.data_dir / "vectors.lance"

    @property
    def vector_location(self) -> str:
        """Return where the vector index lives: the object-store URI if set, else the local directory."""
        return self.vector_uri or str(self.vector_dir)

    def is_loopback(self, host: str | None = None) -> bool:
        """Return True when the HTTP host only accepts connections from this machine."""
        host = self.http_host if host is None else host
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host.strip("[]")).is_loopback
        except ValueError:
            return False

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with the given non-None fields replaced."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


_ENV: dict[str, tuple[str, Any]] = {
    "AGENT_MEMORY_DATA_DIR": ("data_dir", Path),
    "AGENT_MEMORY_USER": ("user", str),
    "AGENT_MEMORY_NAMESPACE": ("namespace", str),
    "AGENT_MEMORY_NAMESPACE_FROM": ("namespace_from", str),
    "AGENT_MEMORY_MODEL": ("model", str),
    "AGENT_MEMORY_EMBED_LOADER": ("embed_loader", str),
    "AGENT_MEMORY_EMBED_PRECISION": ("embed_precision", str),
    "AGENT_MEMORY_SUMMARIZER": ("summarizer", str),
    "AGENT_MEMORY_SUMMARY_MODEL": ("summary_model", str),
    "ANTHROPIC_API_KEY": ("anthropic_api_key", str),
    "ANTHROPIC_BASE_URL": ("anthropic_base_url", str),
    "AGENT_MEMORY_MAX_CONTENT_CHARS": ("max_content_chars", int),
    "AGENT_MEMORY_MAX_TAGS": ("max_tags", int),
    "AGENT_MEMORY_MAX_TAG_CHARS": ("max_tag_chars", int),
    "AGENT_MEMORY_MAX_METADATA_BYTES": ("max_metadata_bytes", int),
    "AGENT_MEMORY_MAX_METADATA_DEPTH": ("max_metadata_depth", int),
    "AGENT_MEMORY_MAX_RECALL_LIMIT": ("max_recall_limit", int),
    "AGENT_MEMORY_MAX_RECENT_LIMIT": ("max_recent_limit", int),
    "AGENT_MEMORY_SUMMARY_MAX_INPUT_CHARS": ("summary_max_input_chars", int),
    "AGENT_MEMORY_SUMMARY_MAX_MESSAGES": ("summary_max_messages", int),
    "AGENT_MEMORY_SCRUB_SECRETS": ("scrub_secrets", bool),
    "AGENT_MEMORY_MODEL_WAIT_SECONDS": ("model_wait_seconds", float),
    "AGENT_MEMORY_INDEX_POLL_SECONDS": ("index_poll_seconds", float),
    "AGENT_MEMORY_EXACT_SEARCH_ROWS": ("exact_search_rows", int),
    "AGENT_MEMORY_PG_BUILD_MEMORY_MB": ("pg_build_memory_mb", int),
    "AGENT_MEMORY_RECALL_MODE": ("recall_mode", str),
    "AGENT_MEMORY_QUERY_CACHE_SIZE": ("query_cache_size", int),
    "AGENT_MEMORY_LOG_LEVEL": ("log_level", str),
    "AGENT_MEMORY_HTTP_HOST": ("http_host", str),
    "AGENT_MEMORY_HTTP_PORT": ("http_port", int),
    "AGENT_MEMORY_HTTP_ALLOW_UNAUTHENTICATED": ("http_allow_unauthenticated", bool),
    "AGENT_MEMORY_HTTP_ALLOWED_HOSTS": ("http_allowed_hosts", tuple),
    "AGENT_MEMORY_HTTP_TOKENS": ("http_tokens", str),
    "AGENT_MEMORY_HTTP_TOKENS_FILE": ("http_tokens", Path),
    "AGENT_MEMORY_OAUTH": ("oauth", bool),
    "AGENT_MEMORY_OAUTH_ISSUER_URL": ("oauth_issuer_url", str),
    "AGENT_MEMORY_VECTOR_URI": ("vector_uri", str),
    "AGENT_MEMORY_VECTOR_STORAGE_OPTIONS": ("vector_storage_options", json),
    "AGENT_MEMORY_DATABASE_URL": ("database_url", str),
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
        if name == "http_tokens":
            values[name] = values.get(name, ()) + _tokens(env, raw)
            continue
        try:
            values[name] = _parse(kind, raw)
        except ValueError:
            raise ConfigError(f"{env}={raw!r} is not a valid {getattr(kind, '__name__', 'value')}.") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    # A bare token (no ":user") belongs to the configured user, flag or variable.
    values["http_tokens"] = tuple((t, u or values.get("user", "default")) for t, u in values.get("http_tokens", ()))
    if "data_dir" in values:
        values["data_dir"] = Path(values["data_dir"]).expanduser()
    return Settings(**values)


def _check_scope(name: str, value: str) -> None:
    if not _SCOPE_RE.match(value) or value != value.strip():
        raise ConfigError(
            f"{name} {value!r} is not valid: use 1-64 printable characters without "
            f"surrounding spaces (AGENT_MEMORY_{name.upper()})."
        )


def _check_issuer(url: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if (
        parts.scheme not in ("https", "http")
        or (parts.scheme == "http" and not loopback)
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(
            f"AGENT_MEMORY_OAUTH_ISSUER_URL {url!r} must be the public origin clients reach, like "
            "https://memory.example.com (https, no path); plain http only on localhost."
        )


def _parse(kind: Any, raw: str) -> Any:
    if kind is Path:
        return Path(raw).expanduser()
    if kind is bool:
        if raw.lower() not in ("1", "true", "yes", "0", "false", "no"):
            raise ValueError(raw)
        return raw.lower() in ("1", "true", "yes")
    if kind is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind is json:
        options = json.loads(raw)
        if not isinstance(options, dict):
            raise ValueError(raw)
        return tuple((str(k), str(v)) for k, v in options.items())
    return kind(raw)


def _tokens(env: str, raw: str) -> tuple[tuple[str, str], ...]:
    """Parse `token:user` pairs (comma-separated in the variable, one per line in the file)."""
    if env.endswith("_FILE"):
        try:
            entries = Path(raw).expanduser().read_text().splitlines()
        except OSError as exc:
            raise ConfigError(f"{env}: cannot read the tokens file: {exc}") from None
    else:
        entries = raw.split(",")
    pairs = []
    for entry in entries:
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        # A token never contains ':' (RFC 6750), so the first ':' separates it from the user.
        token, _, user = entry.partition(":")
        pairs.append((token.strip(), user.strip()))
    return tuple(pairs)
