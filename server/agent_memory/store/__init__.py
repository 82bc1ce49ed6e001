"""The source of truth behind the MemoryStore protocol: SQLite today, its migrations, rows and summaries."""
