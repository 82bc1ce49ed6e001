"""Rate limits in front of the OAuth endpoints anyone can reach: registration, authorization and the sign-in form."""

from __future__ import annotations

import json
import time
from collections import deque

from starlette.types import ASGIApp, Receive, Scope, Send

# (method, path) -> (per client address, for everyone) requests per WINDOW seconds.
LIMITS = {
    ("POST", "/register"): (10, 60),
    ("GET", "/authorize"): (60, 600),
    ("POST", "/authorize"): (60, 600),
    ("POST", "/oauth/consent"): (30, 300),
    ("POST", "/ui/login"): (30, 300),  # the web page's sign-in takes the same passwords (web/app.py)
}
WINDOW = 60.0


class RateLimit:
    """Answer 429 to a limited request once its address, or everyone together, exceeds the limit."""

    def __init__(self, app: ASGIApp, limits: dict[tuple[str, str], tuple[int, int]] | None = None) -> None:
        self.app = app
        self._limits = LIMITS if limits is None else limits
        self._seen: dict[tuple[str, str], deque[float]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on unless it is over a limit."""
        key = (scope.get("method", ""), scope.get("path", ""))
        if scope["type"] != "http" or key not in self._limits:
            await self.app(scope, receive, send)
            return
        per_address, overall = self._limits[key]
        path = " ".join(key)
        address = (scope.get("client") or ("?", 0))[0]
        now = time.monotonic()
        if self._over((path, address), per_address, now) or self._over((path, "*"), overall, now):
            await _too_many(send)
            return
        await self.app(scope, receive, send)

    def _over(self, key: tuple[str, str], limit: int, now: float) -> bool:
        times = self._seen.setdefault(key, deque())
        while times and times[0] < now - WINDOW:
            times.popleft()
        if len(times) >= limit:
            return True
        times.append(now)
        if len(self._seen) > 10_000:  # many addresses: forget the idle ones
            self._seen = {k: v for k, v in self._seen.items() if v and v[-1] >= now - WINDOW}
        return False


async def _too_many(send: Send) -> None:
    body = json.dumps({"error": "too_many_requests", "error_description": "Too many requests; try again later"})
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [(b"content-type", b"application/json"), (b"retry-after", str(int(WINDOW)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})
