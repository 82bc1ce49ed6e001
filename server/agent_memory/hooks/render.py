"""The text the hooks put into the model's context: short, labelled, and plainly not instructions."""

from __future__ import annotations

from agent_memory.lookup import Briefing, Row


def _line(row: Row) -> str:
    when = row.created_at[:16].replace("T", " ")
    return f"- [{when} {row.role}] {' '.join(row.content.split())}"


def prompt_block(namespace: str, rows: list[Row]) -> str:
    """Return the memories relevant to a prompt, or '' when there are none."""
    if not rows:
        return ""
    lines = "\n".join(_line(r) for r in rows)
    return (
        f"Possibly relevant memories from earlier sessions (agent-memory, project {namespace!r}; "
        f"recall for more):\n{lines}"
    )


def session_block(namespace: str, briefing: Briefing) -> str:
    """Return where the project left off, or '' when nothing is stored for it."""
    parts = []
    if briefing.summary:
        parts.append(f"Summary of earlier work:\n{briefing.summary.strip()}")
    if briefing.facts:
        parts.append("Kept facts:\n" + "\n".join(_line(r) for r in briefing.facts))
    if briefing.turns:
        parts.append("Latest turns:\n" + "\n".join(_line(r) for r in briefing.turns))
    if not parts:
        return ""
    head = f"Where we left off in project {namespace!r} (from agent-memory; use recall for more):"
    return "\n\n".join([head, *parts])
