"""How an MCP handler reaches the memory service, narrowed to its caller, and how its errors reach the model."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from agent_memory.config import Settings
from agent_memory.errors import AgentMemoryError
from agent_memory.service import Embedder, MemoryService

Ctx = Context[MemoryService, Any]


class OpenService:
    """Open the service for the server's lifespan, and lend it to the handlers the SDK calls without a Context."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self._settings = settings
        self._embedder = embedder
        # A stack, since each in-process connection runs a lifespan of its own.
        self._open: list[MemoryService] = []

    @asynccontextmanager
    async def lifespan(self, _: MCPServer[MemoryService]) -> AsyncIterator[MemoryService]:
        """Open the service (stores, model loader, indexer) for as long as the server runs."""
        # Opening is fast: the model loads on a background thread, so `initialize` is answered at once.
        service = await MemoryService.open(self._settings, self._embedder)
        self._open.append(service)
        try:
            yield service
        finally:
            self._open.remove(service)
            await service.close()

    def current(self) -> MemoryService:
        """Return the most recently opened service."""
        if not self._open:
            raise AgentMemoryError("the memory service is not open")
        return self._open[-1]


@contextmanager
def tool_errors() -> Iterator[None]:
    """Turn service errors into tool errors the model can read and act on."""
    try:
        yield
    except AgentMemoryError as exc:
        raise ToolError(str(exc)) from None


def caller_service(ctx: Ctx) -> MemoryService:
    """Return the lifespan's service narrowed to this request's token and HTTP session."""
    headers = ctx.headers or {}
    return scoped(ctx.request_context.lifespan_context, headers.get("mcp-session-id"))


def scoped(service: MemoryService, http_session: str | None = None) -> MemoryService:
    """Narrow the shared service to the bearer token's user and the HTTP session; stdio keeps the configured scope."""
    token = get_access_token()
    if token is None and http_session is None:
        return service
    session = f"http-{hashlib.sha256(http_session.encode()).hexdigest()[:16]}" if http_session else None
    # The subject is the user (a static token's or a signed-in person's); an OAuth client id is never a user.
    return service.scoped((token.subject or token.client_id) if token else service.settings.user, session)
