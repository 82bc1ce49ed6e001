"""Scope: one user's memories are never returned, summarised or deleted through another user's server."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_memory.config import Settings
from tests.conftest import call, connect

pytestmark = pytest.mark.anyio


async def test_another_user_on_the_same_data_dir_sees_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with connect(Settings(data_dir=data, user="ana", model_wait_seconds=30)) as ana:
        secret = await call(ana, "remember", content="Ana's bank PIN hint is the cat's birthday")
        async with connect(Settings(data_dir=data, user="bo", model_wait_seconds=30)) as bo:
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
