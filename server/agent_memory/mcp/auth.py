"""The bearer-token check of the HTTP face: each configured token maps to one user.

The SDK's bearer middleware asks `TokenTable` about every request, answers 401 to a missing or unknown
token before any MCP message is read, and binds each MCP session to the token's principal.
"""

from __future__ import annotations

import hashlib
import hmac

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings

from agent_memory.config import Settings
from agent_memory.mcp.http import bracketed


class TokenTable:
    """Verify bearer tokens against the configured token → user table in constant time."""

    def __init__(self, tokens: tuple[tuple[str, str], ...]) -> None:
        # Compare digests so neither the content nor the length of a known token leaks through timing.
        self._table = [(hashlib.sha256(token.encode()).digest(), user) for token, user in tokens]

    async def verify_token(self, token: str) -> AccessToken | None:
        """Return the token's user as the access token's client and subject, or None for an unknown token."""
        digest = hashlib.sha256(token.encode()).digest()
        user = None
        for known, owner in self._table:  # no early exit: every request costs the same
            if hmac.compare_digest(known, digest):
                user = owner
        if user is None:
            return None
        return AccessToken(token=token, client_id=user, subject=user, scopes=[])


def auth_for(settings: Settings) -> tuple[AuthSettings | None, TokenTable | None]:
    """Return the SDK auth settings and verifier when tokens are configured, else (None, None)."""
    if not settings.http_tokens:
        return None, None
    url = f"http://{bracketed(settings.http_host)}:{settings.http_port}"
    # No OAuth server: resource_server_url=None keeps the SDK from advertising OAuth metadata.
    return AuthSettings(issuer_url=url, resource_server_url=None), TokenTable(settings.http_tokens)  # type: ignore[arg-type]
