"""Embedding throughput of the real model: memories/s and tokens/s for chat snippets and short messages.

    .venv/bin/python bench/embedding.py              # 512 texts of each kind, best of 2 rounds

Three ways to embed the same memories, in batches of indexer.BATCH through ModelHost (sorted by token
count, cut into slices of EMBED_SLICE): each text alone (one vector a memory); the text and each of its
sentences in passes of their own (chunking VERSION 2: every token read twice); and what the indexer does now,
the sentences in passes of their own and the text's vector pooled from their tokens (VERSION 3: read once).
They run interleaved, so a busy machine slows all alike. Texts are bench/perf.py's LongMemEval snippets (~300
chars) and their first 60 characters (a short message). Tokens/s counts the tokens of the texts themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable

from agent_memory.config import DEFAULT_MODEL
from agent_memory.embedding.chunking import flatten, plan
from agent_memory.embedding.embedder import ModelEmbedder
from agent_memory.embedding.host import ModelHost
from agent_memory.index.indexer import BATCH
from perf import DATA, corpus


async def alone(model: ModelHost, texts: list[str]) -> None:
    """Embed each text as one vector."""
    for i in range(0, len(texts), BATCH):
        await model.embed(texts[i : i + BATCH])


async def twice(model: ModelHost, texts: list[str]) -> None:
    """Embed each text and, for a text of several sentences, each sentence in a pass of its own."""
    for i in range(0, len(texts), BATCH):
        split = [p for t in texts[i : i + BATCH] for p in plan(t)]
        await model.embed(flatten([t for t, _ in split], [s for _, s in split]))


async def once(model: ModelHost, texts: list[str]) -> None:
    """Embed each text's sentences in passes of their own and pool the text's vector from them."""
    for i in range(0, len(texts), BATCH):
        split = [p for t in texts[i : i + BATCH] for p in plan(t)]
        await model.embed_spans([t for t, _ in split], [s for _, s in split])


STRATEGIES: dict[str, Callable[[ModelHost, list[str]], Awaitable[None]]] = {
    "text alone": alone,
    "+ sentences, read twice": twice,
    "+ sentences, read once": once,
}


async def main() -> None:
    """Print memories/s and tokens/s per text kind and strategy."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    random.seed(1)
    pool = corpus(DATA, 3000)
    kinds = {"snippets": random.sample(pool, args.texts), "short": [t[:60] for t in random.sample(pool, args.texts)]}
    embedder = ModelEmbedder(DEFAULT_MODEL)
    model = ModelHost(embedder)
    model.start()
    if not await model.wait(300):
        raise SystemExit(model.error)
    await alone(model, kinds["snippets"][:64])  # warm-up
    print(f"model loaded with {embedder.backend} ({embedder.precision})")
    for kind, texts in kinds.items():
        tokens = sum(embedder.token_counts(texts))
        rows = sum(len(flatten([t], [s])) for text in texts for t, s in plan(text)) / len(texts)
        best = dict.fromkeys(STRATEGIES, float("inf"))
        for _ in range(args.rounds):
            for name, run in STRATEGIES.items():
                start = time.perf_counter()
                await run(model, texts)
                best[name] = min(best[name], time.perf_counter() - start)
        chars = statistics.mean(map(len, texts))
        print(f"{kind}: ~{chars:.0f} chars, {tokens / len(texts):.1f} tokens, {rows:.2f} vectors with sentences")
        for name, seconds in best.items():
            print(f"  {name:24}: {len(texts) / seconds:6.0f} memories/s, {tokens / seconds:6.0f} tokens/s")


if __name__ == "__main__":
    asyncio.run(main())
