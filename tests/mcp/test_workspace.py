"""The default namespace follows the client's workspace: its MCP roots, then the project it runs in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types import ListRootsResult, Root

from agent_memory.config import Settings
from agent_memory.mcp.server import build_server
from tests.conftest import HashEmbedder, call, connect, eventually

pytestmark = pytest.mark.anyio


def make_repo(parent: Path, folder: str, remote: str | None) -> Path:
    """Create a directory that looks like a git checkout, with an origin remote when given."""
    path = parent / folder
    (path / ".git").mkdir(parents=True)
    if remote:
        (path / ".git" / "config").write_text(f'[core]\n\tbare = false\n[remote "origin"]\n\turl = {remote}\n')
    return path


class Roots:
    """A client's roots callback whose roots the test can change."""

    def __init__(self, *paths: Path) -> None:
        self.paths = list(paths)

    async def __call__(self, _: Any) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=p.as_uri(), name=p.name) for p in self.paths])  # type: ignore[arg-type]


async def test_a_client_with_roots_gets_its_projects_namespace_and_a_change_of_roots_moves_it(
    settings: Settings, tmp_path: Path
) -> None:
    alpha = make_repo(tmp_path, "checkout-a", "git@github.com:acme/alpha.git")
    beta = make_repo(tmp_path, "beta", None)
    roots = Roots(alpha)
    async with connect(settings, "legacy", list_roots_callback=roots) as client:
        first = await call(client, "remember", content="Alpha deploys with make ship.")
        assert first["namespace_used"] == {"namespace": "alpha", "source": "roots", "path": str(alpha)}
        roots.paths = [beta]
        with pytest.warns(MCPDeprecationWarning):  # deprecated in 2026-07-28, still what IDE clients send
            await client.send_roots_list_changed()

        async def moved() -> bool:
            recent = await call(client, "load_recent")
            return recent["namespace_used"]["namespace"] == "beta"

        await eventually(moved)
        await call(client, "remember", content="Beta deploys with a button.")
        beta_recent = await call(client, "load_recent")
        everywhere = await call(client, "recall", query="deploys", namespace="*")
        all_recent = await call(client, "load_recent", namespace="*")
        refused = await client.call_tool("remember", {"content": "Goes nowhere.", "namespace": "*"})
    assert [m["content"] for m in beta_recent["messages"]] == ["Beta deploys with a button."]
    assert {h["namespace"] for h in everywhere["hits"]} == {"alpha", "beta"}
    assert everywhere["namespace_used"]["namespace"] == "*"
    assert [m["namespace"] for m in all_recent["messages"]] == ["alpha", "beta"]
    assert refused.is_error and "only recall and load_recent" in str(refused.content)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_client_without_roots_keeps_the_configured_namespace(settings: Settings, mode: str) -> None:
    async with connect(settings, mode) as client:
        stored = await call(client, "remember", content="No roots here.")
        recent = await call(client, "load_recent")
    assert stored["namespace_used"] == {"namespace": "default", "source": "config", "path": None}
    assert [m["namespace"] for m in recent["messages"]] == ["default"]


async def test_two_clients_on_two_roots_never_see_each_others_memories(settings: Settings, tmp_path: Path) -> None:
    one, two = make_repo(tmp_path, "one", None), make_repo(tmp_path, "two", None)
    server_one, server_two = build_server(settings, HashEmbedder()), build_server(settings, HashEmbedder())
    async with (
        Client(server_one, mode="legacy", list_roots_callback=Roots(one)) as a,
        Client(server_two, mode="legacy", list_roots_callback=Roots(two)) as b,
    ):
        await call(a, "remember", content="The launch code word is pineapple.")
        await call(b, "remember", content="The launch code word is mango.")
        seen_by_a = await call(a, "recall", query="launch code word")
        seen_by_b = await call(b, "recall", query="launch code word")
        recent_b = await call(b, "load_recent")
    assert [h["content"] for h in seen_by_a["hits"]] == ["The launch code word is pineapple."]
    assert [h["content"] for h in seen_by_b["hits"]] == ["The launch code word is mango."]
    assert [m["namespace"] for m in recent_b["messages"]] == ["two"]


async def test_an_explicit_namespace_and_namespace_from_config_win_over_roots(
    settings: Settings, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, "repo", None)
    async with connect(settings, "legacy", list_roots_callback=Roots(repo)) as client:
        named = await call(client, "remember", content="Goes to notes.", namespace="notes")
    pinned = Settings(data_dir=settings.data_dir, namespace="work", namespace_from="config")
    async with connect(pinned, "legacy", list_roots_callback=Roots(repo)) as client:
        configured = await call(client, "remember", content="Goes to work.")
    assert named["namespace_used"]["source"] == "argument" and named["namespace_used"]["namespace"] == "notes"
    assert configured["namespace_used"] == {"namespace": "work", "source": "config", "path": None}


async def test_a_server_started_in_a_project_uses_it_and_roots_still_win(settings: Settings, tmp_path: Path) -> None:
    project = make_repo(tmp_path, "started-here", "https://example.com/team/served.git")
    (project / "src").mkdir()
    other = make_repo(tmp_path, "elsewhere", None)
    server = build_server(settings, HashEmbedder(), cwd=project / "src")
    async with Client(server, mode="auto") as client:
        from_cwd = await call(client, "remember", content="From the working directory.")
    server = build_server(settings, HashEmbedder(), cwd=project)
    async with Client(server, mode="legacy", list_roots_callback=Roots(other)) as client:
        from_roots = await call(client, "remember", content="From the roots.")
    assert from_cwd["namespace_used"] == {"namespace": "served", "source": "cwd", "path": str(project)}
    assert from_roots["namespace_used"]["namespace"] == "elsewhere"
