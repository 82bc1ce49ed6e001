"""The `agent-memory` command: a thin face that turns flags into Settings and calls the service."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from agent_memory import __version__
from agent_memory.config import Settings, env_names, load_settings
from agent_memory.errors import AgentMemoryError

EPILOG = "Settings can also come from the environment:\n" + "\n".join(
    f"  {env:<38} {name}" for env, name in env_names().items()
)


def _parser() -> argparse.ArgumentParser:
    # SUPPRESS: a flag given before or after the sub-command must not be reset by the other parser.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--data-dir", help="where memories are stored (default: your user data dir)")
    common.add_argument("--user", help="whose memories to use (default: 'default')")
    common.add_argument("--namespace", help="default project namespace (default: 'default')")
    common.add_argument("--model", help="embedding model name or local path (default: all-MiniLM-L6-v2)")
    common.add_argument("--log-level", help="stderr log level (default: WARNING)")

    parser = argparse.ArgumentParser(
        prog="agent-memory",
        description="Persistent memory for LLM clients over MCP.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"agent-memory {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="run the MCP server over stdio (the default) or streamable HTTP",
        description="Run the MCP server over stdio, or over HTTP for clients that take a URL.\n"
        "Examples: agent-memory serve --namespace work\n"
        "          AGENT_MEMORY_HTTP_TOKENS=$TOKEN:alice agent-memory serve --transport http --port 8765",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio", help="default: stdio")
    serve.add_argument("--host", dest="http_host", help="HTTP address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", dest="http_port", type=int, help="HTTP port, 0 for any free one (default: 8765)")
    commands.add_parser(
        "reindex",
        parents=[common],
        help="rebuild the vector index from SQLite",
        description="Re-embed every memory and rebuild the vector index. Example: agent-memory reindex",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    # Everything this process creates (SQLite, its -wal/-shm, every LanceDB file, exports) is the user's only.
    os.umask(0o077)
    try:
        settings = load_settings(
            **{
                k: getattr(args, k, None)
                for k in ("data_dir", "user", "namespace", "model", "log_level", "http_host", "http_port")
            }
        )
    except AgentMemoryError as exc:
        print(f"agent-memory: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        stream=sys.stderr, level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    try:
        if args.command == "reindex":
            return asyncio.run(_reindex(settings))
        return _serve(settings, getattr(args, "transport", "stdio"))
    except AgentMemoryError as exc:
        print(f"agent-memory: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _serve(settings: Settings, transport: str) -> int:
    from agent_memory.mcp_server import build_server

    if transport == "http":
        from agent_memory.mcp_http import serve

        serve(
            build_server(settings), settings, lambda url: print(f"agent-memory: serving MCP at {url}", file=sys.stderr)
        )
    else:
        build_server(settings).run("stdio")
    return 0


async def _reindex(settings: Settings) -> int:
    from agent_memory.service import MemoryService

    service = await MemoryService.open(settings)
    try:
        if not await service.model.wait():
            print(f"agent-memory: {service.model.error}", file=sys.stderr)
            return 1
        total = await service.indexer.reindex_all()
        if not await service.indexer.settle(timeout=24 * 3600):  # indexed, compacted, upkeep thread done
            reason = service.indexer.error or "the vector index could not be opened"
            print(f"agent-memory: {reason}", file=sys.stderr)
            return 1
        print(f"re-indexed {total} memories into {settings.vector_location}")
        return 0
    finally:
        await service.close()
