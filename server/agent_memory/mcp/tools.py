"""The MCP tools: remember, recall, load_recent, summarize_history and forget, over the caller's service.

Each parameter's `Field` description and each docstring is what the model reads in the tool's schema.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, NamedTuple

from mcp.server.mcpserver import Resolve
from mcp_types import CreateMessageResult, TextContent, ToolAnnotations
from pydantic import Field

from agent_memory.mcp.context import Ctx, tool_errors
from agent_memory.mcp.sampling import sample_summary, summary_plan
from agent_memory.mcp.workspace import workspace_service
from agent_memory.models import ForgetResult, RecallResult, RecentResult, RememberResult, SummaryResult
from agent_memory.service import SummaryPlan

RoleArg = Literal["user", "assistant", "system", "fact"]
Tags = Annotated[list[str] | None, Field(description="Labels such as ['preference', 'ui']; lower-cased.")]
Session = Annotated[str | None, Field(description="Conversation id; defaults to this server process's session.")]
Namespace = Annotated[
    str | None,
    Field(description="Project or topic bucket; default: the workspace's project, else the configured one."),
]
SearchNamespace = Annotated[
    str | None,
    Field(description="Project or topic bucket; defaults to the workspace's project; '*' searches every namespace."),
]
SessionFilter = Annotated[str | None, Field(description="Only this conversation's memories; default all sessions.")]
Since = Annotated[str | None, Field(description="Only memories at or after this ISO 8601 date/time, e.g. 2024-05-01.")]
Until = Annotated[
    str | None, Field(description="Only memories at or before this ISO 8601 date/time (a date is inclusive).")
]


def hints(*, read_only: bool, destructive: bool, idempotent: bool, open_world: bool) -> ToolAnnotations:
    """Return the behaviour hints a client shows next to a tool (keyword-only, so none is swapped)."""
    return ToolAnnotations(
        read_only_hint=read_only, destructive_hint=destructive, idempotent_hint=idempotent, open_world_hint=open_world
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
    supersedes: Annotated[
        list[str] | None,
        Field(
            description="Ids of memories this one replaces (the user moved, changed their mind, a fact was"
            " corrected): they stop being recalled but are kept as history. Take ids from the `similar` list of a"
            " previous remember, or from a recall of the fact's subject in a few words (e.g. 'the user's diet')."
        ),
    ] = None,
    expires_at: Annotated[
        str | None, Field(description="When this memory stops being true (ISO 8601), e.g. a plan for one week.")
    ] = None,
    ttl: Annotated[
        float | None, Field(description="Seconds until this memory expires; an alternative to expires_at.")
    ] = None,
) -> RememberResult:
    """Store a message or fact in long-term memory. Repeating the exact same content returns the existing id.

    The result's `similar` lists existing memories that say nearly the same thing. If the new memory changes or
    corrects one of them, call remember again with its id in `supersedes` (the server never replaces a memory
    on its own). A changed fact is often worded unlike the old one, so `similar` misses it: then recall its
    subject in a few words of your own (e.g. 'the user's diet', 'the project deadline'), not the new sentence,
    and supersede the hits the new fact replaces. To edit a memory, remember the corrected text with
    `supersedes=[old id]`."""
    with tool_errors():
        service, used = await workspace_service(ctx, namespace)
        stored = await service.remember(
            content,
            role=role,
            tags=tags,
            session_id=session_id,
            namespace=namespace,
            metadata=metadata,
            created_at=created_at,
            supersedes=supersedes,
            expires_at=expires_at,
            ttl=ttl,
        )
        return stored.model_copy(update={"namespace_used": used})


async def recall(
    query: Annotated[str, Field(description="What to look for, e.g. 'the user's UI preferences'.")],
    ctx: Ctx,
    limit: Annotated[int, Field(description="How many memories to return (1-50).")] = 5,
    tags: Annotated[list[str] | None, Field(description="Only memories carrying all of these tags.")] = None,
    session_id: SessionFilter = None,
    namespace: SearchNamespace = None,
    since: Since = None,
    until: Until = None,
    max_tokens: Annotated[
        int | None, Field(description="Token budget for the returned memories; extra hits are left out.")
    ] = None,
    as_of: Annotated[
        str | None,
        Field(description="Answer with what was current at this ISO 8601 date/time, e.g. 2024-05-01."),
    ] = None,
    include_superseded: Annotated[
        bool, Field(description="Also return memories that newer ones replaced (each says by what and when).")
    ] = False,
) -> RecallResult:
    """Find the stored memories most relevant to a query (semantic and keyword search, best first).

    Only current memories are returned: replaced (superseded) and expired ones are left out unless asked for.
    Each hit lists in `supersedes` the older memories it replaced."""
    with tool_errors():
        service, used = await workspace_service(ctx, namespace)
        found = await service.recall(
            query,
            limit=limit,
            tags=tags,
            session_id=session_id,
            namespace=namespace,
            since=since,
            until=until,
            max_tokens=max_tokens,
            as_of=as_of,
            include_superseded=include_superseded,
        )
        return found.model_copy(update={"namespace_used": used})


async def load_recent(
    ctx: Ctx,
    limit: Annotated[int, Field(description="How many of the newest memories to return (1-200).")] = 20,
    session_id: SessionFilter = None,
    namespace: SearchNamespace = None,
) -> RecentResult:
    """Return the newest stored messages, oldest first, to pick up where a conversation left off."""
    with tool_errors():
        service, used = await workspace_service(ctx, namespace)
        recent = await service.load_recent(limit=limit, session_id=session_id, namespace=namespace)
        return recent.model_copy(update={"namespace_used": used})


async def summarize_history(
    ctx: Ctx,
    sampled: Annotated[CreateMessageResult | SummaryResult | None, Resolve(sample_summary)],
    plan: Annotated[SummaryPlan, Resolve(summary_plan)],
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
    with tool_errors():
        service, _ = await workspace_service(ctx, namespace)
        return await service.summarize_history(
            sampled_text=text,
            session_id=session_id,
            namespace=namespace,
            limit=limit,
            since=since,
            focus=focus,
        )


async def forget(
    id: Annotated[str, Field(description="The id of the memory to delete, as returned by remember or recall.")],
    ctx: Ctx,
    namespace: Annotated[
        str | None,
        Field(description="The memory's namespace (a recall hit shows it); default the workspace's."),
    ] = None,
) -> ForgetResult:
    """Delete one memory permanently, from storage, the search index and stored summaries."""
    with tool_errors():
        service, _ = await workspace_service(ctx, namespace)
        return await service.forget(id, namespace=namespace)


class Tool(NamedTuple):
    """A tool function with the title and behaviour hints it is listed with."""

    fn: Callable[..., Awaitable[Any]]
    title: str
    annotations: ToolAnnotations


TOOLS = (
    Tool(remember, "Remember", hints(read_only=False, destructive=False, idempotent=True, open_world=False)),
    Tool(recall, "Recall", hints(read_only=True, destructive=False, idempotent=True, open_world=False)),
    Tool(
        load_recent,
        "Load recent messages",
        hints(read_only=True, destructive=False, idempotent=True, open_world=False),
    ),
    Tool(
        summarize_history,
        "Summarize history",
        hints(read_only=False, destructive=False, idempotent=False, open_world=True),
    ),
    Tool(forget, "Forget", hints(read_only=False, destructive=True, idempotent=True, open_world=False)),
)
