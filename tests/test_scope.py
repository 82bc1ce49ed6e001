"""Scope: one user's memories are never returned, summarised or deleted through another user's server."""

from __future__ import annotations

import pytest

from agent_memory.config import Settings
from tests.conftest import call, connect

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]


async def test_another_user_on_the_same_data_dir_sees_nothing(settings: Settings) -> None:
    async with connect(settings.with_overrides(user="ana")) as ana:
        secret = await call(ana, "remember", content="Ana's bank PIN hint is the cat's birthday")
        async with connect(settings.with_overrides(user="bo")) as bo:
            found = await call(bo, "recall", query="bank PIN hint cat birthday", limit=50)
            recent = await call(bo, "load_recent", limit=200)
            summary = await call(bo, "summarize_history")
            forget = await bo.call_tool("forget", {"id": secret["id"]})
            again = await call(bo, "remember", content="Ana's bank PIN hint is the cat's birthday")
        still = await call(ana, "recall", query="bank PIN hint", limit=5)
    assert found["hits"] == [] and recent["messages"] == []
    assert summary["covers"]["count"] == 0 and "cat" not in summary["summary"]
    assert forget.is_error
    assert again["duplicate"] is False and again["id"] != secret["id"]
    assert [h["id"] for h in still["hits"]] == [secret["id"]]


async def test_another_namespace_is_never_returned_summarised_counted_or_deleted(settings: Settings) -> None:
    settings = settings.with_overrides(namespace="home")
    async with connect(settings) as client:
        work = await call(client, "remember", content="The work VPN password hint is a zebracorn", namespace="work")
        home = await call(client, "remember", content="The home wifi is called zebracorn meadow")
        found = await call(client, "recall", query="zebracorn", limit=50)
        found_tagless = await call(client, "recall", query="work VPN password hint", limit=50, max_tokens=1)
        recent = await call(client, "load_recent", limit=200)
        summary = await call(client, "summarize_history")
        forget = await client.call_tool("forget", {"id": work["id"]})
        resource = (await client.read_resource("memory://recent")).contents[0]
        prompt = await client.get_prompt("where_we_left_off", {})
        # Narrowing to the other namespace explicitly still works within the same user.
        in_work = await call(client, "recall", query="zebracorn", namespace="work")
        work_summary = await call(client, "summarize_history", namespace="work")
        gone = await call(client, "forget", id=work["id"], namespace="work")
    assert [h["id"] for h in found["hits"]] == [home["id"]]
    assert found_tagless["omitted"] + len(found_tagless["hits"]) <= 1
    assert [m["id"] for m in recent["messages"]] == [home["id"]]
    assert summary["covers"]["count"] == 1 and "VPN" not in summary["summary"]
    assert forget.is_error and "namespace 'home'" in forget.content[0].text  # type: ignore[union-attr]
    assert "VPN" not in resource.text and home["id"] in resource.text  # type: ignore[union-attr]
    assert "VPN" not in str(prompt.messages)
    assert [h["id"] for h in in_work["hits"]] == [work["id"]]
    assert work_summary["covers"]["count"] == 1
    assert gone["deleted"] is True


async def test_another_users_memories_stay_out_of_the_resource_and_the_prompt(settings: Settings) -> None:
    async with connect(settings.with_overrides(user="ana")) as ana:
        await call(ana, "remember", content="Ana's locker code hint is the zebracorn poster")
    async with connect(settings.with_overrides(user="bo")) as bo:
        resource = (await bo.read_resource("memory://recent")).contents[0]
        prompt = await bo.get_prompt("where_we_left_off", {})
        counted = await call(bo, "recall", query="locker code zebracorn", limit=50, max_tokens=1)
    assert "zebracorn" not in resource.text  # type: ignore[union-attr]
    assert "zebracorn" not in str(prompt.messages)
    assert counted["hits"] == [] and counted["omitted"] == 0
