"""Embedding throughput of the real model: texts/s and tokens/s for chat snippets and short messages.

    .venv/bin/python bench/embedding.py              # 512 texts of each kind, best of 2 rounds

Compares slicing in arrival order (what the indexer did before) with what it does now: batches of
indexer.BATCH texts, sorted by token count, cut into slices of EMBED_SLICE (BackgroundModel.embed). Both run
interleaved, so a busy machine slows both alike. Texts are bench/perf.py's LongMemEval snippets (~300 chars)
and their first 60 characters (a short message).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time

from agent_memory.config import DEFAULT_MODEL
from agent_memory.embedder import EMBED_SLICE, BackgroundModel, SentenceTransformerEmbedder
from agent_memory.indexer import BATCH
from perf import DATA, corpus


async def arrival_order(model: BackgroundModel, texts: list[str]) -> None:
    """Embed slices of EMBED_SLICE in the order given."""
    for i in range(0, len(texts), EMBED_SLICE):
        await asyncio.to_thread(model.embedder.embed, texts[i : i + EMBED_SLICE])


async def product(model: BackgroundModel, texts: list[str]) -> None:
    """Embed as the indexer does: batches of BATCH through BackgroundModel.embed."""
    for i in range(0, len(texts), BATCH):
        await model.embed(texts[i : i + BATCH])


async def main() -> None:
    """Print texts/s and tokens/s per text kind and strategy."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    random.seed(1)
    pool = corpus(DATA, 3000)
    kinds = {"snippets": random.sample(pool, args.texts), "short": [t[:60] for t in random.sample(pool, args.texts)]}
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL)
    model = BackgroundModel(embedder)
    model.start()
    if not await model.wait(300):
        raise SystemExit(model.error)
    await product(model, kinds["snippets"][:64])  # warm-up
    print(f"model loaded with {embedder.backend}")
    for kind, texts in kinds.items():
        tokens = sum(embedder.token_counts(texts))
        for name, run in (("arrival order", arrival_order), ("sorted batches", product)):
            best = float("inf")
            for _ in range(args.rounds):
                start = time.perf_counter()
                await run(model, texts)
                best = min(best, time.perf_counter() - start)
            print(
                f"{kind:8} ~{statistics.mean(map(len, texts)):.0f} chars, {tokens / len(texts):.1f} tokens, "
                f"{name:14}: {len(texts) / best:6.0f} texts/s, {tokens / best:6.0f} tokens/s"
            )


if __name__ == "__main__":
    asyncio.run(main())
