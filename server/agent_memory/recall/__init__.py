"""The retrieval pipeline: candidates, fusion and the whole score, time expressions."""
