"""Measure `remember`'s `similar` thresholds: changed facts it should find, unrelated memories it should not.

    .venv/bin/python bench/similar.py                # 200 synthetic changes + LongMemEval knowledge updates

Positives: each synthetic change (bench/changed_facts.py: the new statement should find the old one), and each
LongMemEval-S knowledge-update question's answer-bearing user turns reduced to the sentence that carries the
fact (the one sharing most words with the question): the newest should find the older ones. Distractors, per
new memory: 150 sentences of other user turns of LongMemEval-S and every statement of the other nine kinds of
synthetic fact, as a store of one person's facts holds. Each side is scored as the service scores it
(recall/near.py): the cosine of the two memories' vectors (a sentence is one window) and the Dice coefficient of
their content words. The table gives, per threshold, the share of positives found and the share of new
memories that would list at least one distractor.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import random
from pathlib import Path
from typing import Any

import numpy as np

from agent_memory.config import DEFAULT_MODEL
from agent_memory.embedding.chunking import sentences
from agent_memory.embedding.embedder import ModelEmbedder
from agent_memory.embedding.host import ModelHost
from agent_memory.recall import near
from agent_memory.recall.terms import keyword_terms
from changed_facts import changed_facts

DATA = Path("/work/shared/eval/data")
SETS = ("longmemeval_s_cleaned_strat60.json.gz", "longmemeval_s_cleaned_more110.json.gz")
THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
Case = tuple[str, list[str], list[str]]  # new memory, older memories it replaces, unrelated memories


def _fact_sentence(turn: str, question: str) -> str:
    words = set(keyword_terms(question))
    return max(sentences(turn), key=lambda s: len(words & set(keyword_terms(s))))


def longmemeval(rng: random.Random, count: int) -> tuple[list[Case], list[str]]:
    """Return the knowledge-update cases (distractors: other turns of the same history) and a sentence pool."""
    cases, pool = [], []
    for name in SETS:
        with gzip.open(DATA / name) as f:
            questions = json.load(f)
        for q in questions:
            facts, others = [], []
            order = sorted(range(len(q["haystack_dates"])), key=lambda i: q["haystack_dates"][i])
            for i in order:
                for turn in q["haystack_sessions"][i]:
                    if turn["role"] == "user":
                        (facts if turn.get("has_answer") else others).append(turn["content"])
            said = [s for t in rng.sample(others, min(20, len(others))) for s in sentences(t) if len(s) > 30]
            pool.extend(said)
            if q["question_type"] == "knowledge-update" and len(facts) >= 2:
                found = [_fact_sentence(t, q["question"] + " " + str(q["answer"])) for t in facts]
                cases.append((found[-1], found[:-1], rng.sample(said, min(count, len(said)))))
    return cases, pool


def synthetic(rng: random.Random, pool: list[str], count: int) -> list[Case]:
    """Return the synthetic changes, each with LongMemEval sentences and the other kinds' facts as distractors."""
    facts = changed_facts()
    return [
        (new, [old], rng.sample(pool, count) + [t for k, o, n in facts if k != kind for t in (o, n)])
        for kind, old, new in facts
    ]


async def vectors(model: ModelHost, texts: set[str]) -> dict[str, Any]:
    """Return each text's unit vector."""
    ordered = sorted(texts)
    found: dict[str, Any] = {}
    for i in range(0, len(ordered), 256):
        block = np.asarray(await model.embed(ordered[i : i + 256]), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        found.update(zip(ordered[i : i + 256], block, strict=True))
    return found


def report(name: str, cases: list[Case], vec: dict[str, Any]) -> None:
    """Print the table of one set of cases."""
    pos = [(float(vec[n] @ vec[o]), near.word_overlap(n, o)) for n, older, _ in cases for o in older]
    neg = [
        (max(float(vec[n] @ vec[d]) for d in ds), max(near.word_overlap(n, d) for d in ds), n, ds) for n, _, ds in cases
    ]
    print(
        f"\n{name}: {len(cases)} new memories, {len(pos)} positive pairs, {sum(len(c[2]) for c in cases)} distractors"
    )
    print("| threshold | vector: found | vector: false similar | words: found | words: false similar |")
    print("|---|---|---|---|---|")
    for t in THRESHOLDS:
        print(
            f"| {t:.2f} | {np.mean([c >= t for c, _ in pos]):.1%} | {np.mean([c >= t for c, *_ in neg]):.1%}"
            f" | {np.mean([w >= t for _, w in pos]):.1%} | {np.mean([w >= t for _, w, *_ in neg]):.1%} |"
        )
    found = np.mean([near.closeness(c, w) is not None for c, w in pos])
    false = [
        n
        for n, _, ds in cases
        if any(near.closeness(float(vec[n] @ vec[d]), near.word_overlap(n, d)) is not None for d in ds)
    ]
    print(
        f"kept (vector {near.VECTOR_THRESHOLD}, words {near.WORD_THRESHOLD}): positives found {found:.1%},"
        f" new memories with a false similar {len(false) / len(cases):.1%}"
    )


async def main() -> None:
    """Print the tables for the synthetic changes and the LongMemEval knowledge updates."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--distractors", type=int, default=150, help="LongMemEval sentences per new memory")
    args = parser.parse_args()
    rng = random.Random(7)
    lme, pool = longmemeval(rng, args.distractors)
    made = synthetic(rng, pool, args.distractors)
    model = ModelHost(ModelEmbedder(DEFAULT_MODEL))
    model.start()
    if not await model.wait(300):
        raise SystemExit(model.error)
    texts = {t for cases in (lme, made) for n, older, ds in cases for t in (n, *older, *ds)}
    vec = await vectors(model, texts)
    report("synthetic changed facts", made, vec)
    report("LongMemEval-S knowledge updates (fact sentences)", lme, vec)


if __name__ == "__main__":
    asyncio.run(main())
