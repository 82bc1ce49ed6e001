"""Conversations people already have (Claude Code transcripts, claude.ai and ChatGPT exports) as turns to store."""
