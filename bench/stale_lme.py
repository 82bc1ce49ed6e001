"""Stale facts on LongMemEval-S's knowledge-update questions: does recall answer with the current value first?

    .venv/bin/python bench/stale_lme.py              # 30 questions (strat60 + more110), real model, one temp data dir

The held-out side of bench/stale_facts.py: real people's updates, worded as they said them, with nothing tuned on
them. Each knowledge-update question gets a namespace holding 40 sentences of the same history's other user turns
(2023), the answer-bearing turns cut to the sentence that carries the fact (the older ones 2024-01, -02, ...; the
newest 2024-06-01, stored last with `remember`), and the question is asked with `recall(limit=5)`:
(a) how often the newest statement is returned and ranks above every older one returned;
(b) then a client as the tool descriptions tell it: it reads `similar` and recalls the subject (the dataset's
    question stands in for the model's own words, a generous stand-in: it is also what is asked afterwards); a
    judge that knows the truth supersedes the older statements it saw; the same share as (a);
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


async def store(service: MemoryService, space: str, older: list[str], noise: list[str]) -> list[str]:
    """Store a question's distractors and older statements in one bulk write; return the older ones' ids."""
    dated = [(t, f"2023-{i % 12 + 1:02d}-10") for i, t in enumerate(noise)]
    dated += [(t, f"2024-0{i + 1}-01") for i, t in enumerate(older)]
    items = [NewMemory(content=t, namespace=space, created_at=when) for t, when in dated]
    ids = [i.id for i in (await service.remember_many(items)).items]
    return [i for i in ids[len(noise) :] if i is not None]


def current_first(ids: list[str], new: str, olds: list[str]) -> bool:
    """Return whether the newest statement is a hit ranked above every older one returned."""
    rank = {i: n for n, i in enumerate(ids)}
    return new in rank and all(rank[new] < rank[o] for o in olds if o in rank)


async def main() -> None:
    """Print (a), (b) and (c) over the knowledge-update questions."""
    chosen = cases(random.Random(5))
    with tempfile.TemporaryDirectory() as tmp:
        service = await MemoryService.open(Settings(data_dir=Path(tmp), model_wait_seconds=300))
        service.clock = lambda: datetime(2024, 7, 1, tzinfo=UTC)
        current = client = flags = returned = 0
        found = dict.fromkeys(("similar", "the statement", "the subject"), 0)
        try:
            stored = [await store(service, f"q-{n}", older, noise) for n, (_, older, _, noise) in enumerate(chosen)]
            assert await service.wait_indexed(1800) is None
            for n, ((question, _, newest, _), olds) in enumerate(zip(chosen, stored, strict=True)):
                space = f"q-{n}"
                assert await service.wait_indexed(60) is None
                said = await service.remember(newest, namespace=space, created_at="2024-06-01")
                assert await service.wait_indexed(60) is None
                hits = (await service.recall(question, namespace=space, limit=5)).hits
                current += current_first([h.id for h in hits], said.id, olds)
                others = [h for h in hits if h.id != said.id and h.id not in olds]
                returned += len(others)
                flags += sum(h.possibly_outdated is not None for h in others)
                # (b): the client reads `similar`, then recalls the subject (the question stands in for the
                # model's own words); the judge supersedes the older statements it saw.
                seen = {"similar": {s.id for s in said.similar}}
                for name, query in (("the statement", newest), ("the subject", question)):
                    seen[name] = seen["similar"] | {h.id for h in (await service.recall(query, namespace=space)).hits}
                for name, ids in seen.items():
                    found[name] += all(o in ids for o in olds)
                if replaced := [o for o in olds if o in seen["the subject"]]:
                    await service.remember(newest, namespace=space, supersedes=replaced)
                hits = (await service.recall(question, namespace=space, limit=5)).hits
                client += current_first([h.id for h in hits], said.id, olds)
        finally:
            await service.close()
    total = len(chosen)
    print(f"{total} LongMemEval-S knowledge-update questions, 40 same-history distractors each")
    print(f"(a) no marking: newest above every older statement {current / total:.1%}")
    print(f"(b) similar + supersede, client recalling the subject: newest above every older {client / total:.1%}")
    for name, value in found.items():
        also = "" if name == "similar" else " (or similar)"
        print(f"    every older statement found by {name}{also}: {value}/{total}")
    print(f"(c) possibly_outdated on the other hits: {flags}/{returned} = {flags / max(returned, 1):.2%}")


if __name__ == "__main__":
    asyncio.run(main())
