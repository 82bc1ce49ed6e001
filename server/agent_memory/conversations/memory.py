"""Turns as the memories the service stores."""

from __future__ import annotations

from agent_memory.conversations.turns import Turn
from agent_memory.models import NewMemory


def as_memory(turn: Turn, namespace: str | None = None) -> NewMemory:
    """Return the memory a turn becomes (its stable id kept, so storing it twice stores it once)."""
    return NewMemory(
        content=turn.text,
        role=turn.role,
        tags=list(turn.tags) or None,
        session_id=turn.session_id,
        namespace=namespace if namespace is not None else turn.namespace,
        metadata=turn.metadata or None,
        created_at=turn.created_at,
        id=turn.id,
    )
