"""`agent-memory ui`: the page alone on loopback, a free port, signed in by a one-time token in the URL."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route

from agent_memory.config import Settings
from agent_memory.errors import AgentMemoryError
from agent_memory.service import Embedder, MemoryService
from agent_memory.web.app import PATH, build_app
from agent_memory.web.security import Guard

LOOPBACK = "127.0.0.1"


class Held:
    """The service the page uses, opened in the app's lifespan."""

    def __init__(self) -> None:
        self.service: MemoryService | None = None

    def current(self) -> MemoryService:
        """Return the open service."""
        if self.service is None:
            raise AgentMemoryError("the memory service is not open")
        return self.service


def ui_app(settings: Settings, guard: Guard, embedder: Embedder | None = None) -> Starlette:
    """Return the standalone app: the page at /ui, the service opened for the app's lifetime."""
    held = Held()

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        held.service = await MemoryService.open(settings, embedder)
        try:
            yield
        finally:
            await held.service.close()
            held.service = None

    async def home(_: Request) -> Response:
        return RedirectResponse(PATH + "/", status_code=307)

    routes = [Route("/", home), Mount(PATH, build_app(held.current, guard))]
    return Starlette(routes=routes, lifespan=lifespan)


def run(settings: Settings, on_ready: Callable[[str], None], embedder: Embedder | None = None) -> None:
    """Serve the page on loopback until interrupted; `on_ready` gets the sign-in URL (with its one-time token)."""
    import anyio
    import uvicorn

    settings = _loopback(settings)
    guard = Guard(settings)
    token = guard.issue_one_time(settings.user)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, settings.http_port if settings.http_port else 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    url = f"http://{LOOPBACK}:{port}{PATH}/login?token={token}"

    class Listener(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                on_ready(url)

    config = uvicorn.Config(
        ui_app(settings, guard, embedder), log_level=settings.log_level.lower(), timeout_graceful_shutdown=3
    )
    listener = Listener(config)
    with contextlib.suppress(SystemExit):
        anyio.run(lambda: listener.serve(sockets=[sock]))
    if not listener.started:
        raise AgentMemoryError("the page failed to start; the log above says why.")


def _loopback(settings: Settings) -> Settings:
    return replace(settings, http_host=LOOPBACK)
