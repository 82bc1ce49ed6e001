"""The embedding model: the Embedder protocol, loading, hosting for async code, chunking.

The only package that imports torch, transformers or sentence-transformers.
"""
