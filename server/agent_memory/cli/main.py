"""The `agent-memory` command: a thin face that turns flags into Settings and calls the service."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agent_memory import __version__
from agent_memory.config import Settings, env_names, load_settings
from agent_memory.errors import AgentMemoryError, InvalidInput

if TYPE_CHECKING:
    import argparse

EPILOG = (
    "Run `agent-memory COMMAND --help` for a command's flags and an example.\n\n"
    "Settings can also come from the environment:\n"
    + "\n".join(f"  {env:<38} {name}" for env, name in env_names().items())
)

# name, one-line help, example(s)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": (
        "run the MCP server over stdio (the default) or streamable HTTP",
        "agent-memory serve --namespace work\n"
        "  AGENT_MEMORY_HTTP_TOKENS=$TOKEN:alice agent-memory serve --transport http --port 8765",
    ),
    "ui": (
        "open a page in the browser to search, browse, correct and remove memories",
        "agent-memory ui\n  agent-memory ui --no-browser --port 8800",
    ),
    "remember": (
        "store a memory",
        "agent-memory remember 'The staging database is db-stage-2' --role fact --tag infra\n"
        "  echo 'long note' | agent-memory remember -",
    ),
    "recall": ("find the memories most relevant to a query", "agent-memory recall 'which database for staging?'"),
    "recent": ("list the newest memories, oldest first", "agent-memory recent --limit 10"),
    "summarize": ("summarise stored history", "agent-memory summarize --session cli --focus decisions"),
    "forget": (
        "delete memories by id (in the namespace given by --namespace)",
        "agent-memory forget 3f9c2d0e8a7b4c1d9e6f5a4b3c2d1e0f --namespace work",
    ),
    "export": (
        "write memories to JSONL: every user and namespace unless --user/--namespace are given",
        "agent-memory export -o memories.jsonl --namespace work",
    ),
    "import": (
        "read memories from an export, a server-memory file, a mem0 export, or conversations"
        " (Claude Code transcripts, the claude.ai or ChatGPT export)",
        "agent-memory import memories.jsonl\n  agent-memory import ~/.mcp/memory.json --format server-memory\n"
        "  agent-memory import ~/.claude/projects\n  agent-memory import chatgpt-export.zip",
    ),
    "reindex": ("rebuild the vector index from SQLite", "agent-memory reindex"),
    "stats": ("show counts per namespace and role, index state and disk use", "agent-memory stats --json"),
    "doctor": ("check the data dir, SQLite, the vector index, the model and the API key", "agent-memory doctor"),
    "user": (
        "list, add or remove the users who sign in over OAuth (add also resets a password)",
        "agent-memory user add alice\n  agent-memory user list",
    ),
    "token": ("list or revoke OAuth grants (a grant is every token of one sign-in)", "agent-memory token list"),
    "hook": (
        "answer a client hook event (session-start, prompt, stop, pre-compact) read as JSON from stdin",
        'echo \'{"session_id": "s1", "cwd": "/src/app", "prompt": "deploy steps"}\' | agent-memory hook prompt',
    ),
    "install-hooks": (
        "add agent-memory's hooks to a client's settings (--client claude-code [--project|--user] [--uninstall])",
        "agent-memory install-hooks --client claude-code --project",
    ),
    "history": (
        "show the chain of a memory: what it replaced and what replaced it, oldest first",
        "agent-memory history 3f9c2d0e8a7b4c1d9e6f5a4b3c2d1e0f",
    ),
    "tidy": (
        "report near-duplicate memories and expired ones; --apply folds each cluster into its oldest memory",
        "agent-memory tidy --namespace work\n  agent-memory tidy --apply --json",
    ),
}


def _parser() -> argparse.ArgumentParser:
    import argparse  # here, not at the top: `agent-memory hook` starts without it

    # SUPPRESS: a flag given before or after the sub-command must not be reset by the other parser,
    # and commands can tell a flag given on the command line from a default.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--data-dir", help="where memories are stored (default: your user data dir)")
    common.add_argument("--database-url", help="a PostgreSQL URL to use as the store instead of SQLite in the data dir")
    common.add_argument("--user", help="whose memories to use (default: 'default')")
    common.add_argument("--namespace", help="default project namespace (default: 'default')")
    common.add_argument("--model", help="embedding model name or local path (default: all-MiniLM-L6-v2)")
    common.add_argument("--log-level", help="stderr log level (default: WARNING)")
    common.add_argument("--json", action="store_true", help="print JSON for scripts instead of tables")

    parser = argparse.ArgumentParser(
        prog="agent-memory",
        description="Persistent memory for LLM clients over MCP, and the tools to manage it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"agent-memory {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # backup, restore and migrate (issue 16) list themselves in cli/operate.py.
    from agent_memory.cli.operate import COMMANDS as OPERATIONS

    cmd = {
        name: sub.add_parser(
            name,
            parents=[common],
            help=text,
            description=text[0].upper() + text[1:] + ".",
            epilog=f"example:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        for name, (text, example) in {**COMMANDS, **OPERATIONS}.items()
    }
    _use_flags(cmd)
    _admin_flags(cmd)
    # Here, not at the top: `agent-memory hook` runs before any parser and must import nothing heavy.
    from agent_memory.cli import facts, operate, signin

    signin.add_flags(cmd)
    facts.add_flags(cmd)
    operate.add_flags(cmd)
    return parser


def _use_flags(cmd: dict[str, argparse.ArgumentParser]) -> None:
    """Add the flags of the commands that serve, store and search memories."""
    p = cmd["serve"]
    p.add_argument("--transport", choices=["stdio", "http"], default="stdio", help="default: stdio")
    p.add_argument("--host", dest="http_host", help="HTTP address to bind (default: 127.0.0.1)")
    p.add_argument("--port", dest="http_port", type=int, help="HTTP port, 0 for any free one (default: 8765)")

    p = cmd["ui"]
    p.add_argument("--port", dest="http_port", type=int, help="port on 127.0.0.1 (default: any free one)")
    p.add_argument("--no-browser", action="store_true", help="print the sign-in link without opening a browser")

    p = cmd["remember"]
    p.add_argument("content", help="the text to store; '-' reads it from stdin")
    p.add_argument("--role", default="user", choices=["user", "assistant", "system", "fact"])
    p.add_argument("--tag", action="append", dest="tags", metavar="TAG", help="a label; repeat for more")
    p.add_argument("--session", default="cli", help="conversation id (default: 'cli')")
    p.add_argument("--metadata", help="a JSON object kept with the memory")
    p.add_argument("--created-at", help="when it was said (ISO 8601; default now)")
    p.add_argument("--wait-index", action="store_true", help="load the model and index the memory before exiting")

    p = cmd["recall"]
    p.add_argument("query")
    p.add_argument("--limit", type=int, default=5, help="how many hits (default 5)")
    p.add_argument("--tag", action="append", dest="tags", metavar="TAG", help="only memories with this tag")
    p.add_argument("--session", help="only this conversation")
    p.add_argument("--since", help="only at or after this ISO 8601 date/time")
    p.add_argument("--until", help="only at or before this ISO 8601 date/time")
    p.add_argument("--max-tokens", type=int, help="token budget for the hits")
    p.add_argument("--keyword", action="store_true", help="keyword + recency only: skip loading the model (fast)")
    p.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the model (default 120)")

    p = cmd["recent"]
    p.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    p.add_argument("--session", help="only this conversation")

    p = cmd["summarize"]
    p.add_argument("--session", help="only this conversation")
    p.add_argument("--limit", type=int, help="only the newest N messages")
    p.add_argument("--since", help="only messages at or after this ISO 8601 date/time")
    p.add_argument("--focus", help="what the summary should concentrate on")

    # Dispatched before this parser (main): listed here for --help.
    cmd["hook"].add_argument("event", choices=["session-start", "prompt", "stop", "pre-compact"])

    p = cmd["forget"]
    p.add_argument("ids", nargs="+", metavar="ID")
    p.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the vector index (default 120)")


def _admin_flags(cmd: dict[str, argparse.ArgumentParser]) -> None:
    """Add the flags of the commands that move, rebuild and check the store."""
    p = cmd["export"]
    p.add_argument("-o", "--output", default="-", help="file to write (default stdout)")

    p = cmd["import"]
    p.add_argument("file", help="the file to read; '-' reads stdin")
    p.add_argument(
        "--format",
        default="auto",
        choices=["auto", "agent-memory", "server-memory", "mem0", "claude-code", "claude-ai", "chatgpt"],
    )
    p.add_argument("--tools", choices=["skip", "store"], default="skip", help="conversations' tool calls and results")
    p.add_argument("--no-index", action="store_true", help="commit only; a server or `reindex` indexes later")

    p = cmd["doctor"]
    p.add_argument("--no-model", action="store_true", help="skip loading the embedding model (faster)")


# The common flags that become settings (the rest belong to the commands).
_SETTING_FLAGS = ("data_dir", "database_url", "user", "namespace", "model", "log_level", "http_host", "http_port")


def _hook_command(argv: list[str]) -> int | None:
    """Run `hook` or `install-hooks` before the common flags are parsed; None for every other command.

    A hook must start fast, and install-hooks has a --user of its own.
    """
    if argv[:1] == ["hook"] and not {"-h", "--help"} & set(argv):
        from agent_memory.hooks.run import main as hook

        return hook(argv[1:], sys.stdin, sys.stdout)
    if argv[:1] == ["install-hooks"]:
        from agent_memory.hooks.install import main as install

        return install(argv[1:])
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    hooked = _hook_command(argv)
    if hooked is not None:
        return hooked
    args = _parser().parse_args(argv)
    args.json = getattr(args, "json", False)
    # Everything this process creates (SQLite, its -wal/-shm, every LanceDB file, exports) is the user's only.
    os.umask(0o077)
    try:
        settings = load_settings(**{k: getattr(args, k, None) for k in _SETTING_FLAGS})
    except AgentMemoryError as exc:
        print(f"agent-memory: {exc}", file=sys.stderr)
        return 2
    import asyncio  # here, not at the top: `agent-memory hook` must start without it
    import logging

    logging.basicConfig(
        stream=sys.stderr, level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    try:
        if args.command in (None, "serve"):
            return _serve(settings, getattr(args, "transport", "stdio"))
        if args.command == "ui":
            from agent_memory.cli.ui import run_ui

            return run_ui(
                settings, explicit_port=getattr(args, "http_port", None) is not None, browser=not args.no_browser
            )
        from agent_memory.cli.commands import run

        return asyncio.run(run(args, settings))
    except InvalidInput as exc:  # bad arguments: a usage error, like argparse's
        print(f"agent-memory: {exc}", file=sys.stderr)
        return 2
    except AgentMemoryError as exc:
        print(f"agent-memory: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `agent-memory export | head`: the reader is gone, nothing more to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return 1
    except OSError as exc:  # files the user named: missing, unreadable, disk full
        print(f"agent-memory: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _serve(settings: Settings, transport: str) -> int:
    from agent_memory.mcp.server import build_server
    from agent_memory.service import tune_process

    tune_process()
    if transport == "http":
        from agent_memory.cli.ui import page_beside_mcp
        from agent_memory.mcp.http import serve

        # A shared HTTP server is not started in anyone's workspace: no cwd signal.
        serve(page_beside_mcp, settings, lambda url: print(f"agent-memory: serving MCP at {url}", file=sys.stderr))
    else:
        build_server(settings, cwd=Path.cwd()).run("stdio")
    return 0
