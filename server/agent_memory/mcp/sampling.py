"""Summaries written by the client's own LLM (MCP sampling) when the server has no API key."""

from __future__ import annotations

import logging
import warnings
from typing import Annotated

from mcp.server.mcpserver import Resolve, Sample
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import SamplingMessage, TextContent
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from agent_memory.mcp.context import Ctx, caller_service, tool_errors
from agent_memory.mcp.workspace import workspace_service
from agent_memory.models import SummaryResult
from agent_memory.service import SUMMARY_SYSTEM_PROMPT as SYSTEM_PROMPT
from agent_memory.service import SummaryPlan

logger = logging.getLogger(__name__)


async def summary_plan(
    ctx: Ctx,
    session_id: str | None = None,
    namespace: str | None = None,
    limit: int | None = None,
    since: str | None = None,
    focus: str | None = None,
) -> SummaryPlan:
    """Plan the summary once, so the prompt sampled and the ids stored as covered are the same messages."""
    with tool_errors():
        service, _ = await workspace_service(ctx, namespace)
        return await service.plan_summary(
            session_id=session_id, namespace=namespace, limit=limit, since=since, focus=focus
        )


async def sample_summary(
    ctx: Ctx, plan: Annotated[SummaryPlan, Resolve(summary_plan)]
) -> Sample | SummaryResult | None:
    """Ask the client's LLM for the summary when no API key is set and the client offers sampling."""
    capabilities = ctx.client_capabilities
    if not caller_service(ctx).wants_sampling() or capabilities is None or capabilities.sampling is None:
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
    with tool_errors():
        # The plan already holds the namespace, so the configured service stores the summary for it.
        return await caller_service(ctx).summarize_history(plan, sampled_text=text)
