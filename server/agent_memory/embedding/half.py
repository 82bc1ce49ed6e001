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
        scores = torch.from_numpy(rows) @ torch.from_numpy(query)
    return np.asarray(scores.float().numpy(), dtype=np.float32)
