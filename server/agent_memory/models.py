"""The data that crosses layers: what the service returns and the faces serialise."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

Role = Literal["user", "assistant", "system", "fact"]
Backend = Literal["anthropic", "sampling", "extractive"]


class Memory(BaseModel):
    """One stored message or fact."""

    id: str
    content: str
    role: Role
    namespace: str
    session_id: str
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(description="ISO 8601 UTC timestamp.")
    superseded_by: str | None = Field(default=None, description="The id of the memory that replaced this one.")
    superseded_at: str | None = Field(default=None, description="When it was replaced (the newer memory's time).")
    expires_at: str | None = Field(default=None, description="When it stops being recalled (ISO 8601 UTC).")


class Similar(BaseModel):
    """An existing memory close to a new one, which the caller may decide it replaces."""

    id: str
    content: str
    created_at: str
    score: float = Field(description="Closeness, 0-1; higher is closer.")


class NamespaceUsed(BaseModel):
    """Which namespace a call used, and the signal that chose it."""

    namespace: str = Field(description="The namespace; '*' means every namespace of the user.")
    source: Literal["argument", "roots", "cwd", "config"] = Field(
        description="argument = given in the call; roots = the client's workspace; cwd = the project directory the"
        " server or hook runs in; config = AGENT_MEMORY_NAMESPACE."
    )
    path: str | None = Field(default=None, description="The project directory the namespace is named after.")


class RememberResult(BaseModel):
    """What `remember` acknowledges once the memory is committed."""

    id: str
    created_at: str
    duplicate: bool = Field(description="True when this exact content was already stored in this scope.")
    redacted: list[str] = Field(
        default_factory=list, description="Kinds of secrets masked as [REDACTED:<kind>] before storing."
    )
    superseded: list[str] = Field(
        default_factory=list, description="The ids this memory replaced; they leave recall but are kept."
    )
    expires_at: str | None = Field(default=None, description="When it stops being recalled (ISO 8601 UTC).")
    similar: list[Similar] = Field(
        default_factory=list,
        description="Existing memories of this namespace that say nearly the same; pass their ids as `supersedes`"
        " in a new remember call if this one replaces them.",
    )
    note: str | None = None
    namespace_used: NamespaceUsed | None = Field(default=None, description="Which namespace this used.")


class NewMemory(BaseModel):
    """One memory to store in bulk; `id` and `created_at` are kept when importing."""

    content: Any
    role: Any = "user"
    tags: Any = None
    session_id: Any = None
    namespace: Any = None
    metadata: Any = None
    created_at: Any = None
    id: Any = None
    expires_at: Any = None
    superseded_by: Any = None
    superseded_at: Any = None


class BulkItem(BaseModel):
    """What happened to one item of `remember_many`: stored, a duplicate, or rejected with the reason."""

    index: int
    id: str | None = None
    created_at: str | None = None
    duplicate: bool = False
    redacted: list[str] = Field(default_factory=list, description="Kinds of secret masked before storing.")
    error: str | None = None


class BulkResult(BaseModel):
    """The outcome of `remember_many`, per item and in total."""

    stored: int
    duplicates: int
    failed: int
    items: list[BulkItem]


class Hit(BaseModel):
    """One ranked result of `recall`."""

    id: str
    content: str
    role: Role
    namespace: str
    session_id: str
    created_at: str
    tags: list[str] = Field(default_factory=list)
    score: float = Field(description="Relevance, higher is better; comparable within one result only.")
    supersedes: list[str] = Field(default_factory=list, description="Ids of the older memories this one replaced.")
    superseded_by: str | None = Field(default=None, description="Set when this memory was replaced (history).")
    superseded_at: str | None = Field(default=None, description="When it was replaced.")
    expires_at: str | None = Field(default=None, description="When it stops being recalled.")
    possibly_outdated: str | None = Field(
        default=None,
        description="The id of a newer hit that says nearly the same: this one may be outdated (nobody marked it).",
    )


class RecallResult(BaseModel):
    """Ranked hits plus how they were found."""

    hits: list[Hit]
    mode: Literal["hybrid", "keyword"] = Field(
        description="hybrid = keyword + semantic; keyword = semantic search not available yet."
    )
    degraded: bool = Field(description="True when semantic search was unavailable and results may be weaker.")
    omitted: int = Field(default=0, description="Hits left out to fit max_tokens.")
    unindexed: int = Field(
        default=0,
        description="Memories in scope still being embedded: not yet searchable by meaning, found by keyword.",
    )
    note: str | None = None
    namespace_used: NamespaceUsed | None = Field(default=None, description="Which namespace this used.")


class RecentResult(BaseModel):
    """The newest messages in scope, oldest first."""

    messages: list[Memory]
    namespace_used: NamespaceUsed | None = Field(default=None, description="Which namespace this used.")


class SummaryRange(BaseModel):
    """Which messages a summary covers."""

    count: int
    first_id: str | None = None
    last_id: str | None = None
    first_at: str | None = None
    last_at: str | None = None


class SummaryResult(BaseModel):
    """A summary, the backend that wrote it and what it covers."""

    summary: str
    backend: Backend
    covers: SummaryRange
    new_messages: int = Field(description="Messages summarised in this call; the rest came from a stored summary.")
    incremental: bool = Field(description="True when a stored summary was extended rather than rebuilt.")
    note: str | None = None


class ForgetResult(BaseModel):
    """Confirmation that a memory is gone."""

    id: str
    deleted: bool


class StoredSummary(BaseModel):
    """A summary row as kept in SQLite."""

    text: str
    backend: Backend
    covered_ids: list[str]


class SearchState(StrEnum):
    """Whether recall can search by meaning right now."""

    READY = "ready"
    LOADING = "loading"  # the embedding model is still loading
    BEHIND = "behind"  # the vector index failed to take new memories; older ones are still searched
    OFF = "off"  # no semantic search in this process


class SearchStatus(BaseModel):
    """The state of semantic search, with a sentence for the caller when it is not ready."""

    state: SearchState
    message: str | None = None

    @property
    def ready(self) -> bool:
        """Return whether semantic search is fully available."""
        return self.state is SearchState.READY


class Group(BaseModel):
    """Memory counts of one user and namespace."""

    user: str
    namespace: str
    roles: dict[str, int]
    total: int
    pending: int


class Stats(BaseModel):
    """What the data dir holds and how big it is."""

    data_dir: str
    memories: int
    pending: int
    summaries: int
    groups: list[Group]
    vector_table: str | None
    vector_rows: int | None
    sqlite_bytes: int
    vector_bytes: int


CheckStatus = Literal["ok", "warn", "fail"]


class Check(BaseModel):
    """One doctor finding: what was checked, how it went, and the fix when it is not ok."""

    name: str
    status: CheckStatus
    detail: str
    fix: str | None = None


class IndexStatus(BaseModel):
    """The derived vector index as this process sees it."""

    open: bool = Field(description="Whether the index is open and searchable.")
    table: str | None = Field(description="The vector table the store's memories are indexed into.")
    memories: int | None = Field(description="Memories the index holds, when open.")
    pending: int = Field(description="Memories not yet indexed.")
    exact_search: bool = Field(default=False, description="Whether searches go to the exact search in memory.")
    error: str | None = Field(default=None, description="The indexer's last failure, while it retries.")


class TidyReport(BaseModel):
    """What `tidy` found (and, with apply, did): clusters of near twins and expired memories."""

    namespace: str
    clusters: list[list[Memory]] = Field(description="Near twins, oldest first; apply folds each into its oldest.")
    expired: int = Field(description="Expired memories not purged yet (upkeep purges them; apply does now).")
    applied: bool
    superseded: int = Field(default=0, description="Memories folded into the oldest of their cluster.")
    purged: int = Field(default=0, description="Expired memories purged.")
    scanned: int = Field(description="Current memories compared.")


# The web page's views (browse.py): a page of the timeline, counts, and one memory with its surroundings.


class DayCount(BaseModel):
    """How many memories were made on one UTC day."""

    day: str
    count: int


class Page(BaseModel):
    """Memories newest first, how many pass the filters, and the cursor of the next page."""

    memories: list[Memory]
    total: int = Field(description="How many pass the filters, or the cap when `capped`.")
    capped: bool = Field(default=False, description="True when more than `total` pass (counting stopped there).")
    next_cursor: str | None = None
    days: list[DayCount] = Field(default_factory=list, description="Memories per day, newest first, when asked.")


class SessionCount(BaseModel):
    """A session of a namespace with its count and newest memory's time."""

    session_id: str
    count: int
    last_at: str


class NamespaceCount(BaseModel):
    """A namespace of the user with its count."""

    namespace: str
    count: int


class CoveringSummary(BaseModel):
    """A stored summary that covers a memory."""

    created_at: str
    backend: str
    text: str


IndexedState = Literal["indexed", "pending", "set aside"]


class MemoryDetail(BaseModel):
    """One memory, whether the vector index holds it, the summaries that cover it, its versions."""

    memory: Memory
    indexed: IndexedState
    summaries: list[CoveringSummary]
    # Its supersede chain oldest first, itself included; empty when it never replaced or was replaced by another.
    versions: list[Memory] = []
