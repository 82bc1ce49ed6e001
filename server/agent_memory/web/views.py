"""The pages that read: timeline, search, one memory, namespaces and sessions, health."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from agent_memory.config import Settings
from agent_memory.models import Check
from agent_memory.service import MemoryService, doctor
from agent_memory.web.render import page, terms_of

ServiceOf = Callable[[Request], MemoryService]
SEARCH_LIMIT = 20
CHART_DAYS = 30
DOCTOR_SECONDS = 300
# The last doctor run per database: (monotonic time, checks).
_DOCTOR: dict[str, tuple[float, list[Check]]] = {}


def filters_of(request: Request) -> dict[str, Any]:
    """Return the filters in the query string (empty fields are no filter), as the service takes them."""
    q = request.query_params

    def text(name: str) -> str | None:
        value = q.get(name, "").strip()
        return value or None

    tags = [t.strip() for t in q.get("tags", "").split(",") if t.strip()]
    return {
        "namespace": text("namespace"),
        "session_id": text("session"),
        "tags": tags or None,
        "roles": [r for r in q.getlist("role") if r],
        "since": text("since"),
        "until": text("until"),
    }


def _form(request: Request) -> dict[str, Any]:
    """Return the filter form's values to show again."""
    q = request.query_params
    keys = ("q", "namespace", "session", "tags", "since", "until")
    return {**{k: q.get(k, "") for k in keys}, "roles": q.getlist("role")}


def _chart(days: list[Any]) -> list[dict[str, Any]]:
    """Return the bars of the per-day chart, oldest first, each with a height step 0-20 (CSS classes)."""
    top = max((d.count for d in days), default=0) or 1
    return [{"day": d.day, "count": d.count, "step": max(1, round(20 * d.count / top))} for d in reversed(days)]


async def timeline(request: Request, service: MemoryService) -> Response:
    """Show memories newest first, a page at a time, with counts per day."""
    filters = filters_of(request)
    # The count and the chart come from one pass over the matches (capped), not two.
    listing = await service.browse(**filters, cursor=request.query_params.get("cursor") or None, days=CHART_DAYS)
    base = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    return page(
        request,
        "timeline.html",
        listing=listing,
        chart=_chart(listing.days),
        form=_form(request),
        next_query=[*base, ("cursor", listing.next_cursor)] if listing.next_cursor else None,
        export_query=base,
        notice=request.query_params.get("notice"),
    )


async def search(request: Request, service: MemoryService) -> Response:
    """Search with the same hybrid recall as the tools; filters narrow, matches are marked."""
    query = request.query_params.get("q", "").strip()
    filters = filters_of(request)
    roles = filters.pop("roles")
    result = None
    if query:
        result = await service.recall(query, limit=SEARCH_LIMIT, **filters)
        if roles:
            result.hits = [h for h in result.hits if h.role in roles]
    return page(request, "search.html", result=result, terms=terms_of(query), form=_form(request))


async def memory(request: Request, service: MemoryService) -> Response:
    """Show one memory: everything stored with it, whether it is indexed, the summaries covering it."""
    detail = await service.memory(request.path_params["id"])
    return page(request, "memory.html", detail=detail, notice=request.query_params.get("notice"))


async def namespaces(request: Request, service: MemoryService) -> Response:
    """List the user's namespaces with counts, and the sessions of the chosen one."""
    spaces = await service.namespace_counts()
    chosen = request.query_params.get("namespace") or service.settings.namespace
    sessions = await service.sessions(namespace=chosen)
    return page(request, "namespaces.html", spaces=spaces, chosen=chosen, sessions=sessions)


async def health(request: Request, service: MemoryService) -> Response:
    """Show what `doctor` reports, the state of semantic search and of the vector index."""
    checks, age = await doctor_checks(service.settings, fresh=request.query_params.get("fresh") == "1")
    return page(
        request,
        "health.html",
        checks=checks,
        age=round(age),
        search=service.status(),
        index=await service.index_status(),
    )


async def doctor_checks(settings: Settings, *, fresh: bool = False) -> tuple[list[Check], float]:
    """Return `doctor`'s checks and their age in seconds, run again when older than DOCTOR_SECONDS or asked."""
    # doctor reads the whole database (integrity check): seconds at 100k memories, too much for every page view.
    key = str(settings.sqlite_path)
    found = _DOCTOR.get(key)
    if fresh or found is None or time.monotonic() - found[0] > DOCTOR_SECONDS:
        found = (time.monotonic(), await asyncio.to_thread(doctor, settings, check_model=False))
        _DOCTOR[key] = found
    return found[1], time.monotonic() - found[0]
