"""The MCP face: tools, a resource and a prompt over the memory service. The only module importing `mcp`."""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Any, Literal

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context, MCPServer, Resolve, Sample
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import (
    Completion,
    CompletionArgument,
    CompletionContext,
    CreateMessageResult,
    PromptReference,
    ResourceTemplateReference,
    SamplingMessage,
    TextContent,
    ToolAnnotations,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field

from agent_memory import __version__
from agent_memory.config import Settings
from agent_memory.embedding.embedder import Embedder
from agent_memory.errors import AgentMemoryError
from agent_memory.mcp.auth import auth_for
from agent_memory.models import ForgetResult, RecallResult, RecentResult, RememberResult, SummaryResult
from agent_memory.service import MemoryService
from agent_memory.summary.backends import SYSTEM_PROMPT, SummaryPlan

logger = logging.getLogger(__name__)

INSTRUCTIONS = """Persistent memory across conversations.
- Call `recall` with a short description of what you need before answering questions that may depend on
  earlier conversations (preferences, names, decisions, ongoing work).
- Call `remember` for facts, preferences and decisions worth keeping; one memory per fact.
- `load_recent` gives the latest messages; `summarize_history` a compact summary of a session or project.
- `forget` deletes a memory by id when the user asks."""

Ctx = Context[MemoryService, Any]
RoleArg = Literal["user", "assistant", "system", "fact"]
Tags = Annotated[list[str] | None, Field(description="Labels such as ['preference', 'ui']; lower-cased.")]
Session = Annotated[str | None, Field(description="Conversation id; defaults to this server process's session.")]
Namespace = Annotated[str | None, Field(description="Project or topic bucket; defaults to the configured namespace.")]
SessionFilter = Annotated[str | None, Field(description="Only this conversation's memories; default all sessions.")]
Since = Annotated[str | None, Field(description="Only memories at or after this ISO 8601 date/time, e.g. 2024-05-01.")]
Until = Annotated[
    str | None, Field(description="Only memories at or before this ISO 8601 date/time (a date is inclusive).")
]


@contextmanager
def _tool_errors() -> Iterator[None]:
    """Turn service errors into tool errors the model can read and act on."""
    try:
        yield
    except AgentMemoryError as exc:
        raise ToolError(str(exc)) from None


def _hints(*, read_only: bool, destructive: bool, idempotent: bool, open_world: bool) -> ToolAnnotations:
    return ToolAnnotations(
        read_only_hint=read_only, destructive_hint=destructive, idempotent_hint=idempotent, open_world_hint=open_world
    )


def _service(ctx: Ctx) -> MemoryService:
    headers = ctx.headers or {}
    return _scoped(ctx.request_context.lifespan_context, headers.get("mcp-session-id"))


def _scoped(service: MemoryService, http_session: str | None = None) -> MemoryService:
    """Narrow the shared service to the bearer token's user and the HTTP session; stdio keeps the configured scope."""
    token = get_access_token()
    if token is None and http_session is None:
        return service
    session = f"http-{hashlib.sha256(http_session.encode()).hexdigest()[:16]}" if http_session else None
    return service.scoped(token.client_id if token else service.settings.user, session)


async def _summary_plan(
    ctx: Ctx,
    session_id: str | None = None,
    namespace: str | None = None,
    limit: int | None = None,
    since: str | None = None,
    focus: str | None = None,
) -> SummaryPlan:
    """Plan the summary once, so the prompt sampled and the ids stored as covered are the same messages."""
    with _tool_errors():
        return await _service(ctx).plan_summary(
            session_id=session_id, namespace=namespace, limit=limit, since=since, focus=focus
        )


async def _sample_summary(
    ctx: Ctx, plan: Annotated[SummaryPlan, Resolve(_summary_plan)]
) -> Sample | SummaryResult | None:
    """Ask the client's LLM for the summary when no API key is set and the client offers sampling."""
    capabilities = ctx.client_capabilities
    if not _service(ctx).wants_sampling() or capabilities is None or capabilities.sampling is None:
        return None
    if plan.request is None:
        return None
    message = SamplingMessage(role="user", content=TextContent(type="text", text=plan.request.prompt()))
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return Sample([message], max_tokens=600, system_prompt=SYSTEM_PROMPT)
    # Over the legacy handshake we send the request ourselves, so a client that declines or fails it
    # gets the extractive summary instead of a failed tool call, and the summary is stored against
    # exactly the plan the prompt was made from.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            result = await ctx.session.create_message(
                [message], max_tokens=600, system_prompt=SYSTEM_PROMPT, related_request_id=ctx.request_id
            )
    except MCPError as exc:
        logger.info("client sampling failed (%s); using the extractive summary", exc)
        return None
    text = result.content.text if isinstance(result.content, TextContent) else None
    with _tool_errors():
        return await _service(ctx).summarize_history(plan, sampled_text=text)


def build_server(settings: Settings, embedder: Embedder | None = None) -> MCPServer[MemoryService]:
    """Build the MCP server; the service (stores, model loader, indexer) opens in the lifespan."""

    # Static resources get no Context in the SDK, so the lifespan also parks the service here for them.
    opened: list[MemoryService] = []

    @asynccontextmanager
    async def lifespan(_: MCPServer[MemoryService]) -> AsyncIterator[MemoryService]:
        # Opening is fast: the model loads on a background thread, so `initialize` is answered at once.
        service = await MemoryService.open(settings, embedder)
        opened.append(service)
        try:
            yield service
        finally:
            opened.remove(service)
            await service.close()

    auth, verifier = auth_for(settings)
    server: MCPServer[MemoryService] = MCPServer(
        "agent-memory",
        token_verifier=verifier,
        auth=auth,
        title="Agent Memory",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=settings.log_level.upper(),  # type: ignore[arg-type]
    )

    @server.tool(
        title="Remember",
        annotations=_hints(read_only=False, destructive=False, idempotent=True, open_world=False),
    )
    async def remember(
        content: Annotated[str, Field(description="The message or fact to store, in plain words.")],
        ctx: Ctx,
        role: Annotated[RoleArg, Field(description="Who said it; 'fact' for a standalone fact.")] = "user",
        tags: Tags = None,
        session_id: Session = None,
        namespace: Namespace = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="Small JSON object kept with it.")] = None,
        created_at: Annotated[
            str | None, Field(description="When it was said (ISO 8601); defaults to now. For importing history.")
        ] = None,
    ) -> RememberResult:
        """Store a message or fact in long-term memory. Repeating the exact same content returns the existing id."""
        with _tool_errors():
            return await _service(ctx).remember(
                content,
                role=role,
                tags=tags,
                session_id=session_id,
                namespace=namespace,
                metadata=metadata,
                created_at=created_at,
            )

    @server.tool(
        title="Recall",
        annotations=_hints(read_only=True, destructive=False, idempotent=True, open_world=False),
    )
    async def recall(
        query: Annotated[str, Field(description="What to look for, e.g. 'the user's UI preferences'.")],
        ctx: Ctx,
        limit: Annotated[int, Field(description="How many memories to return (1-50).")] = 5,
        tags: Annotated[list[str] | None, Field(description="Only memories carrying all of these tags.")] = None,
        session_id: SessionFilter = None,
        namespace: Namespace = None,
        since: Since = None,
        until: Until = None,
        max_tokens: Annotated[
            int | None, Field(description="Token budget for the returned memories; extra hits are left out.")
        ] = None,
    ) -> RecallResult:
        """Find the stored memories most relevant to a query (semantic and keyword search, best first)."""
        with _tool_errors():
            return await _service(ctx).recall(
                query,
                limit=limit,
                tags=tags,
                session_id=session_id,
                namespace=namespace,
                since=since,
                until=until,
                max_tokens=max_tokens,
            )

    @server.tool(
        title="Load recent messages",
        annotations=_hints(read_only=True, destructive=False, idempotent=True, open_world=False),
    )
    async def load_recent(
        ctx: Ctx,
        limit: Annotated[int, Field(description="How many of the newest memories to return (1-200).")] = 20,
        session_id: SessionFilter = None,
        namespace: Namespace = None,
    ) -> RecentResult:
        """Return the newest stored messages, oldest first, to pick up where a conversation left off."""
        with _tool_errors():
            return await _service(ctx).load_recent(limit=limit, session_id=session_id, namespace=namespace)

    @server.tool(
        title="Summarize history",
        annotations=_hints(read_only=False, destructive=False, idempotent=False, open_world=True),
    )
    async def summarize_history(
        ctx: Ctx,
        sampled: Annotated[CreateMessageResult | SummaryResult | None, Resolve(_sample_summary)],
        plan: Annotated[SummaryPlan, Resolve(_summary_plan)],
        session_id: SessionFilter = None,
        namespace: Namespace = None,
        limit: Annotated[int | None, Field(description="Summarise only the newest N messages.")] = None,
        since: Since = None,
        focus: Annotated[str | None, Field(description="What the summary should concentrate on.")] = None,
    ) -> SummaryResult:
        """Summarise stored history; repeated calls only process messages added since the last summary."""
        if isinstance(sampled, SummaryResult):
            return sampled
        text = None
        if sampled is not None and isinstance(sampled.content, TextContent):
            text = sampled.content.text
        with _tool_errors():
            return await _service(ctx).summarize_history(
                sampled_text=text,
                session_id=session_id,
                namespace=namespace,
                limit=limit,
                since=since,
                focus=focus,
            )

    @server.tool(
        title="Forget",
        annotations=_hints(read_only=False, destructive=True, idempotent=True, open_world=False),
    )
    async def forget(
        id: Annotated[str, Field(description="The id of the memory to delete, as returned by remember or recall.")],
        ctx: Ctx,
        namespace: Annotated[
            str | None, Field(description="The memory's namespace (a recall hit shows it); default the configured one.")
        ] = None,
    ) -> ForgetResult:
        """Delete one memory permanently, from storage, the search index and stored summaries."""
        with _tool_errors():
            return await _service(ctx).forget(id, namespace=namespace)

    @server.resource(
        "memory://recent",
        name="recent-memories",
        title="Recent memories",
        description="The 20 newest memories in the default namespace, oldest first, as JSON.",
        mime_type="application/json",
    )
    async def recent_memories() -> str:
        """Return the newest memories as JSON."""
        result = await _scoped(opened[-1]).load_recent(limit=20)
        return json.dumps(result.model_dump(mode="json"), ensure_ascii=False, indent=2)

    @server.completion()  # type: ignore[no-untyped-call, untyped-decorator]  # the SDK leaves it untyped
    async def complete(
        ref: PromptReference | ResourceTemplateReference, argument: CompletionArgument, _: CompletionContext | None
    ) -> Completion | None:
        """Offer the caller's own namespaces for the prompt's namespace argument."""
        if isinstance(ref, PromptReference) and ref.name == "where_we_left_off" and argument.name == "namespace":
            names = await _scoped(opened[-1]).namespaces(argument.value)
            return Completion(values=names, total=len(names), has_more=False)
        return None

    @server.prompt(
        name="where_we_left_off",
        title="Where we left off",
        description="Bring the summary and the latest messages of earlier conversations into this one.",
    )
    async def where_we_left_off(ctx: Ctx, namespace: str | None = None) -> str:
        """Return a summary plus recent messages as one user message."""
        service = _service(ctx)
        try:
            summary = await service.summarize_history(namespace=namespace)
            recent = await service.load_recent(limit=10, namespace=namespace)
        except AgentMemoryError as exc:
            return f"(memory unavailable: {exc})"
        lines = [f"- [{m.created_at[:16].replace('T', ' ')}] {m.role}: {m.content}" for m in recent.messages]
        return (
            "Here is where we left off in earlier conversations.\n\n"
            f"Summary ({summary.covers.count} messages):\n{summary.summary}\n\n"
            "Most recent messages:\n" + ("\n".join(lines) if lines else "(none)")
        )

    return server
