"""Supersede, expiry, looking back and unknown arguments through the MCP client, in both protocol modes."""

from __future__ import annotations

import pytest
from mcp_types import TextContent

from agent_memory.config import Settings
from tests.conftest import MODES, call, connect

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]


@pytest.mark.parametrize("mode", MODES)
async def test_a_fact_is_corrected_through_the_tools_and_its_history_kept(settings: Settings, mode: str) -> None:
    async with connect(settings, mode) as client:
        dark = await call(client, "remember", content="Dana prefers dark mode.", created_at="2024-01-01")
        light = await call(client, "remember", content="Dana prefers light mode.", supersedes=[dark["id"]])
        current = await call(client, "recall", query="Dana theme mode preference")
        then = await call(client, "recall", query="Dana theme mode preference", as_of="2024-02-01")
        both = await call(client, "recall", query="Dana theme mode preference", include_superseded=True)
        recent = await call(client, "load_recent")
        missing = await client.call_tool("remember", {"content": "x", "supersedes": ["nope"]})
    assert light["superseded"] == [dark["id"]]
    assert [h["id"] for h in current["hits"]] == [light["id"]]
    assert current["hits"][0]["supersedes"] == [dark["id"]]
    assert [h["id"] for h in then["hits"]] == [dark["id"]]
    old = next(h for h in both["hits"] if h["id"] == dark["id"])
    assert old["superseded_by"] == light["id"] and old["superseded_at"] == light["created_at"]
    assert [m["id"] for m in recent["messages"]] == [light["id"]]
    assert missing.is_error
    assert isinstance(missing.content[0], TextContent) and "no memory with that id" in missing.content[0].text


@pytest.mark.parametrize("mode", MODES)
async def test_an_expiring_memory_says_when(settings: Settings, mode: str) -> None:
    async with connect(settings, mode) as client:
        stored = await call(client, "remember", content="In Berlin until Friday.", expires_at="2999-01-01")
        timed = await call(client, "remember", content="Parking in slot 4.", ttl=86400)
    assert stored["expires_at"] == "2999-01-01T00:00:00Z"
    assert timed["expires_at"] is not None


@pytest.mark.parametrize("mode", MODES)
async def test_an_unknown_argument_is_an_error_naming_the_valid_ones(settings: Settings, mode: str) -> None:
    async with connect(settings, mode) as client:
        old = await call(client, "remember", content="The build uses make.")
        misspelt = await client.call_tool("remember", {"content": "The build uses just.", "supersede": [old["id"]]})
        recall = await client.call_tool("recall", {"query": "build", "namespaces": ["a"]})
        forget = await client.call_tool("forget", {"id": old["id"], "user": "someone"})
        recent = await call(client, "load_recent")
    for result, unknown, valid in (
        (misspelt, "'supersede'", "supersedes"),
        (recall, "'namespaces'", "include_superseded"),
        (forget, "'user'", "namespace"),
    ):
        assert result.is_error
        text = result.content[0]
        assert isinstance(text, TextContent)
        assert unknown in text.text and valid in text.text, text.text
    # Nothing was done: the misspelt call stored nothing, the forget deleted nothing.
    assert [m["id"] for m in recent["messages"]] == [old["id"]]
