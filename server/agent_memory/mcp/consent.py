"""The sign-in and consent page: the person signs in as a server user and sees which client asks before granting.

Server-rendered HTML with every value escaped and no script at all; a CSP forbids scripts, frames and forms
to anywhere but here and the client's redirect. A POST must come from this origin (Origin header) and carry the
CSRF token twice, in the form and in a SameSite=Strict cookie set when the page was shown, both bound to the one
pending request. The Host header must name this server, so a rebinding DNS name cannot reach the page.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from html import escape
from urllib.parse import urlsplit

from mcp.server.auth.provider import construct_redirect_uri
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from agent_memory.mcp.oauth import OAuthProvider, Pending

logger = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]

PATH = "/oauth/consent"
COOKIE = "agent_memory_csrf"
# Wrong passwords one pending request may take before it is dropped (the client must start again).
MAX_FAILURES = 5

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to agent-memory</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main>
<h1>Sign in to agent-memory</h1>
<p><strong>{client}</strong> asks to read and write your memories on this server.</p>
<p>After you allow it, your browser goes back to <code>{redirect}</code>.</p>
{message}
<form method="post" action="{action}">
<input type="hidden" name="request" value="{request}">
<input type="hidden" name="csrf" value="{csrf}">
<p><label>User <input name="username" autocomplete="username" required></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password"></label></p>
<p><button name="decision" value="allow">Allow</button> <button name="decision" value="deny">Deny</button></p>
</form></main></body></html>"""


def consent_page(provider: OAuthProvider, allowed_hosts: tuple[str, ...]) -> Handler:
    """Return the handler of the consent page (GET shows it, POST decides)."""
    issuer = urlsplit(provider.issuer)
    hosts = {issuer.netloc.lower(), *(h.lower() for h in allowed_hosts)}
    origin = f"{issuer.scheme}://{issuer.netloc}".lower()
    secure = issuer.scheme == "https"

    async def page(request: Request) -> Response:
        if request.headers.get("host", "").lower() not in hosts:
            return _plain(421, "This page is served under another host name.")
        request_id = request.query_params.get("request", "")
        pending = provider.pending(request_id)
        if pending is None:
            return _plain(404, "This sign-in link has expired or was used. Start again from your MCP client.")
        if request.method == "GET":
            return _form(pending, request_id, "", 200, secure)
        return await _decide(request, pending)

    async def _decide(request: Request, pending: Pending) -> Response:
        if request.headers.get("origin", "").lower() != origin:
            return _plain(403, "The form must be sent from this page (the Origin header did not match).")
        form = await request.form()
        request_id = str(form.get("request", ""))
        sent, cookie = str(form.get("csrf", "")), request.cookies.get(COOKIE, "")
        same = hmac.compare_digest(sent.encode(), pending.csrf.encode())
        if (
            request_id != request.query_params.get("request")
            or not same
            or not hmac.compare_digest(cookie.encode(), pending.csrf.encode())
        ):
            return _plain(403, "The form's security token did not match. Reload the page and try again.")
        redirect = str(pending.params.redirect_uri)
        state = pending.params.state
        if form.get("decision") != "allow":
            provider.finish(request_id)
            return _redirect(construct_redirect_uri(redirect, error="access_denied", state=state))
        user, password = str(form.get("username", "")), str(form.get("password", ""))
        if not await provider.accounts.sign_in(user, password):
            pending.failures += 1
            logger.warning("failed sign-in for %r (%d)", user, pending.failures)
            if pending.failures >= MAX_FAILURES:
                provider.finish(request_id)
                return _plain(403, "Too many wrong passwords. Start again from your MCP client.")
            return _form(pending, request_id, "Wrong user name or password.", 401, secure)
        provider.finish(request_id)
        code = await provider.issue_code(pending, user)
        return _redirect(construct_redirect_uri(redirect, code=code, state=state))

    return page


def _headers(redirect: str | None = None) -> dict[str, str]:
    target = ""
    if redirect is not None:
        parts = urlsplit(redirect)
        target = f" {parts.scheme}://{parts.netloc}" if parts.netloc else f" {parts.scheme}:"
    return {
        # form-action also covers the redirect that follows the POST, so the client's redirect is allowed.
        "Content-Security-Policy": (
            f"default-src 'none'; form-action 'self'{target}; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def _form(pending: Pending, request_id: str, message: str, status: int, secure: bool) -> Response:
    client = pending.client.client_name or pending.client.client_id or "An unnamed client"
    redirect = str(pending.params.redirect_uri)
    html = _PAGE.format(
        client=escape(client),
        redirect=escape(redirect),
        message=f'<p role="alert">{escape(message)}</p>' if message else "",
        action=escape(f"{PATH}?request={request_id}"),
        request=escape(request_id),
        csrf=escape(pending.csrf),
    )
    response = HTMLResponse(html, status_code=status, headers=_headers(redirect))
    response.set_cookie(COOKIE, pending.csrf, path=PATH, httponly=True, samesite="strict", secure=secure)
    return response


def _plain(status: int, text: str) -> Response:
    body = f"<!doctype html><title>agent-memory</title><p>{escape(text)}</p>"
    return HTMLResponse(body, status_code=status, headers=_headers())


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
