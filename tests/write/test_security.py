"""Secrets are masked before storage, limits are configurable and enforced with clear errors."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest

from agent_memory.config import Settings, load_settings
from agent_memory.errors import ConfigError
from tests.conftest import call, connect

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

KEY = "sk-ant-api03-" + "Zx9" * 31 + "AA"
URL = "postgres://app:s3cr3t-P4ss@db.internal:5432/prod"


def _everything_stored(settings: Settings) -> str:
    """Return every text the store holds (memories, the keyword index, summaries, metadata) as one string."""
    if settings.database_url:
        import psycopg

        with psycopg.connect(settings.database_url) as conn:
            # The tsvector's lexemes too: a secret must not be findable by keyword either.
            rows = conn.execute("SELECT content, tags::text, metadata, search::text FROM memories").fetchall()
            rows += conn.execute("SELECT text FROM summaries").fetchall()
        return "\n".join(str(r) for r in rows)
    db = sqlite3.connect(settings.sqlite_path)
    try:
        parts = [str(r) for r in db.execute("SELECT content, tags, metadata FROM memories")]
        parts += [str(r) for r in db.execute("SELECT text FROM summaries")]
        # The FTS5 index's own tokens: a secret must not be findable by keyword either.
        parts += [str(r) for r in db.execute("SELECT term FROM memories_fts_vocab")] if _has_vocab(db) else []
        return "\n".join(parts)
    finally:
        db.close()


def _has_vocab(db: sqlite3.Connection) -> bool:
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.memories_fts_vocab USING fts5vocab(main, memories_fts, row)")
    return True


async def test_remember_masks_secrets_everywhere_and_says_so(settings: Settings) -> None:
    async with connect(settings) as client:
        stored = await call(
            client,
            "remember",
            content=f"Deploy notes: ANTHROPIC_API_KEY={KEY} and the database is {URL}",
            metadata={"env": {"token": "ghp_" + "a1B2" * 9}},
        )
        found = await call(client, "recall", query="deploy notes database")
        summary = await call(client, "summarize_history")
    assert stored["redacted"] == ["anthropic-api-key", "url-password", "github-token"]
    assert "Masked 3 secrets" in stored["note"]
    hit = found["hits"][0]["content"]
    assert "[REDACTED:anthropic-api-key]" in hit and "postgres://app:[REDACTED:url-password]@db.internal" in hit
    everything = _everything_stored(settings) + str(found) + str(summary)
    for secret in (KEY, "s3cr3t", "a1B2a1B2", KEY.lower()[10:30]):
        assert secret not in everything


async def test_scrubbing_can_be_switched_off(settings: Settings) -> None:
    async with connect(replace(settings, scrub_secrets=False)) as client:
        stored = await call(client, "remember", content=f"key {KEY}")
        found = await call(client, "load_recent")
    assert stored["redacted"] == [] and stored["note"] is None
    assert found["messages"][0]["content"] == f"key {KEY}"


async def test_plain_text_is_stored_verbatim_with_no_note(settings: Settings) -> None:
    text = "Commit 3f786850e387550fdab836ed7e6dc881de23001b fixed request 123e4567-e89b-12d3-a456-426614174000"
    async with connect(settings) as client:
        stored = await call(client, "remember", content=text)
        recent = await call(client, "load_recent")
    assert stored["redacted"] == [] and stored["note"] is None
    assert recent["messages"][0]["content"] == text


def test_limits_and_the_scrubber_come_from_the_environment() -> None:
    env = {
        "AGENT_MEMORY_MAX_CONTENT_CHARS": "100",
        "AGENT_MEMORY_MAX_TAGS": "2",
        "AGENT_MEMORY_MAX_TAG_CHARS": "5",
        "AGENT_MEMORY_MAX_METADATA_BYTES": "50",
        "AGENT_MEMORY_MAX_METADATA_DEPTH": "2",
        "AGENT_MEMORY_MAX_RECALL_LIMIT": "3",
        "AGENT_MEMORY_MAX_RECENT_LIMIT": "4",
        "AGENT_MEMORY_SUMMARY_MAX_INPUT_CHARS": "500",
        "AGENT_MEMORY_SUMMARY_MAX_MESSAGES": "6",
        "AGENT_MEMORY_SCRUB_SECRETS": "false",
    }
    settings = load_settings(env)
    assert (settings.max_content_chars, settings.max_tags, settings.max_tag_chars) == (100, 2, 5)
    assert (settings.max_metadata_bytes, settings.max_metadata_depth) == (50, 2)
    assert (settings.max_recall_limit, settings.max_recent_limit) == (3, 4)
    assert (settings.summary_max_input_chars, settings.summary_max_messages) == (500, 6)
    assert settings.scrub_secrets is False
    with pytest.raises(ConfigError, match="AGENT_MEMORY_SCRUB_SECRETS"):
        load_settings({"AGENT_MEMORY_SCRUB_SECRETS": "maybe"})
    with pytest.raises(ConfigError, match="max_tags must be a positive number"):
        load_settings({"AGENT_MEMORY_MAX_TAGS": "0"})


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("remember", {"content": "x" * 101}, "content is 101 characters; the limit is 100"),
        ("remember", {"content": "ok", "tags": ["a", "b", "c"]}, "at most 2 tags"),
        ("remember", {"content": "ok", "tags": ["toolong"]}, "at most 5 printable characters"),
        ("remember", {"content": "ok", "metadata": {"k": "v" * 60}}, "the limit is 50"),
        ("remember", {"content": "ok", "metadata": {"a": {"b": {"c": 1}}}}, "nested more than 2 levels"),
        ("recall", {"query": "x", "limit": 4}, "limit must be between 1 and 3"),
        ("recall", {"query": "x" * 101}, "query is longer than 100"),
        ("load_recent", {"limit": 5}, "limit must be between 1 and 4"),
        ("summarize_history", {"limit": 7}, "limit must be between 1 and 6"),
    ],
)
async def test_configured_limits_are_enforced_with_clear_errors(
    settings: Settings, tool: str, arguments: dict[str, object], message: str
) -> None:
    limited = replace(
        settings,
        max_content_chars=100,
        max_tags=2,
        max_tag_chars=5,
        max_metadata_bytes=50,
        max_metadata_depth=2,
        max_recall_limit=3,
        max_recent_limit=4,
        summary_max_messages=6,
    )
    async with connect(limited) as client:
        result = await client.call_tool(tool, arguments)
        still = await call(client, "load_recent", limit=1)
    assert result.is_error
    assert message in result.content[0].text  # type: ignore[union-attr]
    assert still["messages"] == []
