"""`agent-memory ui`, and the same page served at /ui beside MCP by `serve --transport http`."""

from __future__ import annotations

import sys
import webbrowser
from dataclasses import replace
from typing import Any

from mcp.server.mcpserver import MCPServer
from starlette.routing import BaseRoute, Mount

from agent_memory.config import Settings
from agent_memory.mcp.auth import issuer_for, oauth_on
from agent_memory.mcp.context import OpenService
from agent_memory.mcp.http import PATH as MCP_PATH
from agent_memory.mcp.server import build_server
from agent_memory.service import MemoryService
from agent_memory.web.app import PATH, build_app
from agent_memory.web.security import Guard
from agent_memory.web.serve import run

READY = "agent-memory: the page is at "


def run_ui(settings: Settings, *, explicit_port: bool, browser: bool) -> int:
    """Serve the page on loopback and open the browser on its one-time sign-in link; stop on Ctrl-C or hang-up."""
    settings = settings if explicit_port else replace(settings, http_port=0)

    def ready(url: str) -> None:
        print(f"{READY}{url}", file=sys.stderr, flush=True)
        if browser:
            webbrowser.open(url)

    run(settings, ready)
    return 0


def page_beside_mcp(settings: Settings) -> tuple[MCPServer[Any], list[BaseRoute]]:
    """Return the MCP server and the page's mount at /ui, sharing one service and the same tokens."""
    opened = OpenService(settings)
    server: MCPServer[MemoryService] = build_server(settings, opened=opened, http=True)
    # With OAuth sign-in on, the page takes the same users' passwords and OAuth access tokens (docs/ui.md).
    users = opened.current if oauth_on(settings) else None
    resource = issuer_for(settings) + MCP_PATH if users else None
    guard = Guard.for_settings(settings, users, resource)
    return server, [Mount(PATH, build_app(opened.current, guard))]
