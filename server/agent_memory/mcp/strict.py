"""Tools that refuse arguments they do not take: a misspelt `supersedes` must fail, not be dropped silently.

The SDK's generated argument model ignores unknown keys; each tool's model is replaced by a subclass that names
the unknown ones and the valid ones, which the SDK reports as a tool error the model can read and correct.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp_types import ToolAnnotations
from pydantic import create_model, model_validator


def strict_tool(fn: Callable[..., Awaitable[Any]], title: str, annotations: ToolAnnotations) -> Tool:
    """Return the SDK's tool for `fn`, with an argument model that rejects unknown arguments."""
    tool = Tool.from_function(fn, title=title, annotations=annotations)
    tool.fn_metadata.arg_model = strict_model(tool.name, tool.fn_metadata.arg_model)
    return tool


def strict_model(tool_name: str, model: type[ArgModelBase]) -> type[ArgModelBase]:
    """Return a subclass of a tool's argument model whose validation fails on an argument it does not declare."""
    valid = sorted(field.alias or name for name, field in model.model_fields.items())

    def reject_unknown(data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(str(key) for key in data if key not in valid)
            if unknown:
                raise ValueError(
                    f"{tool_name} does not take {', '.join(repr(u) for u in unknown)}: nothing was done."
                    f" Its arguments are: {', '.join(valid)}."
                )
        return data

    check: Any = model_validator(mode="before")(reject_unknown)
    return create_model(model.__name__, __base__=model, __validators__={"reject_unknown": check})
