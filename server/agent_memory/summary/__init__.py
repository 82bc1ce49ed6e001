"""Incremental summaries of stored history over pluggable backends."""
