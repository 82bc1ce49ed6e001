"""Who may use the page and how: Host checks, tokens and session cookies, CSRF and Origin, and the headers.

A request is let in by a session cookie (HttpOnly, SameSite=Strict; got by presenting a token once, or a user's
name and password when OAuth sign-in is on) or by an `Authorization: Bearer` header carrying a configured token or
an OAuth access token of this server. The token or the password decides the user, as for MCP over HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import wraps
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_memory.config import Settings
from agent_memory.service import MemoryService

COOKIE = "agent_memory_ui"
SESSION_SECONDS = 12 * 3600
# No inline script or style, nothing from elsewhere, no framing, forms post only here.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    # same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on form posts.
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}

Handler = Callable[[Request], Awaitable[Response]]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass
class Session:
    """A signed-in browser: whose memories it sees and its CSRF token."""

    user: str
    csrf: str
    expires: float


@dataclass
class Guard:
    """The page's gate: tokens (lasting and one-time), open sessions and the names the page answers to."""

    settings: Settings
    tokens: list[tuple[bytes, str]] = field(default_factory=list)
    one_time: dict[bytes, str] = field(default_factory=dict)
    # With no token configured on loopback (as MCP allows), a browser gets a session without signing in.
    open_access: bool = False
    sessions: dict[str, Session] = field(default_factory=dict)
    # OAuth sign-in is on (users exist): the open service, whose accounts' passwords sign a browser in and whose
    # OAuth access tokens for `resource` (this server's /mcp) are let in as bearer tokens.
    users: Callable[[], MemoryService] | None = None
    resource: str | None = None

    @classmethod
    def for_settings(
        cls, settings: Settings, users: Callable[[], MemoryService] | None = None, resource: str | None = None
    ) -> Guard:
        """Return the gate of `serve --transport http`: tokens and OAuth users, or open access on loopback."""
        tokens = [(_digest(t), u) for t, u in settings.http_tokens]
        return cls(settings, tokens=tokens, open_access=not tokens and users is None, users=users, resource=resource)

    def issue_one_time(self, user: str) -> str:
        """Return a new token that signs one browser in once (the URL `agent-memory ui` opens)."""
        token = secrets.token_urlsafe(32)
        self.one_time[_digest(token)] = user
        return token

    def user_of_token(self, token: str, *, once: bool = False) -> str | None:
        """Return the user of a configured token (or, with `once`, of a one-time token, spending it)."""
        digest = _digest(token)
        user = None
        for known, owner in self.tokens:  # no early exit: every check costs the same
            if hmac.compare_digest(known, digest):
                user = owner
        if user is None and once:
            user = self.one_time.pop(digest, None)
        return user

    async def user_of_bearer(self, token: str) -> str | None:
        """Return the user of a configured token or of a live OAuth access token for this server."""
        user = self.user_of_token(token)
        if user is None and self.users is not None and token:
            grant = await self.users().accounts.load_token(token, "access")
            if grant is not None and grant.resource == self.resource:
                user = grant.user
        return user

    async def user_of_password(self, name: str, password: str) -> str | None:
        """Return the user whose name and password these are (OAuth sign-in on), else None."""
        if self.users is None or not name or not password:
            return None
        return name if await self.users().accounts.sign_in(name, password) else None

    def open_session(self, user: str) -> tuple[str, Session]:
        """Start a browser session for a user; return its cookie value and the session."""
        self._expire()
        key = secrets.token_urlsafe(32)
        session = Session(user, secrets.token_urlsafe(32), time.monotonic() + SESSION_SECONDS)
        self.sessions[key] = session
        return key, session

    def session_of(self, request: Request) -> Session | None:
        """Return the live session the request's cookie names, if any."""
        key = request.cookies.get(COOKIE)
        session = self.sessions.get(key) if key else None
        if session is None or session.expires < time.monotonic():
            return None
        return session

    def host_allowed(self, host: str) -> bool:
        """Return whether the Host header names this server (stops DNS rebinding)."""
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if self.settings.http_allowed_hosts:
            return host in self.settings.http_allowed_hosts or name in self.settings.http_allowed_hosts
        if self.settings.is_loopback():
            return name in LOOPBACK or name == self.settings.http_host
        return True

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, s in self.sessions.items() if s.expires < now]:
            del self.sessions[key]


def same_origin(request: Request) -> bool:
    """Return whether the request's Origin is this page's own scheme, host and port."""
    origin = request.headers.get("origin")
    if not origin:
        return False
    parts = urlsplit(origin)
    return parts.scheme == request.url.scheme and parts.netloc == request.headers.get("host", "")


def set_cookie(response: Response, request: Request, key: str) -> None:
    """Hand the browser its session cookie: HttpOnly, SameSite=Strict, only for the page's path."""
    response.set_cookie(
        COOKIE,
        key,
        max_age=SESSION_SECONDS,
        path=request.scope.get("root_path") or "/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def guarded(guard: Guard, handler: Handler) -> Handler:
    """Let in a request with a session (and for a POST its CSRF token and own Origin) or a bearer token."""

    @wraps(handler)
    async def gate(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            user = await guard.user_of_bearer(auth[7:].strip())
            if user is None:
                return PlainTextResponse("unknown token", status_code=401, headers={"www-authenticate": "Bearer"})
            origin = request.headers.get("origin")
            if request.method == "POST" and origin and not same_origin(request):
                return PlainTextResponse("cross-origin request refused", status_code=403)
            request.state.user, request.state.csrf = user, ""
            return await handler(request)
        session = guard.session_of(request)
        if session is None:
            if guard.open_access and request.method == "GET":
                key, session = guard.open_session(guard.settings.user)
                request.state.user, request.state.csrf = session.user, session.csrf
                response = await handler(request)
                set_cookie(response, request, key)
                return response
            return PlainTextResponse(
                "Sign in: open the link `agent-memory ui` printed, or send Authorization: Bearer <token>.",
                status_code=401,
            )
        if request.method == "POST":
            form = await request.form()
            token = str(form.get("csrf", ""))
            if not same_origin(request) or not hmac.compare_digest(token.encode(), session.csrf.encode()):
                return PlainTextResponse("refused: the form's token or origin is not this page's", status_code=403)
        request.state.user, request.state.csrf = session.user, session.csrf
        return await handler(request)

    return gate


class Headers:
    """ASGI middleware: refuse unknown Host names and add the security headers to every response."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the Host, then pass on with the headers added."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = dict(_lower(scope["headers"])).get(b"host", b"").decode("latin-1")
        if not self.guard.host_allowed(host):
            await PlainTextResponse("unknown Host", status_code=421)(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def _lower(headers: Iterable[tuple[bytes, bytes]]) -> Iterable[tuple[bytes, bytes]]:
    return ((k.lower(), v) for k, v in headers)
