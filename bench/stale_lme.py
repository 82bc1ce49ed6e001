"""Stale facts on LongMemEval-S's knowledge-update questions: does recall answer with the current value first?

    .venv/bin/python bench/stale_lme.py              # 30 questions (strat60 + more110), real model, one temp data dir

The held-out side of bench/stale_facts.py: real people's updates, worded as they said them, with nothing tuned on
them. Each knowledge-update question gets a namespace holding 40 sentences of the same history's other user turns
(2023), the answer-bearing turns cut to the sentence that carries the fact (the older ones 2024-01, -02, ...; the
newest 2024-06-01), and the question is asked with `recall(limit=5)`:
(a) how often the newest statement ranks above every older one (or they are not returned);
(c) `possibly_outdated` flags on the other hits. Those are the same person's sentences on the same topics, so some
    may truly be outdated by a later one: an upper bound of false flags, not a count.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from agent_memory.config import Settings
from agent_memory.embedding.chunking import sentences
from agent_memory.models import NewMemory
from agent_memory.service import MemoryService
from similar import DATA, SETS, _fact_sentence

Case = tuple[str, list[str], str, list[str]]  # question, older statements, newest statement, distractors


def cases(rng: random.Random) -> list[Case]:
    """Return every knowledge-update question with at least two answer-bearing user turns."""
    found = []
    for name in SETS:
        with gzip.open(DATA / name) as f:
            questions = json.load(f)
        for q in questions:
            if q["question_type"] != "knowledge-update":
                continue
            facts, others = [], []
            for i in sorted(range(len(q["haystack_dates"])), key=lambda i: q["haystack_dates"][i]):
                for turn in q["haystack_sessions"][i]:
                    if turn["role"] == "user":
                        (facts if turn.get("has_answer") else others).append(turn["content"])
            if len(facts) < 2:
                continue
            said = [s for t in rng.sample(others, min(20, len(others))) for s in sentences(t) if len(s) > 30]
            said = rng.sample(said, min(40, len(said)))
            stated = [_fact_sentence(t, q["question"] + " " + str(q["answer"])) for t in facts]
            found.append((q["question"], stated[:-1], stated[-1], said))
    return found


async def main() -> None:
    """Print (a) and (c) over the knowledge-update questions."""
    chosen = cases(random.Random(5))
    with tempfile.TemporaryDirectory() as tmp:
        service = await MemoryService.open(Settings(data_dir=Path(tmp), model_wait_seconds=300))
        service.clock = lambda: datetime(2024, 7, 1, tzinfo=UTC)
        current = flags = returned = 0
        try:
            stored = []
            for n, (_, older, newest, noise) in enumerate(chosen):
                space = f"q-{n}"
                dated = [(t, f"2023-{i % 12 + 1:02d}-10") for i, t in enumerate(noise)]
                dated += [(t, f"2024-0{i + 1}-01") for i, t in enumerate(older)] + [(newest, "2024-06-01")]
                items = [NewMemory(content=t, namespace=space, created_at=when) for t, when in dated]
                ids = [i.id for i in (await service.remember_many(items)).items]
                stored.append((space, ids[len(noise) : -1], ids[-1]))
            assert await service.wait_indexed(1800) is None
            for (question, *_), (space, olds, new) in zip(chosen, stored, strict=True):
                hits = (await service.recall(question, namespace=space, limit=5)).hits
                ids = [h.id for h in hits]
                rank = {i: n for n, i in enumerate(ids)}
                current += all(rank.get(new, 9) < rank.get(o, 9) or o not in rank for o in olds) and new in rank
                others = [h for h in hits if h.id != new and h.id not in olds]
                returned += len(others)
                flags += sum(h.possibly_outdated is not None for h in others)
        finally:
            await service.close()
    print(f"{len(chosen)} LongMemEval-S knowledge-update questions, 40 same-history distractors each")
    print(f"(a) no marking: newest above every older statement {current / len(chosen):.1%}")
    print(f"(c) possibly_outdated on the other hits: {flags}/{returned} = {flags / max(returned, 1):.2%}")


if __name__ == "__main__":
    asyncio.run(main())
