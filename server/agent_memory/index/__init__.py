"""The derived vector index: the indexer that keeps it in step with the store, LanceDB, exact in-memory search."""
