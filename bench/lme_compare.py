"""Compare two bench/longmemeval.py runs question by question (e.g. SQLite + LanceDB against Postgres + pgvector).

Reports each mode's overall metrics for both runs, over the questions both answered, and every question whose
metrics differ. "Within one question": for the 0/1 session recalls, how many questions changed each way.

    .venv/bin/python bench/lme_compare.py A.json B.json --out bench/results/longmemeval-s-backends.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

METRICS = ("recall_all@5", "recall_all@10", "ndcg@10", "turn_recall@10")
BINARY = ("recall_all@5", "recall_all@10")


def rows(path: Path) -> tuple[dict[str, Any], dict[tuple[str, str, str], dict[str, Any]]]:
    """Return a run's report and its per-question rows keyed by (qid, roles, mode)."""
    report = json.loads(path.read_text())
    return report, {(r["qid"], r["roles"], r["mode"]): r for r in report["per_question"]}


def mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 4) if present else None


def compare(a: Path, b: Path) -> dict[str, Any]:
    """Return both runs' means over the shared questions and the per-question differences."""
    report_a, rows_a = rows(a)
    report_b, rows_b = rows(b)
    shared = sorted(rows_a.keys() & rows_b.keys())
    out: dict[str, Any] = {
        "a": {"file": a.name, "store": report_a["config"].get("store", "sqlite + lancedb")},
        "b": {"file": b.name, "store": report_b["config"].get("store", "sqlite + lancedb")},
        "questions": len({k[0] for k in shared}),
        "modes": {},
    }
    for mode in sorted({k[2] for k in shared}):
        keys = [k for k in shared if k[2] == mode]
        differ = []
        for key in keys:
            ra, rb = rows_a[key], rows_b[key]
            delta = {m: [ra[m], rb[m]] for m in METRICS if ra[m] is not None and abs(ra[m] - (rb[m] or 0)) > 1e-9}
            if delta:
                differ.append({"qid": key[0], "type": ra["type"], "roles": key[1], **delta})
        out["modes"][mode] = {
            "a": {m: mean([rows_a[k][m] for k in keys]) for m in METRICS},
            "b": {m: mean([rows_b[k][m] for k in keys]) for m in METRICS},
            "questions_better_in_b": {m: sum(rows_b[k][m] > rows_a[k][m] for k in keys) for m in BINARY},
            "questions_worse_in_b": {m: sum(rows_b[k][m] < rows_a[k][m] for k in keys) for m in BINARY},
            "questions_differing": len(differ),
            "differences": differ,
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = compare(args.a, args.b)
    print(f"{result['questions']} questions: a = {result['a']['store']}, b = {result['b']['store']}")
    for mode, block in result["modes"].items():
        cells = "  ".join(f"{m} {block['a'][m]} / {block['b'][m]}" for m in METRICS)
        print(f"{mode:<8} {cells}  ({block['questions_differing']} questions differ in any metric)")
        print(f"         better in b {block['questions_better_in_b']}, worse in b {block['questions_worse_in_b']}")
        for d in block["differences"]:
            print(f"           {d['qid']:<14} {d['type']:<26} " + " ".join(f"{m} {d[m]}" for m in METRICS if m in d))
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
