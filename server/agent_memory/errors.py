"""Exceptions raised by agent-memory.

    AgentMemoryError            base of everything below; its message is written for the caller
    ├── InvalidInput            an argument is malformed or outside a configured limit
    ├── NotFound                a memory id does not exist in the caller's scope
    ├── ConfigError             a setting is wrong (bad data dir, unreadable model path ...)
    └── BackendError            an outside system failed (LLM API, vector index)

The faces (MCP server, CLI) turn these into tool errors or exit codes; messages never carry tracebacks.
"""


class AgentMemoryError(Exception):
    """Base error; the message says what to do about it."""


class InvalidInput(AgentMemoryError):
    """An argument is malformed or over a limit."""


class NotFound(AgentMemoryError):
    """The requested memory does not exist in this scope."""


class ConfigError(AgentMemoryError):
    """A setting is wrong; the message names the setting."""


class BackendError(AgentMemoryError):
    """An outside system (LLM API, vector index) failed."""
