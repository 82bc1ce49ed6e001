"""The pages that change or move memories: edit, forget with confirmation, export as JSONL, import a file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from agent_memory.cli import importers
from agent_memory.cli.transfer import header_line, import_text, memory_line
from agent_memory.errors import InvalidInput
from agent_memory.models import Memory
from agent_memory.service import MemoryService
from agent_memory.web.render import page
from agent_memory.web.views import filters_of

MAX_IMPORT_BYTES = 64 * 1024 * 1024
MAX_SELECTED = 1000
EXPORT_PAGE = 200


def _ids(form: Any) -> list[str]:
    ids = [str(i) for i in form.getlist("ids") if str(i).strip()]
    if not ids:
        raise InvalidInput("nothing selected: tick the memories first.")
    return ids[:MAX_SELECTED]


def _to(request: Request, name: str, notice: str, **params: str) -> RedirectResponse:
    url = str(request.url_for(name, **params))
    return RedirectResponse(f"{url}?{urlencode({'notice': notice})}", status_code=303)


async def edit(request: Request, service: MemoryService) -> Response:
    """Replace a memory's content and tags; show the corrected memory."""
    form = await request.form()
    tags = [t.strip() for t in str(form.get("tags", "")).split(",") if t.strip()]
    result = await service.edit(request.path_params["id"], content=str(form.get("content", "")), tags=tags)
    return _to(request, "memory", "Saved.", id=result.id)


async def confirm_forget(request: Request, service: MemoryService) -> Response:
    """Ask before forgetting the selected memories, showing what would go."""
    ids = _ids(await request.form())
    chosen = [(await service.memory(i)).memory for i in ids]
    return page(request, "forget.html", memories=chosen)


async def forget(request: Request, service: MemoryService) -> Response:
    """Forget the confirmed memories from the store, the vector index and the summaries covering them."""
    gone = await service.forget_many(_ids(await request.form()))
    return _to(request, "timeline", f"Forgot {len(gone)} {'memory' if len(gone) == 1 else 'memories'}.")


def _header(service: MemoryService) -> str:
    return header_line(service.settings.user, None)


def _line(service: MemoryService, memory: Memory) -> str:
    return memory_line(service.settings.user, memory)


def _download(lines: AsyncIterator[str]) -> StreamingResponse:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    disposition = f'attachment; filename="memories-{stamp}.jsonl"'
    return StreamingResponse(lines, media_type="application/x-ndjson", headers={"content-disposition": disposition})


async def export_filtered(request: Request, service: MemoryService) -> Response:
    """Download every memory that passes the filters as JSONL (the format `agent-memory import` reads)."""
    filters = filters_of(request)
    first = await service.browse(**filters, limit=EXPORT_PAGE)  # bad filters fail here, before the download

    async def lines() -> AsyncIterator[str]:
        yield _header(service)
        listing = first
        while True:
            for memory in listing.memories:
                yield _line(service, memory)
            if listing.next_cursor is None:
                return
            listing = await service.browse(**filters, cursor=listing.next_cursor, limit=EXPORT_PAGE)

    return _download(lines())


async def export_selected(request: Request, service: MemoryService) -> Response:
    """Download the selected memories as JSONL."""
    chosen = [(await service.memory(i)).memory for i in _ids(await request.form())]

    async def lines() -> AsyncIterator[str]:
        yield _header(service)
        for memory in chosen:
            yield _line(service, memory)

    return _download(lines())


async def import_form(request: Request, service: MemoryService) -> Response:
    """Show the import form."""
    return page(request, "import.html", report=None)


async def import_file(request: Request, service: MemoryService) -> Response:
    """Import an uploaded export (ours, a server-memory file or a mem0 export) into this user's memories."""
    form = await request.form(max_part_size=MAX_IMPORT_BYTES)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InvalidInput("no file chosen: pick a .jsonl or .json export to import.")
    raw = await upload.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        raise InvalidInput(f"the file is over {MAX_IMPORT_BYTES // 2**20} MiB: use `agent-memory import` instead.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text: pick a JSONL or JSON export.") from None
    fmt = importers.detect(text)
    # The signed-in user owns everything imported, whatever users the file names.
    report = await import_text(service, text, fmt, user=service.settings.user)
    return page(request, "import.html", report=report)
