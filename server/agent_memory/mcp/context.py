"""How an MCP handler reaches the memory service, narrowed to its caller, and how its errors reach the model."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from agent_memory.config import Settings
from agent_memory.errors import AgentMemoryError
from agent_memory.service import Embedder, MemoryService

Ctx = Context[MemoryService, Any]
# An HTTP client names its session with this header (docs/http.md); without it, its identity decides.
SESSION_HEADER = "x-agent-memory-session"
MAX_SESSION_CHARS = 128


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
    return scoped(ctx.request_context.lifespan_context, ctx.headers)


def scoped(service: MemoryService, headers: Mapping[str, str] | None = None) -> MemoryService:
    """Narrow the shared service to the bearer token's user and the client's session; stdio keeps its own scope."""
    token = get_access_token()
    session = http_session(headers or {}, token)
    if token is None and session is None:
        return service
    # The subject is the user (a static token's or a signed-in person's); an OAuth client id is never a user.
    return service.scoped((token.subject or token.client_id) if token else service.settings.user, session)


def http_session(headers: Mapping[str, str], token: AccessToken | None) -> str | None:
    """Return the default session of an HTTP client's writes and summaries (None: the process's, on stdio).

    In order: the session the client names (SESSION_HEADER); the transport's session (mcp-session-id, one per
    connection of the stateful protocol); else the client's identity, so that clients of the session-less
    protocol do not share the process's session: an OAuth client's id (stable across token refreshes), or a
    static bearer token. Neither is ever stored: only a digest of it names the session.
    """
    named = headers.get(SESSION_HEADER)
    if named is not None:
        return _named(named)
    key = headers.get("mcp-session-id")
    if key is None and token is not None:
        # The token table makes a static token's client its user: the token itself tells two clients apart.
        key = f"token:{token.token}" if token.client_id == token.subject else f"client:{token.client_id}"
    return f"http-{hashlib.sha256(key.encode()).hexdigest()[:16]}" if key else None


def _named(value: str) -> str:
    """Return a session the client named, or refuse it with what a valid one looks like."""
    value = value.strip()
    if not 0 < len(value) <= MAX_SESSION_CHARS or not value.isprintable():
        raise ToolError(
            f"The {SESSION_HEADER} header must be 1-{MAX_SESSION_CHARS} printable characters, e.g. 'laptop-main'."
        )
    return value
