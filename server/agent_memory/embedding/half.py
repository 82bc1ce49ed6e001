"""A float16 matrix-vector product for the index's exact search: torch has a vectorised one, numpy has none."""

from __future__ import annotations

from typing import Any

import numpy as np


def half_product(
    rows: np.ndarray[Any, np.dtype[np.float16]], query: np.ndarray[Any, np.dtype[np.float16]]
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Return rows @ query, computed in float16 and handed back in float32."""
    import torch  # here, not at the top: importing this module must not load torch before the model does

    with torch.inference_mode():
        # As a (1, dim) x (dim, rows) matrix product: torch's float16 matrix-vector kernel is several times slower.
        scores = torch.from_numpy(query)[None, :] @ torch.from_numpy(rows).T
    return np.asarray(scores[0].float().numpy(), dtype=np.float32)
