"""LongMemEval retrieval benchmark: how well agent-memory's recall finds the sessions and turns that hold the answer.

Each question gets a fresh MemoryService in a temporary data dir. Every haystack turn goes in through
`service.remember` (bench-made session ids "s<position>", session dates as `created_at`), the service's clock is set
to the question's date (so recency and "last week" mean what they meant to the asker); then the question is asked
through
three paths over the same stored memories: `hybrid` (the product's `recall`), `keyword` (FTS5/BM25 only) and
`vector` (LanceDB nearest neighbours only). Gold labels (has_answer, answer_session_ids, the dataset's session ids)
stay in this script and never reach the service.

`--postgres` (an embedded Postgres 18 + pgvector) or `--database-url URL` runs the same questions on the Postgres
store and pgvector index instead of SQLite + LanceDB: a fresh database per question, dropped after it.

Example:  .venv/bin/python bench/longmemeval.py --dataset oracle --limit 5
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import logging
import math
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from agent_memory.config import DEFAULT_MODEL, Settings
from agent_memory.embedding.embedder import ModelEmbedder, Vectors
from agent_memory.errors import InvalidInput
from agent_memory.service import MemoryService

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "bench"))
from pg_databases import Databases, databases  # noqa: E402

# ../shared/eval/data next to the repo; a git worktree sits deeper, so the nearest ancestor that has one wins.
DEFAULT_DATA = next(
    (p / "shared" / "eval" / "data" for p in REPO_ROOT.parents if (p / "shared" / "eval" / "data").is_dir()),
    REPO_ROOT.parent / "shared" / "eval" / "data",
)
DATA_FILES = {
    "s": "longmemeval_s_cleaned_strat60.json.gz",
    "s110": "longmemeval_s_cleaned_more110.json.gz",
    "oracle": "longmemeval_oracle.json",
}
DATASET_LABELS = {
    "s": "LongMemEval-S (stratified 60)",
    "s110": "LongMemEval-S (110 more)",
    "oracle": "LongMemEval oracle",
}
MODES = ("hybrid", "keyword", "vector")
ROLE_VARIANTS = {"all": ("user", "assistant"), "user": ("user",)}
NAMESPACE = "longmemeval"
TURN_K = 10  # turns an agent would ask recall for
SESSION_KS = (5, 10)
DEPTH = 50  # turns fetched to rank sessions (the service's max_recall_limit)
INDEX_TIMEOUT = 3600.0
_DATE = re.compile(r"^(\d{4})/(\d{2})/(\d{2})(?: \(\w+\))?(?: (\d{2}):(\d{2}))?$")

logger = logging.getLogger("bench.longmemeval")


# ---------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Turn:
    """One haystack turn; `has_answer` is a gold label kept in the bench."""

    role: str
    content: str
    has_answer: bool


@dataclass(frozen=True)
class Question:
    """One LongMemEval instance, with sessions addressed by haystack position."""

    qid: str
    qtype: str
    text: str
    asked: datetime  # question_date
    sessions: list[list[Turn]]
    session_dates: list[datetime]
    session_names: list[str]  # the dataset's session ids (they can leak labels: bench only)
    gold_sessions: frozenset[int]  # haystack positions of answer_session_ids

    @property
    def abstention(self) -> bool:
        """Return True for abstention questions (no answer in the history), skipped as in the paper."""
        return self.qid.endswith("_abs")


def parse_date(text: str) -> datetime:
    """Parse a LongMemEval date such as '2023/05/24 (Wed) 02:54' as UTC."""
    match = _DATE.match(text.strip())
    if not match:
        raise ValueError(f"unrecognised LongMemEval date {text!r}")
    year, month, day, hour, minute = (int(g) if g else 0 for g in match.groups())
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def load_questions(path: Path) -> list[Question]:
    """Read a LongMemEval JSON (optionally gzipped) file."""
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        raw = json.load(handle)
    questions = []
    for item in raw:
        names = list(item["haystack_session_ids"])
        position = {name: i for i, name in enumerate(names)}
        questions.append(
            Question(
                qid=item["question_id"],
                qtype=item["question_type"],
                text=item["question"],
                asked=parse_date(item["question_date"]),
                sessions=[
                    [Turn(t["role"], t["content"], bool(t.get("has_answer", False))) for t in session]
                    for session in item["haystack_sessions"]
                ],
                session_dates=[parse_date(d) for d in item["haystack_dates"]],
                session_names=names,
                gold_sessions=frozenset(position[a] for a in item["answer_session_ids"]),
            )
        )
    return questions


def pick(questions: Sequence[Question], limit: int | None) -> list[Question]:
    """Return the first `limit` questions taken round-robin over question types (all when limit is None)."""
    if limit is None or limit >= len(questions):
        return list(questions)
    by_type: dict[str, list[Question]] = defaultdict(list)
    for q in questions:
        by_type[q.qtype].append(q)
    chosen: list[Question] = []
    queues = list(by_type.values())
    while len(chosen) < limit:
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    return chosen


# ------------------------------------------------------------------------------------------ embedder


class SharedEmbedder:
    """The product's ModelEmbedder, loaded once and shared by every per-question service."""

    def __init__(self, model: str, cache_file: Path | None = None) -> None:
        self._inner = ModelEmbedder(model)
        self._dim: int | None = None
        self._lock = threading.Lock()
        self._cache: dict[str, np.ndarray[Any, np.dtype[np.float32]]] = {}
        self._cache_file = cache_file
        self.hits = 0
        self.misses = 0
        self.caching = True  # off while queries run, so recall latency always includes the query embedding
        if cache_file is not None and cache_file.exists():
            with np.load(cache_file) as stored:
                self._cache = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))

    @property
    def name(self) -> str:
        """Return the wrapped model's name (it keys the vector table)."""
        return self._inner.name

    def load(self) -> int:
        """Load the model on first use; later services get the cached dimension at once."""
        with self._lock:
            if self._dim is None:
                self._dim = self._inner.load()
            return self._dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed texts, reusing vectors already computed for the same text (documents only)."""
        if not self.caching:
            return self._inner.embed(texts)
        keys = [_key(t) for t in texts]
        todo = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if todo:
            first = {k: t for k, t in zip(keys, texts, strict=True)}
            for key, vector in zip(todo, self._inner.embed([first[k] for k in todo]), strict=True):
                self._cache[key] = vector
        self.misses += len(todo)
        self.hits += len(keys) - len(todo)
        return np.stack([self._cache[k] for k in keys]).astype(np.float32)

    @property
    def sums_tokens(self) -> bool:
        """Return whether the wrapped model pools by mean (then the indexer asks for token sums of sentences)."""
        return self._inner.sums_tokens

    def token_sums(self, texts: Sequence[str]) -> tuple[Vectors, Vectors]:
        """Return summed token states and token counts, reusing the sums of texts already read.

        Keyed apart from vectors ("token sums" and the text): a sum is not a vector. Counts come from the tokenizer.
        """
        if not self.caching:
            return self._inner.token_sums(texts)
        keys = [_key(f"token sums\n{t}") for t in texts]
        todo = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if todo:
            first = {k: t for k, t in zip(keys, texts, strict=True)}
            sums, _ = self._inner.token_sums([first[k] for k in todo])
            self._cache.update(zip(todo, sums, strict=True))
        self.misses += len(todo)
        self.hits += len(keys) - len(todo)
        counts = np.asarray(self._inner.token_counts(texts), dtype=np.float32)[:, None]
        return np.stack([self._cache[k] for k in keys]).astype(np.float32), counts

    def reset(self) -> None:
        """Forget in-memory vectors unless they are persisted to a cache file."""
        if self._cache_file is None:
            self._cache.clear()

    def save(self) -> None:
        """Write the vectors to the cache file, if one was given."""
        if self._cache_file is None or not self._cache:
            return
        self._cache_file.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self._cache.keys()))
        with self._cache_file.open("wb") as handle:
            np.savez(handle, keys=keys, vectors=np.stack(list(self._cache.values())))


def _key(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


# -------------------------------------------------------------------------------------------- ingest


@dataclass
class Corpus:
    """What one ingest stored, and where each memory came from (bench-side only)."""

    session_of: dict[str, int] = field(default_factory=dict)  # memory id -> haystack position of its first copy
    answer_ids: list[str] = field(default_factory=list)  # memory id of each has_answer turn (ingested or not: "")
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_answers: int = 0
    remember_s: float = 0.0
    index_s: float = 0.0
    embed_misses: int = 0
    embed_hits: int = 0


def turn_time(session_date: datetime, turn_index: int) -> str:
    """Return the created_at of a turn: the session's date plus one second a turn, keeping turn order."""
    return (session_date + timedelta(seconds=turn_index)).isoformat()


async def open_service(data_dir: Path, embedder: SharedEmbedder, database_url: str | None = None) -> MemoryService:
    """Open a fresh service on `data_dir` (or on Postgres at `database_url`) and wait until its index is open."""
    # No query cache: each timed recall pays for its own query embedding.
    settings = Settings(
        data_dir=data_dir,
        namespace=NAMESPACE,
        summarizer="extractive",
        query_cache_size=0,
        database_url=database_url,
    )
    service = await MemoryService.open(settings, embedder=embedder)
    if not await service.wait_index_open():
        raise RuntimeError(f"the vector index did not open: {service.status().message}")
    return service


async def ingest(service: MemoryService, question: Question, roles: Iterable[str], embedder: SharedEmbedder) -> Corpus:
    """Remember every turn with an allowed role, then wait until the vector index holds them all."""
    allowed = set(roles)
    corpus = Corpus()
    misses_before, hits_before = embedder.misses, embedder.hits
    start = time.perf_counter()
    for s, (session, date) in enumerate(zip(question.sessions, question.session_dates, strict=True)):
        for t, turn in enumerate(session):
            if turn.role not in allowed:
                if turn.has_answer:
                    corpus.answer_ids.append("")
                continue
            try:
                result = await service.remember(
                    turn.content,
                    role=turn.role,
                    session_id=f"s{s}",
                    created_at=turn_time(date, t),
                    namespace=NAMESPACE,
                )
            except InvalidInput as exc:  # empty or over max_content_chars: the product refuses it
                logger.debug("%s s%d t%d rejected: %s", question.qid, s, t, exc)
                corpus.rejected += 1
                corpus.rejected_answers += turn.has_answer
                if turn.has_answer:
                    corpus.answer_ids.append("")
                continue
            if result.duplicate:
                corpus.duplicates += 1
            else:
                corpus.stored += 1
                corpus.session_of[result.id] = s
            if turn.has_answer:
                corpus.answer_ids.append(result.id)
    corpus.remember_s = time.perf_counter() - start
    await wait_indexed(service)
    corpus.index_s = time.perf_counter() - start
    corpus.embed_misses = embedder.misses - misses_before
    corpus.embed_hits = embedder.hits - hits_before
    indexed = (await service.index_status()).memories
    if indexed != corpus.stored:
        raise RuntimeError(f"{question.qid}: {indexed} vectors for {corpus.stored} stored memories")
    return corpus


async def wait_indexed(service: MemoryService) -> None:
    """Block until the background indexer has embedded every pending memory."""
    problem = await service.wait_indexed(INDEX_TIMEOUT)
    if problem is not None:
        raise RuntimeError(f"the vector index did not catch up: {problem}")
    # Recall is timed warm, as in a server that has been up a few seconds: compaction, scalar indexes and the
    # in-memory copy of the vectors are done (a recall right after a burst would scan LanceDB instead).
    await service.settle()


# ------------------------------------------------------------------------------------------ retrieve


async def retrieve(service: MemoryService, mode: str, query: str, limit: int) -> list[str]:
    """Return ranked memory ids for the query through one retrieval path of the product's recall."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    result = await service.recall(query, limit=limit, namespace=NAMESPACE, mode=mode)  # type: ignore[arg-type]
    if result.degraded:
        raise RuntimeError(f"recall ran without semantic search: {result.note}")
    return [hit.id for hit in result.hits]


# ------------------------------------------------------------------------------------------- metrics


def session_ranking(ids: Sequence[str], session_of: dict[str, int]) -> list[int]:
    """Rank sessions by their best retrieved turn (first appearance in the turn ranking)."""
    return list(dict.fromkeys(session_of[i] for i in ids if i in session_of))


def ndcg(ranked: Sequence[int], gold: frozenset[int], k: int) -> float:
    """Return binary-relevance nDCG@k of a deduplicated session ranking."""
    dcg = sum(1.0 / math.log2(rank + 2) for rank, s in enumerate(ranked[:k]) if s in gold)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(gold), k)))
    return dcg / ideal if ideal else 0.0


def score(question: Question, corpus: Corpus, top: Sequence[str], deep: Sequence[str]) -> dict[str, float | None]:
    """Return the per-question metrics: session recall/nDCG from the deep ranking, turn recall from the top turns."""
    ranked = session_ranking(deep, corpus.session_of)
    gold = question.gold_sessions
    metrics: dict[str, float | None] = {}
    for k in SESSION_KS:
        window = set(ranked[:k])
        metrics[f"recall_any@{k}"] = float(bool(gold & window))
        metrics[f"recall_all@{k}"] = float(gold <= window)
    metrics["ndcg@10"] = ndcg(ranked, gold, 10)
    hits = set(top[:TURN_K])
    answers = corpus.answer_ids
    metrics["turn_recall@10"] = sum(a in hits for a in answers) / len(answers) if answers else None
    first = next((rank for rank, s in enumerate(ranked) if s in gold), None)
    metrics["first_gold_rank"] = None if first is None else float(first + 1)
    return metrics


def mean(values: Iterable[float | None]) -> tuple[float | None, int]:
    """Return the mean of the non-None values and how many there were."""
    present = [v for v in values if v is not None]
    return (sum(present) / len(present) if present else None), len(present)


METRICS = ("recall_any@5", "recall_all@5", "recall_any@10", "recall_all@10", "ndcg@10", "turn_recall@10")


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Average the metrics of some per-question rows."""
    out: dict[str, Any] = {"n": len(rows)}
    for name in METRICS:
        value, n = mean(r[name] for r in rows)
        out[name] = None if value is None else round(value, 4)
        if name == "turn_recall@10":
            out["n_turn"] = n
    return out


def percentile(values: Sequence[float], q: float) -> float | None:
    """Return the q-th percentile (linear interpolation), or None for no values."""
    return round(float(np.percentile(values, q)), 2) if values else None


# ----------------------------------------------------------------------------------------------- run


@dataclass
class Run:
    """Everything measured in one benchmark run."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    latency: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    ingest: dict[str, list[Corpus]] = field(default_factory=lambda: defaultdict(list))


@dataclass(frozen=True)
class Options:
    """What to run for every question."""

    variants: tuple[str, ...]
    modes: tuple[str, ...]
    postgres: Databases | None = None  # None: the SQLite + LanceDB default


async def run_question(question: Question, options: Options, embedder: SharedEmbedder, run: Run) -> None:
    """Ingest one question's haystack once per role variant and score every mode."""
    modes = options.modes
    for variant in options.variants:
        # ignore_cleanup_errors: the index upkeep thread may still be writing files as the service closes.
        with tempfile.TemporaryDirectory(prefix="lme-", ignore_cleanup_errors=True) as tmp:
            database = options.postgres.create() if options.postgres else None
            service = await open_service(Path(tmp), embedder, database)
            try:
                # The service's "now" is the question's date, as when the user asked it.
                service.clock = lambda: question.asked
                embedder.caching = True
                corpus = await ingest(service, question, ROLE_VARIANTS[variant], embedder)
                embedder.caching = False
                run.ingest[variant].append(corpus)
                for mode in modes:
                    start = time.perf_counter()
                    top = await retrieve(service, mode, question.text, TURN_K)
                    run.latency[(variant, mode)].append((time.perf_counter() - start) * 1000)
                    deep = await retrieve(service, mode, question.text, DEPTH)
                    metrics = score(question, corpus, top, deep)
                    run.rows.append(
                        {"qid": question.qid, "type": question.qtype, "roles": variant, "mode": mode} | metrics
                    )
            finally:
                await service.close()
                if options.postgres and database:
                    options.postgres.drop(database)
        print(
            f"  {question.qid:<14} {question.qtype:<26} roles={variant:<4} stored={corpus.stored:>4} "
            f"ingest={corpus.index_s:6.1f}s "
            + " ".join(f"{r['mode']}={r['recall_all@10']:.0f}" for r in run.rows[-len(modes) :]),
            file=sys.stderr,
            flush=True,
        )
    embedder.reset()


def summarize(run: Run, variants: Sequence[str], modes: Sequence[str]) -> dict[str, Any]:
    """Aggregate rows into overall and per-type metrics, latency and ingest throughput per role variant."""
    result: dict[str, Any] = {}
    for variant in variants:
        corpora = run.ingest[variant]
        stored = sum(c.stored for c in corpora)
        remember_s = sum(c.remember_s for c in corpora)
        index_s = sum(c.index_s for c in corpora)
        misses = sum(c.embed_misses for c in corpora)
        modes_out: dict[str, Any] = {}
        for mode in modes:
            rows = [r for r in run.rows if r["roles"] == variant and r["mode"] == mode]
            types = sorted({r["type"] for r in rows})
            times = run.latency[(variant, mode)]
            modes_out[mode] = {
                "overall": aggregate(rows),
                "by_type": {t: aggregate([r for r in rows if r["type"] == t]) for t in types},
                "latency_ms": {"p50": percentile(times, 50), "p95": percentile(times, 95), "n": len(times)},
            }
        result[variant] = {
            "ingest": {
                "memories": stored,
                "duplicates": sum(c.duplicates for c in corpora),
                "rejected": sum(c.rejected for c in corpora),
                "rejected_answer_turns": sum(c.rejected_answers for c in corpora),
                "remember_per_s": round(stored / remember_s, 1) if remember_s else None,
                "indexed_per_s": round(stored / index_s, 1) if index_s else None,
                "embedded": misses,
                "embed_cache_hits": sum(c.embed_hits for c in corpora),
                "seconds": round(index_s, 1),
            },
            "modes": modes_out,
        }
    return result


# --------------------------------------------------------------------------------------------- report


def _cell(value: float | None) -> str:
    return "   -  " if value is None else f"{value:6.3f}"


def print_table(summary: dict[str, Any], modes: Sequence[str], title: str) -> None:
    """Print one compact table per role variant."""
    columns = ("recall_all@5", "recall_all@10", "ndcg@10", "turn_recall@10")
    heads = ("R@5", "R@10", "nDCG", "T@10")
    print(f"\n{title}")
    print("R@k = session recall_all@k (top-k sessions ranked by best turn); nDCG = session nDCG@10;")
    print("T@10 = fraction of has_answer turns among the top 10 recalled turns.")
    for variant, block in summary.items():
        header = f"{'roles=' + variant:<26} {'n':>3} |" + "|".join(f" {mode:^23} " for mode in modes)
        sub = f"{'':<26} {'':>3} |" + "|".join("".join(f"{h:>6}" for h in heads) + " " for _ in modes)
        print()
        print(header)
        print(sub)
        print("-" * len(sub))
        types = list(block["modes"][modes[0]]["by_type"])
        for name in [*types, "overall"]:
            cells = []
            n = 0
            for mode in modes:
                stats = block["modes"][mode]["overall" if name == "overall" else "by_type"]
                stats = stats if name == "overall" else stats[name]
                n = stats["n"]
                cells.append("".join(_cell(stats[c]) for c in columns) + " ")
            print(f"{name:<26} {n:>3} |" + "|".join(cells))
        latency = "  ".join(
            f"{mode} {block['modes'][mode]['latency_ms']['p50']}/{block['modes'][mode]['latency_ms']['p95']}"
            for mode in modes
        )
        ing = block["ingest"]
        print(f"recall latency p50/p95 ms (limit={TURN_K}): {latency}")
        print(
            f"ingest: {ing['memories']} memories, remember {ing['remember_per_s']}/s, "
            f"remember+index {ing['indexed_per_s']}/s ({ing['embedded']} embedded, {ing['embed_cache_hits']} cached), "
            f"{ing['duplicates']} duplicates, {ing['rejected']} rejected ({ing['rejected_answer_turns']} answer turns)"
        )


def to_json(report: dict[str, Any]) -> str:
    """Serialise the report: indented, but one line per per-question row to keep the file small."""
    head = json.dumps({k: v for k, v in report.items() if k != "per_question"}, indent=1)
    rows = ",\n  ".join(json.dumps(row, separators=(",", ":")) for row in report["per_question"])
    return head[: -len("\n}")] + ',\n "per_question": [\n  ' + rows + "\n ]\n}\n"


def git_state() -> dict[str, Any]:
    """Return the repo's commit and whether the work tree has changes (None when git is unavailable)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "server"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "server_dirty": None}
    return {"commit": commit, "server_dirty": bool(dirty)}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--dataset", choices=sorted(DATA_FILES), default="s", help="s (stratified 60), s110 (110 more) or oracle"
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"data directory (default {DEFAULT_DATA})")
    parser.add_argument("--limit", type=int, help="only the first N questions, taken round-robin over types")
    parser.add_argument("--roles", choices=("user", "all", "both"), default="both", help="which turns to ingest")
    parser.add_argument("--modes", default=",".join(MODES), help="comma list of hybrid,keyword,vector")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="embedding model (default: the product's)")
    parser.add_argument("--out", type=Path, help="JSON results (default bench/results/longmemeval-<dataset>.json)")
    parser.add_argument("--embed-cache", type=Path, help="npz file of document vectors reused across runs")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--postgres", action="store_true", help="run on an embedded Postgres + pgvector")
    where.add_argument("--database-url", help="run on this Postgres (with pgvector): a database per question")
    args = parser.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(args.modes) - set(MODES)
    if unknown or not args.modes:
        parser.error(f"--modes takes a comma list of {', '.join(MODES)}; got {args.modes}")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    args.out = args.out or REPO_ROOT / "bench" / "results" / f"longmemeval-{args.dataset}.json"
    return args


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark and return the JSON report."""
    path = args.data / DATA_FILES[args.dataset]
    if not path.exists():
        raise SystemExit(f"data file not found: {path} (pass --data DIR)")
    questions = load_questions(path)
    chosen = pick(questions, args.limit)
    skipped = [q for q in chosen if q.abstention]
    chosen = [q for q in chosen if not q.abstention]
    variants = ("all", "user") if args.roles == "both" else (args.roles,)
    embedder = SharedEmbedder(args.model, args.embed_cache)
    run = Run()
    started = time.perf_counter()
    print(f"{len(chosen)} questions ({len(skipped)} abstention skipped), roles {variants}", file=sys.stderr)
    postgres: AbstractContextManager[Databases | None] = (
        databases(args.database_url) if args.postgres or args.database_url else nullcontext()
    )
    with postgres as dbs:
        options = Options(variants, tuple(args.modes), dbs)
        for n, question in enumerate(chosen, 1):
            print(f"[{n}/{len(chosen)}]", file=sys.stderr, end="")
            done = len(run.rows)
            await run_question(question, options, embedder, run)
            with args.out.with_suffix(".partial.jsonl").open("a") as partial:  # an interrupted run keeps its rows
                partial.writelines(json.dumps(row) + "\n" for row in run.rows[done:])
            if n % 5 == 0:
                embedder.save()  # an interrupted run keeps what it embedded
    embedder.save()
    runtime = time.perf_counter() - started
    summary = summarize(run, variants, args.modes)
    return {
        "benchmark": "longmemeval-retrieval",
        "dataset": args.dataset,
        "data_file": str(path.name),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "git": git_state(),
        "config": {
            "model": embedder.name,
            "turn_k": TURN_K,
            "session_depth": DEPTH,
            "session_ks": list(SESSION_KS),
            "modes": args.modes,
            "roles": variants,
            "clock": "question_date",
            "embed_cache": str(args.embed_cache) if args.embed_cache else None,
            "store": "postgres + pgvector" if args.postgres or args.database_url else "sqlite + lancedb",
        },
        "questions": len(chosen),
        "abstention_skipped": len(skipped),
        "runtime_s": round(runtime, 1),
        "results": summary,
        "per_question": run.rows,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run, print the table, write the JSON."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    report = asyncio.run(main_async(args))
    title = (
        f"{DATASET_LABELS[args.dataset]}: {report['questions']} questions, "
        f"{report['abstention_skipped']} abstention skipped, {report['runtime_s']} s"
    )
    print_table(report["results"], args.modes, title)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(to_json(report))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
