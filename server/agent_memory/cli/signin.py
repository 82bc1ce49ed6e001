"""The CLI's sign-in commands: `user list|add|remove` (people who sign in over OAuth) and `token list|revoke`."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime

from agent_memory.cli import output as out
from agent_memory.config import Settings
from agent_memory.errors import InvalidInput, NotFound


def add_flags(cmd: dict[str, argparse.ArgumentParser]) -> None:
    """Add the flags of `user` and `token`."""
    p = cmd["user"]
    p.add_argument("action", choices=["list", "add", "remove"])
    p.add_argument("name", nargs="?", help="the user (add, remove)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin (scripts)")
    p = cmd["token"]
    p.add_argument("action", choices=["list", "revoke"])
    p.add_argument("grant", nargs="?", help="the grant id `token list` shows, or its first characters (revoke)")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise InvalidInput("the two passwords differ; nothing was changed.")
    return first


async def user(args: argparse.Namespace, settings: Settings) -> int:
    """List, add (or reset the password of) and remove the users who sign in over OAuth."""
    if args.action != "list" and not args.name:
        raise InvalidInput(f"`agent-memory user {args.action}` needs a NAME.")
    from agent_memory.cli.lifecycle import opened  # here: `serve` imports this module and needs no service yet

    password = _password(args.password_stdin) if args.action == "add" else ""
    async with opened(settings) as service:
        accounts = service.accounts
        if args.action == "add":
            new = await accounts.set_user(args.name, password)
            out.line(f"{'added' if new else 'changed the password of'} {args.name}")
        elif args.action == "remove":
            if not await accounts.remove_user(args.name):
                raise NotFound(f"no user {args.name!r}; `agent-memory user list` shows them.")
            out.line(f"removed {args.name} and revoked their tokens (their memories stay)")
        else:
            users = await accounts.users()
            if args.json:
                out.emit_json([u.__dict__ for u in users])
            else:
                out.table(
                    ["user", "added", "grants"],
                    [(u.name, u.created_at[:16].replace("T", " "), u.grants) for u in users],
                )
    return 0


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


async def token(args: argparse.Namespace, settings: Settings) -> int:
    """List the live OAuth grants, or revoke one (every token of it)."""
    from agent_memory.cli.lifecycle import opened

    async with opened(settings) as service:
        grants = await service.accounts.grants()
        if args.action == "list":
            rows = [
                (g.family, g.user, g.client_name or g.client_id, _when(g.created_ts), _when(g.expires_ts))
                for g in grants
            ]
            if args.json:
                keys = ("grant", "user", "client", "since", "until")
                out.emit_json([dict(zip(keys, row, strict=True)) for row in rows])
            else:
                out.table(["grant", "user", "client", "since", "until"], rows)
            return 0
        if not args.grant:
            raise InvalidInput("`agent-memory token revoke` needs the grant id `agent-memory token list` shows.")
        matches = [g for g in grants if g.family.startswith(args.grant)]
        if len(matches) != 1:
            raise NotFound(f"{len(matches)} grants start with {args.grant!r}; give more of the id.")
        await service.accounts.revoke(matches[0].family)
        out.line(f"revoked grant {matches[0].family} of {matches[0].user}")
    return 0
