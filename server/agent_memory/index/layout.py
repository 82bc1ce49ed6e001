"""The vector table's row layout in Arrow: its schema, and VectorRows laid out in it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from agent_memory.index.protocol import VectorRow

# The columns the exact search loads: everything but the key, which it rebuilds from id and chunk.
EXACT_SEARCH_COLUMNS = ["id", "chunk", "windows", "user", "namespace", "session_id", "created_ts", "vector"]


def schema(dim: int) -> pa.Schema:
    """Return the schema of a table of `dim`-dimensional rows."""
    return pa.schema(
        [
            pa.field("key", pa.string(), nullable=False),
            pa.field("id", pa.string(), nullable=False),
            pa.field("chunk", pa.int32(), nullable=False),
            pa.field("windows", pa.int32(), nullable=False),
            pa.field("user", pa.string(), nullable=False),
            pa.field("namespace", pa.string(), nullable=False),
            pa.field("session_id", pa.string(), nullable=False),
            pa.field("created_ts", pa.float64(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
        ]
    )


def to_arrow(rows: Sequence[VectorRow], layout: pa.Schema) -> pa.Table:
    """Return the rows as an Arrow table in this layout."""
    dim = layout.field("vector").type.list_size
    return pa.table(
        {
            "key": [r.key for r in rows],
            "id": [r.id for r in rows],
            "chunk": [r.chunk for r in rows],
            "windows": [r.windows for r in rows],
            "user": [r.user for r in rows],
            "namespace": [r.namespace for r in rows],
            "session_id": [r.session_id for r in rows],
            "created_ts": [r.created_ts for r in rows],
            "vector": pa.FixedSizeListArray.from_arrays(
                pa.array(np.concatenate([r.vector for r in rows]).astype(np.float32)), dim
            ),
        },
        schema=layout,
    )
