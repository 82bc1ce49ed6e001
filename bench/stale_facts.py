"""Stale facts: after a fact changes, does recall answer with the current value first?

    .venv/bin/python bench/stale_facts.py             # 200 synthetic changes, real model, one temp data dir

Each change of bench/changed_facts.py gets a namespace of its own holding the old statement (2024-01-01), one
fact of each other kind, and 40 LongMemEval-S user sentences (distractors, 2023), then the new statement
(2024-06-01); the kind's question is asked with `recall(limit=5)`:
(a) nobody marks anything: how often the new statement ranks above the old one (or the old is not returned);
(b) then, in the same namespace, a client as the tool descriptions tell it: it reads `similar` from remember
    and, when the old memory is not among them, recalls the subject in a few words of its own (the kind's
    `subject`, standing in for the model's words); a judge that knows the truth (standing in for the client's
    model) supersedes the hits that are the old statement; the share where the new one ranks above the old.
    Printed for each client of CLIENTS (one that recalls nothing, the new statement, the subject, both, or the
    subject in words away from the old statement);
(c) `possibly_outdated` flags on hits that conflict with nothing (the distractors and the other kinds' facts):
    their share of all such hits returned.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from agent_memory.config import Settings
from agent_memory.models import NewMemory, Similar
from agent_memory.service import MemoryService
from changed_facts import KINDS, changed_facts, question, subject
from similar import longmemeval

# What the client recalls when the old memory is not in `similar`: nothing, the new statement as it is, the
# subject in its own words (what the tool descriptions and server instructions tell a model), or both; and the
# subject worded away from the old statement (changed_facts.OTHER_SUBJECTS).
CLIENTS = ("nothing", "the statement", "the subject", "both", "the subject in other words")
SHIPPED = "the subject"


def _rank(ids: list[str], memory_id: str) -> int:
    return ids.index(memory_id) if memory_id in ids else len(ids) + 1


async def client_finds(
    service: MemoryService, space: str, similar: list[Similar], new: str, kind: str, old: str
) -> dict[str, bool]:
    """Return, per client of CLIENTS, whether it finds the old memory: in `similar`, else in what it recalls."""
    listed = old in [s.id for s in similar]
    by_statement = old in [h.id for h in (await service.recall(new, namespace=space, limit=5)).hits]
    by_subject = old in [h.id for h in (await service.recall(subject(kind), namespace=space, limit=5)).hits]
    by_other = old in [h.id for h in (await service.recall(subject(kind, True), namespace=space, limit=5)).hits]
    found = (listed, listed or by_statement, listed or by_subject, listed or by_statement or by_subject)
    found += (listed or by_other,)
    return dict(zip(CLIENTS, found, strict=True))


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
    parser.add_argument("--misses", action="store_true", help="print the cases (b) misses or finds no old fact for")
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
            unmarked = flags = returned = 0
            clients, finds = dict.fromkeys(CLIENTS, 0), dict.fromkeys(CLIENTS, 0)
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
                # (b): the same store, the client acting on `similar`, else recalling what the descriptions say.
                won = _rank(ids, stored.id) < _rank(ids, old)
                found = await client_finds(service, space, stored.similar, new, kind, old)
                if any(found.values()):  # the judge supersedes what is the same fact's old value
                    await service.remember(new, role="fact", namespace=space, supersedes=[old])
                final = (await service.recall(question(kind), namespace=space, limit=5)).hits
                ids = [h.id for h in final]
                after = _rank(ids, stored.id) < _rank(ids, old)
                for client, hit in found.items():
                    clients[client] += after if hit else won
                    finds[client] += hit
                if args.misses and not found[SHIPPED]:
                    print(f"(b) old not found, case {n}: {new!r}; won unmarked: {won}; {found}", file=sys.stderr)
                if args.misses and not (after if found[SHIPPED] else won):
                    shown = [h.content[:60] for h in final]
                    print(f"(b) miss, case {n}: {new!r}; found {found}; hits {shown}", file=sys.stderr)
        finally:
            await service.close()
    total = len(cases)
    print(f"{total} changed facts, {args.distractors} LongMemEval-S distractors and 9 other facts each")
    print(f"(a) no marking: current above outdated {unmarked / total:.1%}")
    for name, value in clients.items():
        shipped = " (what the tool descriptions say)" if name == SHIPPED else ""
        print(f"(b) similar + supersede, client recalling {name}{shipped}: {value / total:.1%}", end="")
        print(f" (old statement found in {finds[name]}/{total})")
    print(
        f"(c) possibly_outdated on hits that conflict with nothing: {flags}/{returned} = {flags / max(returned, 1):.2%}"
    )


if __name__ == "__main__":
    asyncio.run(main())
