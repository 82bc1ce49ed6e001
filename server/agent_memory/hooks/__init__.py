"""The client-hooks face: `agent-memory hook EVENT` and `agent-memory install-hooks` (docs/hooks.md)."""
