"""Measure `remember`'s `similar` thresholds on LongMemEval: changed facts it should find, other turns it should not.

    .venv/bin/python bench/similar.py                # both LongMemEval-S sets, 150 other turns a question

For each knowledge-update question, the user turns that carry the answer (`has_answer`), in session order, are
one fact changing over time: the newest is the new memory, each older one a memory it should be found similar
to (a positive). The question's other user turns are memories of the same history it should not be flagged
against (distractors). Each side is scored as the service scores it (recall/near.py): the vector side is the
cosine of the new memory's query vector with the best window of the stored memory (its text and sentences, as
the indexer embeds them), the word side the Dice coefficient of content words. The table gives, per threshold,
the share of positives found and the share of new memories that would list at least one distractor.
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
from agent_memory.embedding.chunking import plan
from agent_memory.embedding.embedder import ModelEmbedder
from agent_memory.embedding.host import ModelHost
from agent_memory.recall import near

DATA = Path("/work/shared/eval/data")
SETS = ("longmemeval_s_cleaned_strat60.json.gz", "longmemeval_s_cleaned_more110.json.gz")
THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)


def cases(per_question: int) -> list[tuple[str, list[str], list[str]]]:
    """Return (new fact turn, older fact turns, distractor turns) per knowledge-update question."""
    rng = random.Random(7)
    found = []
    for name in SETS:
        with gzip.open(DATA / name) as f:
            questions = json.load(f)
        for q in questions:
            if q["question_type"] != "knowledge-update":
                continue
            facts, others = [], []
            order = sorted(range(len(q["haystack_dates"])), key=lambda i: q["haystack_dates"][i])
            for i in order:
                for turn in q["haystack_sessions"][i]:
                    if turn["role"] == "user":
                        (facts if turn.get("has_answer") else others).append(turn["content"])
            if len(facts) >= 2:
                found.append((facts[-1], facts[:-1], rng.sample(others, min(per_question, len(others)))))
    return found


async def windows(model: ModelHost, texts: list[str]) -> list[Any]:
    """Return each text's window vectors as the indexer embeds them (the text and its sentences)."""
    out = []
    for text in texts:
        parts = plan(text)
        blocks = await model.embed_spans([t for t, _ in parts], [s for _, s in parts])
        out.append(np.vstack(blocks))
    return out


async def main() -> None:
    """Print the share of positives found and of new memories with a false similar, per threshold."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--distractors", type=int, default=150, help="other user turns per question")
    args = parser.parse_args()
    model = ModelHost(ModelEmbedder(DEFAULT_MODEL))
    model.start()
    if not await model.wait(300):
        raise SystemExit(model.error)
    pos_cos, pos_words, neg_cos, neg_words = [], [], [], []
    all_cases = cases(args.distractors)
    for new, older, others in all_cases:
        query = await model.embed_query(new)
        for text, stored in zip(older, await windows(model, older), strict=True):
            pos_cos.append(float(np.max(stored @ query)))
            pos_words.append(near.word_overlap(new, text))
        stored_others = await windows(model, others)
        neg_cos.append(max(float(np.max(s @ query)) for s in stored_others))
        neg_words.append(max(near.word_overlap(new, t) for t in others))
    print(
        f"{len(all_cases)} knowledge-update questions, {len(pos_cos)} positive pairs, "
        f"{sum(len(o) for _, _, o in all_cases)} distractors"
    )
    print(
        "threshold | vector: positives found | vector: new memories with a false similar | words: found | words: false"
    )
    for t in THRESHOLDS:
        print(
            f"{t:.2f} | {np.mean([c >= t for c in pos_cos]):.1%} | {np.mean([c >= t for c in neg_cos]):.1%}"
            f" | {np.mean([w >= t for w in pos_words]):.1%} | {np.mean([w >= t for w in neg_words]):.1%}"
        )
    both = [near.closeness(c, w) is not None for c, w in zip(pos_cos, pos_words, strict=True)]
    false = [near.closeness(c, w) is not None for c, w in zip(neg_cos, neg_words, strict=True)]
    print(
        f"kept thresholds (vector {near.VECTOR_THRESHOLD}, words {near.WORD_THRESHOLD}):"
        f" positives found {np.mean(both):.1%}, new memories with a false similar {np.mean(false):.1%}"
    )


if __name__ == "__main__":
    asyncio.run(main())
