"""The MCP face: build the server and register the tools, the resource, the prompt and the completion on it."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from mcp.server.mcpserver import MCPServer

from agent_memory import __version__
from agent_memory.config import Settings
from agent_memory.mcp import prompts, tools
from agent_memory.mcp.auth import auth_for
from agent_memory.mcp.consent import PATH as CONSENT_PATH
from agent_memory.mcp.context import OpenService
from agent_memory.mcp.strict import strict_tool
from agent_memory.mcp.workspace import Workspaces
from agent_memory.service import Embedder, MemoryService

INSTRUCTIONS = """Persistent memory across conversations.
- Call `recall` with a short description of what you need before answering questions that may depend on
  earlier conversations (preferences, names, decisions, ongoing work).
- Call `remember` for facts, preferences and decisions worth keeping; one memory per fact.
- When a fact changes (the user moved, switched a preference, a decision was reversed), remember the new fact
  with `supersedes=[old id]`: the old one leaves recall but stays in history. `remember` returns `similar`,
  existing memories close to the new one; supersede those the new one replaces, leave the others. A changed
  fact is often worded unlike the old one and not listed: then `recall` its subject in a few words of your own
  (e.g. "the user's diet"), not the new sentence, to find the old id.
- `load_recent` gives the latest messages; `summarize_history` a compact summary of a session or project.
- `forget` deletes a memory by id when the user asks."""


def build_server(
    settings: Settings,
    embedder: Embedder | None = None,
    opened: OpenService | None = None,
    *,
    http: bool = False,
    cwd: Path | None = None,
) -> MCPServer[MemoryService]:
    """Build the MCP server; the service (stores, model loader, indexer) opens in the lifespan.

    `opened` is the holder of the open service, for another face served beside MCP (the web page at /ui).
    `http`: with OAuth sign-in when users exist. `cwd`: the directory a client started this (stdio) server in,
    a workspace signal when it is a project.
    """
    workspaces = Workspaces(settings, cwd)
    opened = opened or OpenService(workspaces.server_settings(), embedder)
    auth = auth_for(settings, opened, http=http)
    server: MCPServer[MemoryService] = MCPServer(
        "agent-memory",
        token_verifier=auth.verifier,
        auth_server_provider=auth.provider,
        auth=auth.settings,
        title="Agent Memory",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=opened.lifespan,
        tools=[strict_tool(tool.fn, tool.title, tool.annotations) for tool in tools.TOOLS],
        log_level=settings.log_level.upper(),  # type: ignore[arg-type]
    )
    if auth.consent is not None:
        server.custom_route(CONSENT_PATH, methods=["GET", "POST"])(auth.consent)
    workspaces.attach(server)
    # Static resources and completions get no Context from the SDK, so they are handed the service's holder.
    server.resource(
        "memory://recent",
        name="recent-memories",
        title="Recent memories",
        description="The 20 newest memories in the default namespace, oldest first, as JSON.",
        mime_type="application/json",
    )(partial(prompts.recent_memories, opened))
    server.completion()(partial(prompts.complete, opened))  # type: ignore[no-untyped-call]  # the SDK leaves it untyped
    server.prompt(
        name=prompts.PROMPT,
        title="Where we left off",
        description="Bring the summary and the latest messages of earlier conversations into this one.",
    )(prompts.where_we_left_off)
    return server
