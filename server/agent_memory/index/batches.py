"""Embedding one indexing batch: every memory's windows and sentences, and setting aside what the model cannot read."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from agent_memory.embedding import chunking
from agent_memory.embedding.host import ModelHost
from agent_memory.errors import BackendError
from agent_memory.index.protocol import VectorRow
from agent_memory.store.protocol import MemoryStore
from agent_memory.store.rows import PendingRow

logger = logging.getLogger(__name__)


class BatchEmbedder:
    """Turns pending memories into vector rows with the model host."""

    def __init__(self, store: MemoryStore, model: ModelHost) -> None:
        self._store = store
        self._model = model

    async def embed_or_set_aside(self, rows: Sequence[PendingRow]) -> tuple[list[PendingRow], list[VectorRow]]:
        """Embed a batch; when it fails, embed row by row and set aside the rows that fail alone."""
        try:
            return list(rows), await self._embed(rows)
        except BackendError:
            if len(rows) == 1:
                raise
            return await self._embed_one_by_one(rows)

    async def _embed(self, rows: Sequence[PendingRow]) -> list[VectorRow]:
        """Embed rows: a chat-sized one whole and sentence by sentence, a long one as several windows."""
        from agent_memory.index.protocol import VectorRow

        plans = [(r, chunking.plan(r.content)) for r in rows]
        texts = [(text, spans) for _, plan in plans for text, spans in plan]
        blocks = iter(await self._model.embed_spans([t for t, _ in texts], [s for _, s in texts]))
        out = []
        for r, plan in plans:
            vectors = [vector for _ in plan for vector in next(blocks)]
            out += [
                VectorRow(r.id, r.user, r.namespace, r.session_id, r.created_ts, v, n, len(vectors))
                for n, v in enumerate(vectors)
            ]
        return out

    async def _embed_one_by_one(self, rows: Sequence[PendingRow]) -> tuple[list[PendingRow], list[VectorRow]]:
        """Embed a failed batch row by row; set aside rows that fail alone while others succeed.

        Without this, one text the model cannot embed would fail its batch forever and hold back every later
        row. A row is set aside only when others embed fine, so a broken model never sets aside everything.
        """
        good: list[PendingRow] = []
        embedded: list[VectorRow] = []
        bad: list[PendingRow] = []
        error: BackendError | None = None
        for row in rows:
            try:
                embedded.extend(await self._embed([row]))
                good.append(row)
            except BackendError as exc:
                bad.append(row)
                error = exc
        if not good:
            assert error is not None
            raise error
        if bad:
            for row in bad:
                logger.warning("memory %s could not be embedded; keyword search still finds it: %s", row.id, error)
            await self._store.mark_unembeddable([r.id for r in bad])
        return good, embedded


def read_chars(content: str) -> int:
    """Return how many characters the model reads to embed a memory: its text, or each of its windows."""
    return sum(len(text) for text, _ in chunking.plan(content))


def within_budget(rows: list[PendingRow], limit: int) -> list[PendingRow]:
    """Return the first rows the model reads at most `limit` characters for (always the first row); the rest wait."""
    total = 0
    for n, row in enumerate(rows):
        total += read_chars(row.content)
        if total > limit and n > 0:
            return rows[:n]
    return rows
