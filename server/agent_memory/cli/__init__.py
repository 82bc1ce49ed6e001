"""The command-line face: `agent-memory` and its commands."""
