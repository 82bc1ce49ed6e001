"""`agent-memory hook EVENT`: read the client's JSON on stdin, answer on stdout, and never fail the session.

Any error (a broken data dir, a bad payload, a locked file) exits 0 with nothing injected and is appended to
`hooks.log` in the data dir (or in the temp dir when the data dir is unusable). Session start and prompt
import only the standard library and the quick reader (`lookup.py`); stop and pre-compact hand the event to
a detached `hook EVENT --wait` process, which loads the service to write, without the model.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from agent_memory import lookup, workspace
from agent_memory.config import Settings, load_settings
from agent_memory.conversations.turns import session_label
from agent_memory.hooks import payload, render

LOG_NAME = "hooks.log"
CAPTURES = ("stop", "pre-compact")


def main(argv: Sequence[str], stdin: TextIO, stdout: TextIO, environ: Mapping[str, str] | None = None) -> int:
    """Run one hook event; always return 0 (a hook must never block or fail the client's session)."""
    event = argv[0] if argv else ""
    settings: Settings | None = None
    try:
        settings = load_settings(environ, **_flags(argv[1:]))
        if event not in payload.EVENTS:
            raise payload.BadPayload(f"unknown hook event {event!r}; use one of {', '.join(payload.EVENTS)}")
        text = stdin.read()
        if event in CAPTURES and "--wait" not in argv:
            # Storing takes a second or two (the service's imports, the store); the session need not wait.
            _capture_in_background(argv, text)
            return 0
        answer = handle(settings, payload.parse(event, text))
        if answer:
            stdout.write(answer + "\n")
    except Exception:  # the outermost face of a hook: log, inject nothing, exit 0
        import traceback

        _log(settings, event, traceback.format_exc())
    return 0


def handle(settings: Settings, hook: payload.HookInput) -> str:
    """Return what the event writes on stdout ('' for nothing)."""
    cwd = Path(hook.cwd) if hook.cwd else None
    used = workspace.resolve(explicit=None, configured=settings.namespace, mode=settings.namespace_from, cwd=cwd)
    session = session_label(hook.session_id) if hook.session_id else None
    if hook.event in ("stop", "pre-compact"):
        if hook.transcript_path:
            from agent_memory.hooks.capture import capture

            capture(settings, Path(hook.transcript_path), used.namespace)
        return ""
    if not settings.sqlite_path.is_file():
        return ""  # nothing stored yet
    if hook.event == "prompt":
        rows = lookup.prompt_context(settings, used.namespace, hook.prompt, session)
        return payload.context_output(hook.event, render.prompt_block(used.namespace, rows))
    briefing = lookup.session_context(settings, used.namespace, session, hook.source)  # type: ignore[arg-type]
    return payload.context_output(hook.event, render.session_block(used.namespace, briefing))


def _capture_in_background(argv: Sequence[str], text: str) -> None:
    """Run the same capture with --wait in a detached process, handing it the event's JSON."""
    import subprocess

    child = subprocess.Popen(
        [sys.executable, "-m", "agent_memory", "hook", *argv, "--wait"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives this hook, and the client's signals to it
    )
    assert child.stdin is not None
    child.stdin.write(text.encode())
    child.stdin.close()


def _flags(args: Sequence[str]) -> dict[str, str]:
    """Read the few flags a hook command line may carry (`--data-dir`, `--user`, `--namespace`)."""
    known = {"--data-dir": "data_dir", "--user": "user", "--namespace": "namespace"}  # --wait: see main
    values: dict[str, str] = {}
    pairs = iter(args)
    for flag in pairs:
        name, _, inline = flag.partition("=")
        if name in known:
            values[known[name]] = inline or next(pairs, "")
    return values


def _log(settings: Settings | None, event: str, text: str) -> None:
    """Append the error to the hooks log; a log that cannot be written is given up silently."""
    import tempfile  # only on an error: its imports cost the fast path ~10 ms

    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    entry = f"{stamp} hook {event or '?'} failed (nothing injected):\n{text}\n"
    places = [settings.data_dir / LOG_NAME] if settings is not None else []
    places.append(Path(tempfile.gettempdir()) / f"agent-memory-hooks-{os.getuid()}.log")
    for place in places:
        try:
            with place.open("a", encoding="utf-8") as log:
                log.write(entry)
            return
        except OSError:
            continue
    sys.stderr.write(entry)
