"""The web page's use cases, part of the service: pages of the timeline, counts, one memory, edits, bulk forget."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, get_args

from agent_memory.config import Settings
from agent_memory.errors import InvalidInput, NotFound
from agent_memory.models import CoveringSummary as Covering
from agent_memory.models import (
    DayCount,
    ForgetResult,
    Memory,
    MemoryDetail,
    NamespaceCount,
    Page,
    RememberResult,
    Role,
    SessionCount,
)
from agent_memory.store.protocol import MemoryStore
from agent_memory.store.rows import Filters
from agent_memory.write import prepare

ROLES: tuple[str, ...] = get_args(Role)
MAX_PAGE = 200
# Past this many matches a page says "10000+" instead of counting every row a filter must read.
COUNT_CAP = 10_000
# The chart reads at most this many of the newest matching memories.
CHART_MEMORIES = 5_000
_STATES = {1: "indexed", 0: "pending", -1: "set aside"}


class Browsing:
    """Browsing methods of MemoryService (which provides the attributes and methods below)."""

    settings: Settings
    _store: MemoryStore

    if TYPE_CHECKING:  # provided by MemoryService

        def _filters(
            self,
            namespace: str | None,
            session_id: str | None,
            tags: list[str] | None,
            since: str | None,
            until: str | None,
        ) -> Filters: ...

        async def remember(
            self,
            content: str,
            *,
            role: str = "user",
            tags: list[str] | None = None,
            session_id: str | None = None,
            namespace: str | None = None,
            metadata: dict[str, Any] | None = None,
            created_at: str | None = None,
            supersedes: list[str] | None = None,
        ) -> RememberResult: ...

        async def forget(self, memory_id: str, *, namespace: str | None = None) -> ForgetResult: ...

        async def history(self, memory_id: str) -> list[Memory]: ...

    async def browse(
        self,
        *,
        namespace: str | None = None,
        session_id: str | None = None,
        tags: list[str] | None = None,
        roles: Sequence[str] = (),
        since: str | None = None,
        until: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        count_cap: int = COUNT_CAP,
        days: int = 0,
    ) -> Page:
        """Return a page of memories newest first; `cursor` is the previous page's `next_cursor`.

        `days` > 0 also counts the memories of the newest days, in the same pass over the matches as the total.
        """
        filters = self._filters(namespace, session_id, tags, since, until)
        wanted = _roles(roles)
        limit = max(1, min(int(limit), MAX_PAGE))
        rows = await self._store.browse.page(self.settings.user, filters, wanted, _cursor(cursor), limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        chart: list[DayCount] = []
        if days > 0:
            per_day = await self._store.browse.per_day(self.settings.user, filters, wanted, count_cap + 1)
            total = sum(count for _, count in per_day)
            chart = _days(per_day, total > count_cap)[:days]
        else:
            total = await self._store.browse.count(self.settings.user, filters, wanted, count_cap + 1)
        return Page(
            memories=[m for m, _, _ in rows],
            total=min(total, count_cap),
            capped=total > count_cap,
            next_cursor=f"{rows[-1][1]!r}:{rows[-1][2]}" if more else None,
            days=chart,
        )

    async def day_counts(
        self,
        *,
        namespace: str | None = None,
        session_id: str | None = None,
        tags: list[str] | None = None,
        roles: Sequence[str] = (),
        since: str | None = None,
        until: str | None = None,
        days: int = 30,
        newest: int = CHART_MEMORIES,
    ) -> list[DayCount]:
        """Return how many memories each of the newest `days` days holds, newest first, read from the newest ones."""
        filters = self._filters(namespace, session_id, tags, since, until)
        rows = await self._store.browse.per_day(self.settings.user, filters, _roles(roles), newest)
        return _days(rows, sum(count for _, count in rows) >= newest)[:days]

    async def sessions(self, *, namespace: str | None = None, limit: int = 200) -> list[SessionCount]:
        """Return a namespace's sessions with counts, most recently active first."""
        space = prepare.namespace(namespace, self.settings)
        rows = await self._store.browse.sessions(self.settings.user, space, limit)
        return [SessionCount(session_id=s, count=c, last_at=at) for s, c, at in rows]

    async def namespace_counts(self) -> list[NamespaceCount]:
        """Return this user's namespaces with counts."""
        rows = await self._store.browse.namespace_counts(self.settings.user)
        return [NamespaceCount(namespace=n, count=c) for n, c in rows]

    async def memory(self, memory_id: str) -> MemoryDetail:
        """Return one of this user's memories with its index state, the summaries covering it and its versions."""
        found = await self._store.browse.detail(self.settings.user, str(memory_id)[:200])
        if found is None:
            raise NotFound(f"No memory with id {str(memory_id)[:80]!r}: it was forgotten, or belongs to no one here.")
        memory, state = found
        covering = await self._store.browse.covering(self.settings.user, memory.id)
        versions = await self._store.chain(self.settings.user, memory.id)
        return MemoryDetail(
            memory=memory,
            indexed=_STATES.get(state, "pending"),  # type: ignore[arg-type]
            summaries=[Covering(created_at=a, backend=b, text=t) for a, b, t in covering],
            versions=versions if len(versions) > 1 else [],
        )

    async def edit(self, memory_id: str, *, content: str, tags: list[str]) -> RememberResult:
        """Store new content and tags as a memory that supersedes this one (role, session, namespace, metadata kept).

        Nothing is lost: the old version stays in the chain (`agent-memory history`, `recall(include_superseded)`).
        """
        old = (await self.memory(memory_id)).memory
        return await self.remember(
            content,
            role=old.role,
            tags=tags,
            metadata=old.metadata,
            session_id=old.session_id,
            namespace=old.namespace,
            supersedes=[old.id],
        )

    async def forget_many(self, memory_ids: Sequence[str]) -> list[str]:
        """Forget several of this user's memories with their earlier versions; return the ids asked for and forgotten.

        A person forgetting an edited memory means the fact: the versions it replaced go too, or the one before
        would become current again.
        """
        gone = []
        for memory_id in memory_ids:
            found = await self._store.browse.detail(self.settings.user, str(memory_id)[:200])
            if found is None:
                continue
            chain = await self.history(found[0].id)
            position = next(n for n, m in enumerate(chain) if m.id == found[0].id)
            for version in reversed(chain[: position + 1]):
                await self.forget(version.id, namespace=version.namespace)
            gone.append(found[0].id)
        return gone


def _days(rows: list[tuple[float, int]], cut: bool) -> list[DayCount]:
    """Return the per-day counts; when reading stopped early (`cut`), without the oldest day, which may be short."""
    return [
        DayCount(day=datetime.fromtimestamp(day, UTC).date().isoformat(), count=n)
        for day, n in rows[: -1 if cut else None]
    ]


def _roles(roles: Sequence[str]) -> tuple[str, ...]:
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise InvalidInput(f"unknown role {bad[0][:20]!r}: use one of {', '.join(ROLES)}.")
    return tuple(roles)


def _cursor(cursor: str | None) -> tuple[float, int] | None:
    if not cursor:
        return None
    try:
        ts, rowid = cursor.split(":")
        return float(ts), int(rowid)
    except ValueError:
        raise InvalidInput("the page cursor is malformed: start again from the first page.") from None
