"""The MCP face over streamable HTTP: Host/Origin checks, the exposure check, the listener.

Bearer tokens, which decide the user, are checked in `auth.py`. Binding to a non-loopback address without
tokens is refused unless explicitly allowed.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.routing import BaseRoute

from agent_memory.config import Settings
from agent_memory.errors import AgentMemoryError, ConfigError

logger = logging.getLogger(__name__)

PATH = "/mcp"


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """Return the Host/Origin checks that stop DNS rebinding (a web page driving a local server)."""
    # Behind a proxy the Host header is the issuer's (Caddy keeps it; nginx needs `proxy_set_header Host`).
    issuer = [urlsplit(settings.oauth_issuer_url).netloc] if settings.oauth_issuer_url else []
    if settings.http_allowed_hosts or (issuer and not settings.is_loopback()):
        hosts = [*settings.http_allowed_hosts, *issuer]
        origins = [f"{scheme}://{host}" for host in hosts for scheme in ("http", "https")]
        return TransportSecuritySettings(allowed_hosts=hosts, allowed_origins=origins)
    if settings.is_loopback():
        names = sorted({"127.0.0.1", "localhost", "[::1]", bracketed(settings.http_host)})
        return TransportSecuritySettings(
            allowed_hosts=[f"{name}:*" for name in names] + issuer,
            allowed_origins=[f"{scheme}://{name}:*" for name in names for scheme in ("http", "https")]
            + [f"https://{host}" for host in issuer],
        )
    # A remote address cannot be pinned without knowing the names clients use; tokens guard it instead.
    logger.warning(
        "Host/Origin checks are off on %s; set AGENT_MEMORY_HTTP_ALLOWED_HOSTS to the names clients use",
        settings.http_host,
    )
    return TransportSecuritySettings(enable_dns_rebinding_protection=False)


def bracketed(host: str) -> str:
    """Return an IPv6 host in brackets, as a URL or Host header writes it."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def check_exposure(settings: Settings, signed_in: bool = False) -> None:
    """Refuse to serve memories without tokens or OAuth sign-in on an address other machines can reach."""
    if settings.http_tokens or signed_in or settings.is_loopback() or settings.http_allow_unauthenticated:
        return
    raise ConfigError(
        f"refusing to listen on {settings.http_host} without a token: anyone who can reach it could read every "
        "memory. Add a user who signs in with OAuth (`agent-memory user add NAME`), set AGENT_MEMORY_HTTP_TOKENS "
        "(token:user,...) or AGENT_MEMORY_HTTP_TOKENS_FILE, bind to "
        "127.0.0.1, or set AGENT_MEMORY_HTTP_ALLOW_UNAUTHENTICATED=1 if something in front of it authenticates."
    )


def listen(settings: Settings) -> socket.socket:
    """Bind and listen on the configured host and port (port 0 picks a free one)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        settings.http_host.strip("[]"), settings.http_port, type=socket.SOCK_STREAM
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {settings.http_host}:{settings.http_port}: {exc.strerror}") from None
    sock.listen(128)
    return sock


def serve(
    build: Callable[[Settings], tuple[MCPServer[Any], Sequence[BaseRoute]]],
    settings: Settings,
    on_ready: Callable[[str], None],
) -> None:
    """Serve MCP over streamable HTTP until interrupted; `on_ready` gets the URL once requests are served.

    `build` returns the MCP server and more routes served beside it by the same app (the web page at /ui).
    """
    import anyio
    import uvicorn

    from agent_memory.mcp.auth import oauth_on
    from agent_memory.mcp.limits import RateLimit

    signed_in = oauth_on(settings)
    check_exposure(settings, signed_in)
    sock = listen(settings)
    host, port = sock.getsockname()[:2]
    url = f"http://{bracketed(host)}:{port}{PATH}"
    # Built once the port is known: the OAuth issuer of a loopback server is its own address.
    settings = settings.with_overrides(http_port=port)
    try:
        server, mounts = build(settings)
    except BaseException:
        sock.close()
        raise
    app: Any = server.streamable_http_app(
        streamable_http_path=PATH, transport_security=transport_security(settings), host=settings.http_host
    )
    app.router.routes.extend(mounts)
    if signed_in:
        app = RateLimit(app)

    class Listener(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:  # the service opened (lifespan) and the socket accepts
                on_ready(url)

    config = uvicorn.Config(app, log_level=settings.log_level.lower(), timeout_graceful_shutdown=3, lifespan="on")
    listener = Listener(config)
    with contextlib.suppress(SystemExit):  # uvicorn exits this way when start-up fails; said below
        anyio.run(lambda: listener.serve(sockets=[sock]))
    if not listener.started:
        raise AgentMemoryError("the HTTP server failed to start; the log above says why.")
