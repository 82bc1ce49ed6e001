"""Each connection's project: the client's MCP roots, asked for once and again after `roots/list_changed`.

The roots capability is deprecated in the 2026-07-28 protocol (SEP-2577), but it is what today's IDE clients
send over the legacy handshake; a client that does not offer it gets the working directory or the configured
namespace (the order is in `agent_memory/workspace.py`).
"""

from __future__ import annotations

import logging
import warnings
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import NotificationParams

from agent_memory import workspace
from agent_memory.config import Settings
from agent_memory.mcp.context import Ctx, caller_service
from agent_memory.models import NamespaceUsed
from agent_memory.service import ALL_NAMESPACES, MemoryService

logger = logging.getLogger(__name__)
_BY_SERVER: weakref.WeakKeyDictionary[MCPServer[Any], Workspaces] = weakref.WeakKeyDictionary()


class Workspaces:
    """The roots of each connected client, and the namespace they give."""

    def __init__(self, settings: Settings, cwd: Path | None) -> None:
        self._settings = settings
        self._cwd = cwd
        # Keyed by the connection's session object: gone with the connection.
        self._roots: weakref.WeakKeyDictionary[Any, tuple[str, ...]] = weakref.WeakKeyDictionary()

    def server_settings(self) -> Settings:
        """Return the settings whose namespace is the project the server was started in, if it was.

        The resource and completions get no request context, so no roots: they use this namespace.
        """
        used = workspace.resolve(
            explicit=None, configured=self._settings.namespace, mode=self._settings.namespace_from, cwd=self._cwd
        )
        return replace(self._settings, namespace=used.namespace)

    def attach(self, server: MCPServer[MemoryService]) -> None:
        """Follow `roots/list_changed` on this server and let its tools find this object."""
        _BY_SERVER[server] = self
        # MCPServer has no public notification hook; the low-level server is where the SDK keeps them.
        server._lowlevel_server.add_notification_handler(
            "notifications/roots/list_changed", NotificationParams, self._changed
        )

    async def resolve(self, ctx: Ctx, explicit: str | None) -> workspace.Resolved:
        """Return the namespace this call uses and where it came from."""
        mode = self._settings.namespace_from
        roots = await self._roots_of(ctx) if explicit is None and mode == "roots" else ()
        configured = caller_service(ctx).settings.namespace
        return workspace.resolve(explicit=explicit, configured=configured, mode=mode, roots=roots, cwd=self._cwd)

    async def _roots_of(self, ctx: Ctx) -> tuple[str, ...]:
        session = ctx.session
        cached = self._roots.get(session)
        if cached is not None:
            return cached
        capabilities = ctx.client_capabilities
        if capabilities is None or capabilities.roots is None:
            return ()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                result = await session.list_roots()
            roots = tuple(str(root.uri) for root in result.roots)
        except MCPError as exc:
            # A client that cannot answer keeps the other signals; it is asked again on its next call.
            logger.info("the client did not list its roots (%s); using the other workspace signals", exc)
            return ()
        self._roots[session] = roots
        return roots

    async def _changed(self, ctx: ServerRequestContext[Any], _: NotificationParams) -> None:
        self._roots.pop(ctx.session, None)


async def workspace_service(ctx: Ctx, namespace: str | None) -> tuple[MemoryService, NamespaceUsed]:
    """Return the caller's service with the workspace's default namespace, and which namespace a call uses."""
    service = caller_service(ctx)
    holder = _BY_SERVER.get(ctx.mcp_server)
    if namespace == ALL_NAMESPACES:
        return service, NamespaceUsed(namespace=ALL_NAMESPACES, source="argument")
    if holder is None:
        used = workspace.resolve(explicit=namespace, configured=service.settings.namespace, mode="config")
    else:
        used = await holder.resolve(ctx, namespace)
    if used.source in ("roots", "cwd"):
        service = service.in_namespace(used.namespace)
    return service, NamespaceUsed(namespace=used.namespace, source=used.source, path=used.path)
