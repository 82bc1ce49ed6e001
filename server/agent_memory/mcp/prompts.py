"""The MCP resource, prompt and argument completion: recent memories, and where earlier conversations left off."""

from __future__ import annotations

import json

from mcp_types import Completion, CompletionArgument, CompletionContext, PromptReference, ResourceTemplateReference

from agent_memory.errors import AgentMemoryError
from agent_memory.mcp.context import Ctx, OpenService, scoped
from agent_memory.mcp.workspace import workspace_service

PROMPT = "where_we_left_off"


async def recent_memories(opened: OpenService) -> str:
    """Return the newest memories as JSON."""
    result = await scoped(opened.current()).load_recent(limit=20)
    return json.dumps(result.model_dump(mode="json"), ensure_ascii=False, indent=2)


async def complete(
    opened: OpenService,
    ref: PromptReference | ResourceTemplateReference,
    argument: CompletionArgument,
    _: CompletionContext | None,
) -> Completion | None:
    """Offer the caller's own namespaces for the prompt's namespace argument."""
    if isinstance(ref, PromptReference) and ref.name == PROMPT and argument.name == "namespace":
        names = await scoped(opened.current()).namespaces(argument.value)
        return Completion(values=names, total=len(names), has_more=False)
    return None


async def where_we_left_off(ctx: Ctx, namespace: str | None = None) -> str:
    """Return a summary plus recent messages as one user message."""
    try:
        service, _ = await workspace_service(ctx, namespace)
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
