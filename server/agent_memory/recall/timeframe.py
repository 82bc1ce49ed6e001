"""Time expressions in a query ("yesterday", "two weeks ago", "in May 2023", "last Tuesday") as a time window.

Recall uses the window softly: memories written then get extra weight, nothing outside it is dropped, because
people misremember dates and the words can be about something else ("a meeting I moved to last week"). Days
are UTC days with half a day of slack either side, since the user's own time zone is unknown here. Fuzzy
expressions ("three weeks ago") get slack that grows with the distance; future-looking ones ("this weekend",
"next month") give no window, since nothing remembered lies in the future.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "a couple of": 2,
    "couple of": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "a few": 3,
    "few": 3,
}
_MONTHS = {name.lower(): n for n, name in enumerate(calendar.month_name) if name} | {
    name.lower(): n for n, name in enumerate(calendar.month_abbr) if name and name != "May"
}
_WEEKDAYS = {name.lower(): n for n, name in enumerate(calendar.day_name)}
_UNIT_DAYS = {"day": 1.0, "week": 7.0, "month": 30.44, "year": 365.25}

_NUM = r"(?P<n>\d{1,3}|" + "|".join(sorted((re.escape(k) for k in _NUMBERS), key=len, reverse=True)) + r")"
_UNIT = r"(?P<unit>day|week|month|year)s?"
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"

HALF_DAY = timedelta(hours=12)


@dataclass(frozen=True)
class Timeframe:
    """A window of time a query points at, and the words that said so (kept out of keyword matching)."""

    start: datetime
    end: datetime
    words: tuple[str, ...]


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _month_span(year: int, month: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=UTC)
    return start, start + timedelta(days=calendar.monthrange(year, month)[1])


def _ago(n: int, unit: str, now: datetime) -> tuple[datetime, datetime]:
    """Return the window of 'n units ago': centred on that moment, slack growing with the distance."""
    days = n * _UNIT_DAYS[unit]
    slack = timedelta(days=max(0.5, days * 0.25, _UNIT_DAYS[unit] / 2))
    centre = now - timedelta(days=days)
    return centre - slack, min(centre + slack, now)


def _past(n: int, unit: str, now: datetime) -> tuple[datetime, datetime]:
    """Return the window of 'in the last n units': from then until now."""
    return now - timedelta(days=n * _UNIT_DAYS[unit]) - HALF_DAY, now


def _last_named(unit: str, now: datetime) -> tuple[datetime, datetime]:
    """Return the previous calendar week, weekend, month or year ('last week', 'last month')."""
    today = _day(now)
    if unit == "week":
        monday = today - timedelta(days=today.weekday())
        return monday - timedelta(days=7), monday
    if unit == "weekend":
        saturday = today - timedelta(days=(today.weekday() - 5) % 7 or 7)
        return saturday, saturday + timedelta(days=2)
    if unit == "month":
        year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
        return _month_span(year, month)
    return datetime(now.year - 1, 1, 1, tzinfo=UTC), datetime(now.year, 1, 1, tzinfo=UTC)


def _this_named(unit: str, now: datetime) -> tuple[datetime, datetime]:
    """Return the current calendar week, month or year up to now."""
    today = _day(now)
    if unit == "week":
        return today - timedelta(days=today.weekday()), now
    if unit == "month":
        return today.replace(day=1), now
    return today.replace(month=1, day=1), now


def _month_window(month: int, year: int | None, now: datetime) -> tuple[datetime, datetime]:
    """Return a named month: of the given year, else its latest occurrence up to now."""
    if year is None:
        year = now.year if month <= now.month else now.year - 1
    return _month_span(year, month)


def _date_window(month: int, day: int, year: int | None, now: datetime) -> tuple[datetime, datetime] | None:
    """Return a calendar day: of the given year, else its latest occurrence up to now."""
    years = [year] if year is not None else [now.year, now.year - 1]
    for y in years:
        try:
            start = datetime(y, month, day, tzinfo=UTC)
        except ValueError:
            return None
        if year is not None or start <= now:
            return start, start + timedelta(days=1)
    return None


def _number(text: str) -> int:
    return int(text) if text.isdigit() else _NUMBERS[text]


_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bthe day before yesterday\b"), "before_yesterday"),
    (re.compile(r"\byesterday\b"), "yesterday"),
    (re.compile(r"\b(?:today|this morning|this afternoon|this evening|tonight)\b"), "today"),
    (re.compile(rf"\b(?:the )?(?:last|past|previous) {_NUM} {_UNIT}\b"), "past"),
    (re.compile(rf"\b{_NUM} {_UNIT} ago\b"), "ago"),
    (re.compile(r"\b(?:last|past|previous) (?P<unit>week|weekend|month|year)\b"), "last_named"),
    (re.compile(r"\bthis (?P<unit>week|month|year)\b"), "this_named"),
    (re.compile(r"\blast (?P<weekday>" + "|".join(_WEEKDAYS) + r")\b"), "last_weekday"),
    (re.compile(rf"\b{_MONTH} {_DAY}(?:,? {_YEAR})?\b"), "month_day"),
    (re.compile(rf"\b{_DAY} of {_MONTH}(?:,? {_YEAR})?\b"), "month_day"),
    (re.compile(rf"\b{_DAY} {_MONTH},? {_YEAR}\b"), "month_day"),
    (re.compile(rf"\bsince {_MONTH}(?:,? {_YEAR})?\b"), "since_month"),
    # A bare month name needs a preposition: "may" and "march" are also everyday words.
    (re.compile(rf"\b(?:in|during|from|of|early|late|mid|mid-) ?(?:the month of )?{_MONTH}(?:,? {_YEAR})?\b"), "month"),
    (re.compile(rf"\b{_MONTH},? {_YEAR}\b"), "month"),
    (re.compile(rf"\b(?:in|during|from) {_YEAR}\b"), "year"),
]


def _window(kind: str, m: re.Match[str], now: datetime) -> tuple[datetime, datetime] | None:
    groups = m.groupdict()
    today = _day(now)
    if kind == "today":
        return today, now
    if kind in ("yesterday", "before_yesterday"):
        start = today - timedelta(days=1 if kind == "yesterday" else 2)
        return start, start + timedelta(days=1)
    if kind == "past":
        return _past(_number(groups["n"]), groups["unit"], now)
    if kind == "ago":
        return _ago(_number(groups["n"]), groups["unit"], now)
    if kind == "last_named":
        return _last_named(groups["unit"], now)
    if kind == "this_named":
        return _this_named(groups["unit"], now)
    if kind == "last_weekday":
        back = (today.weekday() - _WEEKDAYS[groups["weekday"]]) % 7 or 7
        start = today - timedelta(days=back)
        return start, start + timedelta(days=1)
    year = int(groups["year"]) if groups.get("year") else None
    if kind == "month_day":
        if groups["month"] == "may" and year is None and not re.search(r"\d(?:st|nd|rd|th)|of", m.group(0)):
            return None  # "you may 2 ..." is not a date; "May 2nd", "2nd of May" and "May 2, 2023" are
        return _date_window(_MONTHS[groups["month"]], int(groups["day"]), year, now)
    if kind == "month":
        return _month_window(_MONTHS[groups["month"]], year, now)
    if kind == "since_month":
        return _month_window(_MONTHS[groups["month"]], year, now)[0], now
    if kind == "year" and year is not None:
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    return None


def find(query: str, now: datetime) -> Timeframe | None:
    """Return the time window a query mentions (the span of all its expressions), or None."""
    text = query.lower()
    spans: list[tuple[datetime, datetime]] = []
    words: list[str] = []
    taken: list[tuple[int, int]] = []
    for pattern, kind in _RULES:
        for m in pattern.finditer(text):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue  # a longer rule already read these words ("the day before yesterday")
            window = _window(kind, m, now)
            if window is None or window[0] > now:
                continue
            taken.append(m.span())
            spans.append((window[0] - HALF_DAY, min(window[1] + HALF_DAY, now + HALF_DAY)))
            words.extend(re.findall(r"\w+", m.group(0)))
    if not spans:
        return None
    return Timeframe(min(s for s, _ in spans), max(e for _, e in spans), tuple(dict.fromkeys(words)))
