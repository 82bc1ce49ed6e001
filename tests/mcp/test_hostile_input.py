"""Property tests: every tool, driven through the MCP client with random and nasty arguments.

Every call must come back as a result or a clear tool error (never a crash, never a protocol failure),
the server must keep serving, and nothing of another user is ever returned, changed or deleted.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.client import Client
from mcp_types import TextContent

from agent_memory.config import Settings
from agent_memory.service import MemoryService
from tests.conftest import HashEmbedder, connect
from tests.postgres import BACKENDS

pytestmark = [
    pytest.mark.anyio,
    # The server under test runs beside Hypothesis in this process, and psycopg_pool draws from the global `random`
    # (jitter of a new connection's lifetime): Hypothesis sees the global state move while it generates an example
    # and warns about a strategy using `random`, which none here does.
    pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies"),
]

OTHER_MARK = "zebracorn-other-user"
BIG = "x" * 10_000_000  # 10 MB
WHERE_FRAGMENTS = [
    "'; DROP TABLE memories; --",
    '" OR 1=1 --',
    "default' OR user != 'default",
    "user = 'other' OR 1=1",
    "id IN (SELECT id FROM memories)",
    "namespace = 'default') OR (true",
    "*",
    "NEAR(zebracorn other)",
    "zebracorn OR user",
    '"unterminated',
    "content:zebracorn",
    "a AND OR NOT b",
    "^zebracorn",
    "%' --",
    "\\x00",
]
NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x01\x02\x1b[31mred\x7f",
    "\t\n\r",
    "\u202etxet desrever",
    "\ufeffbom",
    "😀" * 1000,
    "e\u0301" * 50,
    "\ud800 lone surrogate",
    "ß" * 30_000,
    BIG,
    "x" * 129,
    *WHERE_FRAGMENTS,
]
DATES = [
    "2024-05-01",
    "2024-13-01",
    "2024-02-30",
    "2024-05-01T25:00",
    "9999-12-31",
    "9999-12-31T23:59:59-12:00",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01",
    "yesterday",
    "2024-05-01T13:30:00Z",
    "1e309",
]

text = st.one_of(st.text(max_size=200), st.sampled_from(NASTY))
wrong = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.lists(st.integers(), max_size=3), st.just({})
)
anything = st.one_of(text, wrong)
number = st.one_of(
    st.integers(min_value=-5, max_value=300), st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from([0, -1])
)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text)
# Nesting up to 200: deeper than any limit, and the MCP client itself refuses to serialise much past 255.
metadata = st.one_of(
    st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3)),
    st.integers(min_value=1, max_value=200).map(lambda depth: _nested(depth)),
    st.just({"blob": BIG}),
    wrong,
)
dates = st.one_of(st.sampled_from(DATES), text, wrong)
tags = st.one_of(st.lists(text, max_size=25), wrong, text)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"k": value}
    return value


def _args(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Any subset of these arguments, plus sometimes an argument the tool does not have."""
    extra = st.dictionaries(st.sampled_from(["user", "where", "sql", "limit_", "__proto__"]), anything, max_size=1)
    return st.tuples(st.fixed_dictionaries({}, optional=fields), extra).map(lambda pair: {**pair[1], **pair[0]})


TOOLS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "remember": _args(
        content=anything,
        role=st.one_of(st.sampled_from(["user", "assistant", "system", "fact", "admin", "USER"]), anything),
        tags=tags,
        session_id=anything,
        namespace=anything,
        metadata=metadata,
        created_at=dates,
    ),
    "recall": _args(
        query=anything,
        limit=st.one_of(number, wrong),
        tags=tags,
        session_id=anything,
        namespace=anything,
        since=dates,
        until=dates,
        max_tokens=st.one_of(number, wrong),
    ),
    "load_recent": _args(limit=st.one_of(number, wrong), session_id=anything, namespace=anything),
    "summarize_history": _args(
        session_id=anything, namespace=anything, limit=st.one_of(number, wrong), since=dates, focus=anything
    ),
    "forget": _args(id=st.one_of(anything, st.sampled_from(["OTHER"]))),
}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module", params=BACKENDS)
def base(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The module's store: SQLite in a data dir, or a fresh Postgres database (tests/postgres.py)."""
    url = request.getfixturevalue("postgres_server").create() if request.param == "postgres" else None
    return Settings(data_dir=tmp_path_factory.mktemp("hostile") / "data", database_url=url)


@pytest.fixture(scope="module")
async def other_user(base: Settings) -> list[str]:
    """Memories of another user on the same store; nothing may return, change or delete them."""
    service = await MemoryService.open(base.with_overrides(user="other"), HashEmbedder())
    try:
        return [
            (await service.remember(f"{OTHER_MARK} secret number {n}", tags=["zebracorn"], namespace=ns)).id
            for n, ns in enumerate(["default", "default", "work", "'; DROP TABLE memories; --"])
        ]
    finally:
        await service.close()


@pytest.fixture(scope="module")
async def client(base: Settings, other_user: list[str]) -> AsyncIterator[Client]:
    async with connect(base.with_overrides(model_wait_seconds=30)) as client:
        yield client


class CrashLog(logging.Handler):
    """Collects the SDK's 'unexpected exception' records: a crash the model would only see as a bare error."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.crashes: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.crashes.append(record.getMessage() + (f": {record.exc_info[1]!r}" if record.exc_info else ""))


@pytest.fixture(scope="module")
def crash_log() -> CrashLog:
    handler = CrashLog()
    logging.getLogger("mcp").addHandler(handler)
    return handler


def _snapshot(base: Settings) -> list[tuple[Any, ...]]:
    if base.database_url:
        import psycopg

        with psycopg.connect(base.database_url) as conn:
            sql = "SELECT id, content, indexed FROM memories WHERE owner = 'other' ORDER BY id"
            return [tuple(r) for r in conn.execute(sql)]
    db = sqlite3.connect(base.sqlite_path)
    try:
        return list(db.execute("SELECT id, content, indexed FROM memories WHERE user = 'other' ORDER BY id"))
    finally:
        db.close()


async def _check(client: Client, tool: str, arguments: dict[str, Any], other: list[str], crashes: CrashLog) -> None:
    if arguments.get("id") == "OTHER":
        arguments["id"] = other[0]
    try:
        result = await client.call_tool(tool, arguments)
    except UnicodeEncodeError:
        # A lone surrogate in a key never leaves the client (JSON text is UTF-8): nothing reached the server.
        return
    assert crashes.crashes == [], crashes.crashes
    body = json.dumps(result.structured_content) if result.structured_content else ""
    texts = " ".join(c.text for c in result.content if isinstance(c, TextContent))
    if result.is_error:
        # A clear error says what was wrong after the SDK's prefix; a crash is the bare prefix alone.
        assert texts.startswith(f"Error executing tool {tool}: ") and len(texts) > len(f"Error executing tool {tool}: ")
        assert "Traceback" not in texts
    else:
        assert result.structured_content is not None
    for hidden in other:
        # An error may echo the id the caller sent; nothing else of the other user may appear.
        assert hidden not in body and (hidden not in texts or hidden == arguments.get("id"))
    assert OTHER_MARK not in body
    # The server keeps serving.
    alive = await client.call_tool("load_recent", {"limit": 1})
    assert not alive.is_error


def _property(tool: str) -> Any:
    @settings(
        max_examples=100,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(arguments=TOOLS[tool])
    async def test(client: Client, other_user: list[str], crash_log: CrashLog, arguments: dict[str, Any]) -> None:
        await _check(client, tool, arguments, other_user, crash_log)

    test.__name__ = f"test_{tool}_answers_any_arguments_with_a_result_or_a_clear_error"
    return test


test_remember_answers_any_arguments_with_a_result_or_a_clear_error = _property("remember")
test_recall_answers_any_arguments_with_a_result_or_a_clear_error = _property("recall")
test_load_recent_answers_any_arguments_with_a_result_or_a_clear_error = _property("load_recent")
test_summarize_history_answers_any_arguments_with_a_result_or_a_clear_error = _property("summarize_history")
test_forget_answers_any_arguments_with_a_result_or_a_clear_error = _property("forget")


async def test_nothing_of_the_other_user_changed(client: Client, other_user: list[str], base: Settings) -> None:
    rows = _snapshot(base)
    assert sorted(r[0] for r in rows) == sorted(other_user)
    assert all(OTHER_MARK in r[1] for r in rows)
    found = await client.call_tool("recall", {"query": OTHER_MARK, "limit": 50})
    assert not found.is_error and OTHER_MARK not in json.dumps(found.structured_content)
