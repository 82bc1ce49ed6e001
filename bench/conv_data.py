"""Conversation datasets in the dev set's shape, read at run time (never copied into the repo).

The shape is realtalk_dev's: conversations of sessions (ISO date, turns {turn_id, speaker, text, date,
blip_caption?}) and questions {qid, question, category, evidence: [turn_id]}. `load_longmemeval` adapts a
LongMemEval-S file to it: each question is a conversation of its own (its haystack), the evidence is the turns
marked has_answer, the category is question_type, and the answer sessions are kept for recall_all@k.

Stored content follows issue 13: `"[1:56 pm on 8 May, 2023] Kate: text"` plus `" [shares <caption>]"` when a
photo was shared. LongMemEval turns use the same date form and the turn's role as the speaker
(`"[2:54 am on 24 May, 2023] user: text"`): its chats are between a user and an assistant, both sides can hold
the answer, and the role is the only speaker name the data has, just as a client storing its own chat would
write it. Their role also becomes the memory's role (user/assistant).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
# ../shared/eval/data next to the repo; a git worktree sits deeper, so the nearest ancestor that has one wins.
DATA_DIR = next(
    (p / "shared" / "eval" / "data" for p in REPO_ROOT.parents if (p / "shared" / "eval" / "data").is_dir()),
    REPO_ROOT.parent / "shared" / "eval" / "data",
)
_LME_DATE = re.compile(r"^(\d{4})/(\d{2})/(\d{2})(?: \(\w+\))?(?: (\d{2}):(\d{2}))?$")


@dataclass(frozen=True)
class Turn:
    """One message of a session."""

    turn_id: str
    speaker: str
    text: str
    role: str = "user"
    caption: str | None = None


@dataclass(frozen=True)
class Session:
    """Consecutive turns on one date."""

    session_id: str
    date: datetime
    turns: list[Turn]


@dataclass(frozen=True)
class Question:
    """A question with the turns (and, for LongMemEval, the sessions) that hold its answer."""

    qid: str
    text: str
    category: str
    evidence: list[str]
    gold_sessions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Conversation:
    """Sessions between speakers plus the questions asked about them."""

    cid: str
    sessions: list[Session]
    questions: list[Question] = field(default_factory=list)


def spoken_date(when: datetime) -> str:
    """Write a date as the dev set's source does, e.g. '1:56 pm on 8 May, 2023'."""
    hour = when.hour % 12 or 12
    return f"{hour}:{when.minute:02d} {'am' if when.hour < 12 else 'pm'} on {when.day} {when:%B}, {when.year}"


def content(turn: Turn, date: datetime) -> str:
    """Return the text stored for a turn: its session date, speaker and words (and a shared photo's caption)."""
    text = f"[{spoken_date(date)}] {turn.speaker}: {turn.text}"
    return f"{text} [shares {turn.caption}]" if turn.caption else text


def _read(path: Path) -> Any:
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def load_conversations(path: Path) -> list[Conversation]:
    """Read a file in realtalk_dev's format."""
    out = []
    for raw in _read(path):
        sessions = [
            Session(
                s["session_id"],
                datetime.fromisoformat(s["date"]),
                [Turn(t["turn_id"], t["speaker"], t["text"], caption=t.get("blip_caption")) for t in s["turns"]],
            )
            for s in raw["sessions"]
        ]
        questions = [Question(q["qid"], q["question"], q["category"], list(q["evidence"])) for q in raw["questions"]]
        out.append(Conversation(raw["id"], sessions, questions))
    return out


def lme_date(text: str) -> datetime:
    """Parse a LongMemEval date such as '2023/05/24 (Wed) 02:54'."""
    match = _LME_DATE.match(text.strip())
    if not match:
        raise ValueError(f"unrecognised LongMemEval date {text!r}")
    year, month, day, hour, minute = (int(g) if g else 0 for g in match.groups())
    return datetime(year, month, day, hour, minute)


def load_longmemeval(path: Path) -> list[Conversation]:
    """Read a LongMemEval-S file as one conversation per question (abstention questions skipped)."""
    out = []
    for item in _read(path):
        if item["question_id"].endswith("_abs"):
            continue
        sessions, evidence = [], []
        for n, (name, date, turns) in enumerate(
            zip(item["haystack_session_ids"], item["haystack_dates"], item["haystack_sessions"], strict=True)
        ):
            ids = [f"{name}#{n}:{k}" for k in range(len(turns))]
            evidence += [i for i, t in zip(ids, turns, strict=True) if t.get("has_answer")]
            session = [Turn(i, t["role"], t["content"], role=t["role"]) for i, t in zip(ids, turns, strict=True)]
            sessions.append(Session(f"{name}#{n}", lme_date(date), session))
        gold = frozenset(s.session_id for s in sessions if s.session_id.split("#")[0] in item["answer_session_ids"])
        question = Question(item["question_id"], item["question"], item["question_type"], evidence, gold)
        out.append(Conversation(item["question_id"], sessions, [question]))
    return out


def isolated(conversation: Conversation) -> Conversation:
    """Return the conversation with every turn in a session of its own (isolated facts, no session context)."""
    sessions = [Session(f"{s.session_id}/{t.turn_id}", s.date, [t]) for s in conversation.sessions for t in s.turns]
    return replace(conversation, sessions=sessions)
