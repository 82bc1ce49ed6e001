"""Terminal output for the CLI: aligned tables on stdout, progress bars on stderr, JSON for scripts."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from pydantic import BaseModel


def emit_json(value: BaseModel | dict[str, Any] | list[Any]) -> None:
    """Write one JSON document to stdout."""
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def line(text: str = "") -> None:
    """Write one line of human-readable output to stdout."""
    sys.stdout.write(text + "\n")


def note(text: str) -> None:
    """Write a status line to stderr (stdout may be carrying data, such as an export)."""
    sys.stderr.write(text + "\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, wrap_last: bool = True) -> None:
    """Write rows as aligned columns; the last column is cut to the terminal width when stdout is a terminal."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    if wrap_last and sys.stdout.isatty() and widths:
        room = shutil.get_terminal_size().columns - sum(w + 2 for w in widths[:-1])
        widths[-1] = max(10, min(widths[-1], room))
    line("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        line("  ".join(_fit(v, w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return " ".join(str("" if value is None else value).split())


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


def size(n: int) -> str:
    """Return a byte count as a short human-readable size."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


class Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty()
        self._start = time.monotonic()
        self._drawn = 0.0

    def advance(self, n: int) -> None:
        """Count n more items done."""
        self.update(self.done + n)

    def update(self, done: int) -> None:
        """Set how many items are done."""
        self.done = done
        now = time.monotonic()
        if self._enabled and now - self._drawn >= 0.1:  # redraw at most ten times a second
            self._drawn = now
            self._draw(now)

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self._enabled:
            self._draw(time.monotonic())
            self._stream.write("\n")
            self._stream.flush()

    def _draw(self, now: float) -> None:
        rate = self.done / max(now - self._start, 1e-6)
        if self.total:
            share = min(self.done / self.total, 1.0)
            bar = "█" * int(share * 24) + "·" * (24 - int(share * 24))
            text = f"{self.label:<8} {bar} {self.done:,}/{self.total:,} {share:4.0%}  {rate:,.0f}/s"
        else:
            text = f"{self.label:<8} {self.done:,}  {rate:,.0f}/s"
        self._stream.write("\r" + text + "\x1b[K")
        self._stream.flush()
