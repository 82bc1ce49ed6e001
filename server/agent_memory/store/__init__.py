"""Storage: SQLite (source of truth) and LanceDB (derived vector index)."""
