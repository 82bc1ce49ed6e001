"""Stale facts: after a fact changes, does recall answer with the current value first?

    .venv/bin/python bench/stale_facts.py             # 200 synthetic changes, real model, one temp data dir

Each change of bench/changed_facts.py gets a namespace of its own holding the old statement (2024-01-01), one
fact of each other kind, and 40 LongMemEval-S user sentences (distractors, 2023), then the new statement
(2024-06-01); the kind's question is asked with `recall(limit=5)`:
(a) nobody marks anything: how often the new statement ranks above the old one (or the old is not returned);
(b) then, in the same namespace, a client as the tool descriptions tell it: it reads `similar` from remember
    and, when the old memory is not among them, recalls the new statement's subject; a judge that knows the
    truth (standing in for the client's model) supersedes the hits that are the old statement; the share where
    the new one ranks above the old;
(c) `possibly_outdated` flags on hits that conflict with nothing (the distractors and the other kinds' facts):
    their share of all such hits returned.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from agent_memory.config import Settings
from agent_memory.models import NewMemory
from agent_memory.service import MemoryService
from changed_facts import KINDS, changed_facts, question
from similar import longmemeval


def _rank(ids: list[str], memory_id: str) -> int:
    return ids.index(memory_id) if memory_id in ids else len(ids) + 1


async def store_case(service: MemoryService, space: str, old: str, others: list[str], noise: list[str]) -> str:
    """Store a case's distractors and its old statement in one bulk write; return the old one's id."""
    items = [NewMemory(content=t, namespace=space, created_at=f"2023-{n % 12 + 1:02d}-10") for n, t in enumerate(noise)]
    items += [NewMemory(content=t, role="fact", namespace=space, created_at="2024-01-01") for t in [*others, old]]
    stored = (await service.remember_many(items)).items[-1].id
    assert stored is not None
    return stored


async def main() -> None:
    """Print (a), (b) and (c) over the synthetic changes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--distractors", type=int, default=40)
    args = parser.parse_args()
    rng = random.Random(11)
    _, pool = longmemeval(rng, 0)
    facts = changed_facts()[: args.cases]
    with tempfile.TemporaryDirectory() as tmp:
        service = await MemoryService.open(Settings(data_dir=Path(tmp), model_wait_seconds=300))
        service.clock = lambda: datetime(2024, 7, 1, tzinfo=UTC)
        try:
            cases = []
            for n, (kind, old, new) in enumerate(facts):
                others = [o.format(v[0]) for o, _, v in KINDS if o != kind]
                noise = rng.sample(pool, args.distractors)
                cases.append((kind, new, await store_case(service, f"case-{n}", old, others, noise)))
            assert await service.wait_indexed(1800) is None
            unmarked = client = flags = returned = 0
            for n, (kind, new, old) in enumerate(cases):
                space = f"case-{n}"
                # (a): the new statement stored as it is, nothing marked. Facts change days apart: the index has
                # caught up with the previous case's writes, so `similar` has the model free (in a burst of writes
                # it keeps to shared words, and the client recalls the subject; docs/performance.md).
                assert await service.wait_indexed(60) is None
                stored = await service.remember(new, role="fact", namespace=space, created_at="2024-06-01")
                assert await service.wait_indexed(60) is None
                hits = (await service.recall(question(kind), namespace=space, limit=5)).hits
                ids = [h.id for h in hits]
                unmarked += _rank(ids, stored.id) < _rank(ids, old)
                unrelated = [h for h in hits if h.id not in (stored.id, old)]
                returned += len(unrelated)
                flags += sum(h.possibly_outdated is not None for h in unrelated)
                # (b): the same store, the client acting on `similar` (or a recall when the old one is not there).
                seen = [s.id for s in stored.similar]
                if old not in seen:
                    seen = [h.id for h in (await service.recall(new, namespace=space, limit=5)).hits]
                if old in seen:  # the judge supersedes what is the same fact's old value
                    await service.remember(new, role="fact", namespace=space, supersedes=[old])
                ids = [h.id for h in (await service.recall(question(kind), namespace=space, limit=5)).hits]
                client += _rank(ids, stored.id) < _rank(ids, old)
        finally:
            await service.close()
    total = len(cases)
    print(f"{total} changed facts, {args.distractors} LongMemEval-S distractors and 9 other facts each")
    print(f"(a) no marking: current above outdated {unmarked / total:.1%}")
    print(f"(b) similar + supersede as a client would: {client / total:.1%}")
    print(
        f"(c) possibly_outdated on hits that conflict with nothing: {flags}/{returned} = {flags / max(returned, 1):.2%}"
    )


if __name__ == "__main__":
    asyncio.run(main())
