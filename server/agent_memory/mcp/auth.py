"""Who is calling over HTTP: static bearer tokens from the configuration, and OAuth sign-in when users exist.

The SDK's bearer middleware asks the verifier about every request, answers 401 (with the protected-resource
metadata pointer when OAuth is on) to a missing or unknown token before any MCP message is read, and binds each
MCP session to the token's principal. The user is the token's subject, never anything the model sends.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions

from agent_memory.config import Settings
from agent_memory.errors import ConfigError
from agent_memory.mcp.consent import Handler, consent_page
from agent_memory.mcp.context import OpenService
from agent_memory.mcp.http import PATH, bracketed
from agent_memory.mcp.oauth import OAuthProvider
from agent_memory.service import has_users


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


@dataclass
class Auth:
    """How the HTTP face authenticates: the SDK's settings, a verifier or a provider, and the consent page."""

    settings: AuthSettings | None = None
    verifier: TokenTable | None = None
    provider: OAuthProvider | None = None
    consent: Handler | None = None


def issuer_for(settings: Settings) -> str:
    """Return the OAuth issuer: the configured public origin, else this loopback address."""
    if settings.oauth_issuer_url:
        return settings.oauth_issuer_url.rstrip("/")
    if settings.is_loopback():
        host = "localhost" if settings.http_host == "localhost" else bracketed(settings.http_host)
        return f"http://{host}:{settings.http_port}"
    raise ConfigError(
        f"OAuth sign-in is on (users exist) but {settings.http_host} is not a loopback address: set "
        "AGENT_MEMORY_OAUTH_ISSUER_URL to the https origin clients reach (e.g. https://memory.example.com, "
        "served by a proxy in front), or AGENT_MEMORY_OAUTH=0 to use static tokens only."
    )


def oauth_on(settings: Settings) -> bool:
    """Return whether HTTP serving runs the OAuth server: on unless turned off, once anyone can sign in."""
    return settings.oauth and has_users(settings)


def auth_for(settings: Settings, opened: OpenService, *, http: bool = False) -> Auth:
    """Return the auth of the HTTP face: OAuth beside static tokens, static tokens alone, or none."""
    static = TokenTable(settings.http_tokens) if settings.http_tokens else None
    if http and oauth_on(settings):
        issuer = issuer_for(settings)
        provider = OAuthProvider(opened, issuer, issuer + PATH, static)
        auth = AuthSettings(
            issuer_url=issuer,  # type: ignore[arg-type]
            resource_server_url=issuer + PATH,  # type: ignore[arg-type]
            validate_token_resource=True,
            client_registration_options=ClientRegistrationOptions(enabled=True),
            revocation_options=RevocationOptions(enabled=True),
        )
        return Auth(auth, None, provider, consent_page(provider, settings.http_allowed_hosts))
    if static is None:
        return Auth()
    url = f"http://{bracketed(settings.http_host)}:{settings.http_port}"
    # No OAuth server: resource_server_url=None keeps the SDK from advertising OAuth metadata.
    return Auth(AuthSettings(issuer_url=url, resource_server_url=None), static)  # type: ignore[arg-type]
