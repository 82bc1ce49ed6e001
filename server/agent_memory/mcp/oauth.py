"""The OAuth 2.1 authorization server inside `serve --transport http`, on the MCP SDK's provider protocol.

The SDK serves the metadata, /authorize, /token, /register and /revoke and checks PKCE (S256 only) and the
redirect URI between /authorize and /token; this provider stores clients, codes and tokens through the
service's accounts (hashed), binds every token to this server's resource URL, rotates refresh tokens and
revokes a whole grant when a spent code or refresh token comes back. /authorize hands the browser to the
sign-in and consent page (consent.py), which holds the pending request until the person decides.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    RegistrationError,
    TokenError,
    TokenVerifier,
)
from mcp.shared.auth import InvalidRedirectUriError, OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl

from agent_memory.mcp.context import OpenService
from agent_memory.service import Accounts, Grant, Issued

# How long the person has to sign in once a client sends them to /authorize, and how many can wait at once.
PENDING_SECONDS = 600
MAX_PENDING = 256
LOOPBACK = ("127.0.0.1", "::1", "localhost")


class MemoryClient(OAuthClientInformationFull):
    """A registered client: redirect URIs match exactly, except a loopback URI's port (RFC 8252 section 7.3)."""

    def validate_redirect_uri(self, redirect_uri: AnyUrl | None) -> AnyUrl:
        """Return the redirect URI if it is one the client registered, else raise."""
        if redirect_uri is None:
            return super().validate_redirect_uri(None)
        wanted = str(redirect_uri)
        for known in self.redirect_uris or []:
            if str(known) == wanted or _same_but_port(str(known), wanted):
                return redirect_uri
        raise InvalidRedirectUriError(f"Redirect URI '{wanted}' is not registered for this client")


def _same_but_port(known: str, wanted: str) -> bool:
    a, b = urlsplit(known), urlsplit(wanted)
    loopback = a.scheme == b.scheme == "http" and a.hostname in LOOPBACK and a.hostname == b.hostname
    return loopback and (a.path, a.query, a.fragment) == (b.path, b.query, b.fragment)


class MemoryCode(AuthorizationCode):
    """An authorization code with the grant family it starts."""

    family: str


class MemoryRefresh(RefreshToken):
    """A refresh token with its grant family."""

    family: str


class MemoryAccess(AccessToken):
    """An access token with its grant family (None for a static token from the configuration)."""

    family: str | None = None


@dataclass
class Pending:
    """An authorization request waiting for the person to sign in and consent."""

    client: OAuthClientInformationFull
    params: AuthorizationParams
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    created: float = field(default_factory=time.monotonic)
    failures: int = 0


class OAuthProvider:
    """The SDK's OAuthAuthorizationServerProvider over the service's accounts, beside the static tokens."""

    def __init__(self, opened: OpenService, issuer: str, resource: str, static: TokenVerifier | None) -> None:
        self._opened = opened
        self.issuer = issuer
        self.resource = resource
        self._static = static
        self._pending: dict[str, Pending] = {}

    @property
    def accounts(self) -> Accounts:
        """Return the open service's accounts."""
        return self._opened.current().accounts

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        """Return a registered client, with its derived secret when it has one."""
        found = await self.accounts.client(client_id)
        if found is None:
            return None
        secret, metadata = found
        return MemoryClient.model_validate_json(metadata).model_copy(update={"client_secret": secret})

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        """Store a client that registered itself (RFC 7591), refusing redirect URIs that could leak a code."""
        for uri in client_info.redirect_uris or []:
            parts = urlsplit(str(uri))
            if parts.fragment or (parts.scheme == "http" and parts.hostname not in LOOPBACK):
                raise RegistrationError(
                    "invalid_redirect_uri", f"{uri} is neither https nor a loopback address, or it has a fragment"
                )
        confidential = client_info.token_endpoint_auth_method != "none"
        stored = client_info.model_copy(update={"client_secret": None})
        await self.accounts.register_client(client_info.client_id or "", confidential, stored.model_dump_json())
        if confidential:  # the handler answers with this object: the secret the client must send
            client_info.client_secret = self.accounts.client_secret(client_info.client_id or "")

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        """Hold the request and send the browser to the sign-in and consent page."""
        if params.resource is not None and params.resource.rstrip("/") != self.resource:
            raise AuthorizeError("invalid_target", f"this server issues tokens for {self.resource} only")
        self._expire()
        if len(self._pending) >= MAX_PENDING:  # the oldest goes: a flood cannot lock people out for long
            del self._pending[next(iter(self._pending))]
        request_id = secrets.token_urlsafe(24)
        self._pending[request_id] = Pending(client, params)
        return f"{self.issuer}/oauth/consent?request={request_id}"

    def pending(self, request_id: str) -> Pending | None:
        """Return a waiting authorization request."""
        self._expire()
        return self._pending.get(request_id)

    def finish(self, request_id: str) -> None:
        """Forget a request the person has decided."""
        self._pending.pop(request_id, None)

    def _expire(self) -> None:
        cutoff = time.monotonic() - PENDING_SECONDS
        for key in [k for k, p in self._pending.items() if p.created < cutoff]:
            del self._pending[key]

    async def issue_code(self, pending: Pending, user: str) -> str:
        """Store the code a consent grants; return it."""
        params = pending.params
        details = {
            "scopes": params.scopes or [],
            "resource": self.resource,
            "code_challenge": params.code_challenge,
            "redirect_uri": str(params.redirect_uri),
            "redirect_uri_provided_explicitly": params.redirect_uri_provided_explicitly,
        }
        return await self.accounts.issue_code(pending.client.client_id or "", user, self.resource, details)

    async def load_authorization_code(self, client: OAuthClientInformationFull, authorization_code: str) -> Any:
        """Return a live code's grant (a spent one revokes what it issued)."""
        grant = await self.accounts.load_code(authorization_code)
        if grant is None:
            return None
        d = grant.details
        return MemoryCode(
            code=authorization_code,
            scopes=list(grant.scopes),
            expires_at=grant.expires_at,
            client_id=grant.client_id,
            code_challenge=d["code_challenge"],
            redirect_uri=AnyUrl(d["redirect_uri"]),
            redirect_uri_provided_explicitly=d["redirect_uri_provided_explicitly"],
            resource=grant.resource,
            subject=grant.user,
            family=grant.family,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: MemoryCode
    ) -> OAuthToken:
        """Spend the code on an access token and a refresh token."""
        grant = Grant(
            authorization_code.client_id,
            authorization_code.subject or "",
            tuple(authorization_code.scopes),
            self.resource,
            0,
            authorization_code.family,
            {},
        )
        return _token(await self.accounts.exchange_code(authorization_code.code, grant))

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> Any:
        """Return a live refresh token (a spent one revokes its whole family)."""
        grant = await self.accounts.load_token(refresh_token, "refresh")
        if grant is None:
            return None
        return MemoryRefresh(
            token=refresh_token,
            client_id=grant.client_id,
            scopes=list(grant.scopes),
            expires_at=int(grant.expires_at),
            resource=grant.resource,
            subject=grant.user,
            family=grant.family,
        )

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: MemoryRefresh, scopes: list[str]
    ) -> OAuthToken:
        """Rotate: spend the refresh token on a new pair."""
        grant = Grant(
            refresh_token.client_id,
            refresh_token.subject or "",
            (),
            refresh_token.resource or "",
            0,
            refresh_token.family,
            {},
        )
        return _token(await self.accounts.rotate(refresh_token.token, grant, tuple(scopes)))

    async def load_access_token(self, token: str) -> Any:
        """Return a static token's or a live OAuth access token's user (as the subject), or None."""
        if self._static is not None:
            static = await self._static.verify_token(token)
            if static is not None:  # a configured token is good for this server, whatever its URL
                return MemoryAccess(**static.model_dump(exclude={"resource"}), resource=self.resource)
        grant = await self.accounts.load_token(token, "access")
        if grant is None:
            return None
        return MemoryAccess(
            token=token,
            client_id=grant.client_id,
            scopes=list(grant.scopes),
            expires_at=int(grant.expires_at),
            resource=grant.resource,
            subject=grant.user,
            family=grant.family,
        )

    async def revoke_token(self, token: MemoryAccess | MemoryRefresh) -> None:
        """Revoke the whole grant the token belongs to (access and refresh tokens alike)."""
        if token.family is not None:
            await self.accounts.revoke(token.family)

    async def exchange_identity_assertion(self, client: OAuthClientInformationFull, params: Any) -> OAuthToken:
        """Refuse the enterprise identity-assertion grant (not offered)."""
        raise TokenError("unsupported_grant_type", "only authorization_code and refresh_token are supported")


def _token(issued: Issued | None) -> OAuthToken:
    if issued is None:
        raise TokenError("invalid_grant", "the grant was already used; every token it issued is revoked")
    return OAuthToken(
        access_token=issued.access_token,
        token_type="Bearer",
        expires_in=issued.expires_in,
        scope=" ".join(issued.scopes) or None,
        refresh_token=issued.refresh_token,
    )
