"""The project a conversation is about, from the signals a client gives: the default namespace.

The order, first that applies wins (docs/workspace.md):

1. an explicit `namespace` argument;
2. with `AGENT_MEMORY_NAMESPACE_FROM=roots` (the default), the client's first MCP root;
3. then the working directory (the server's, or a hook's `cwd`) when it is inside a project, never the
   home directory or `/`;
4. the configured namespace (`AGENT_MEMORY_NAMESPACE`, default `default`).

A directory's name is its git remote's repository name (`origin` first, else the first remote), else the
folder name of the git work tree's top, else the folder's own name. Only stdlib: the prompt hook imports this.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from agent_memory.config import NamespaceFrom

Source = Literal["argument", "roots", "cwd", "config"]
# Files that make a directory without git a project (and not just a place a client was started in).
PROJECT_MARKERS = (
    ".git",
    ".hg",
    ".svn",
    "pyproject.toml",
    "package.json",
    "Cargo.toml",
    "go.mod",
    "pom.xml",
    "build.gradle",
    "Gemfile",
    "composer.json",
    "CMakeLists.txt",
    "Makefile",
    ".project",
)
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Resolved:
    """The namespace to use, which signal gave it, and the directory it was named after (if any)."""

    namespace: str
    source: Source
    path: str | None = None


def resolve(
    *,
    explicit: str | None,
    configured: str,
    mode: NamespaceFrom,
    roots: Sequence[str] = (),
    cwd: Path | None = None,
    home: Path | None = None,
) -> Resolved:
    """Return the default namespace in the documented order (module docstring)."""
    if explicit is not None:
        return Resolved(explicit, "argument")
    if mode == "roots":
        home = Path.home() if home is None else home
        for uri in roots[:1]:
            path = root_path(uri)
            if path is not None and not _is_home_or_top(path, home):
                name = project_name(path, home)
                if name:
                    return Resolved(name, "roots", str(path))
        top = project_dir(cwd, home) if cwd is not None else None
        if top is not None:
            name = project_name(top, home)
            if name:
                return Resolved(name, "cwd", str(top))
    return Resolved(configured, "config")


def root_path(uri: str) -> Path | None:
    """Return the local directory of a `file://` root URI, or None for any other scheme."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def project_dir(cwd: Path, home: Path) -> Path | None:
    """Return the project directory `cwd` is in: the git work tree's top, else `cwd` itself if it has a marker."""
    cwd = cwd.expanduser()
    if _is_home_or_top(cwd, home):
        return None
    for directory in (cwd, *cwd.parents):
        if _is_home_or_top(directory, home):
            break
        if (directory / ".git").exists():
            return directory
    if any((cwd / marker).exists() for marker in PROJECT_MARKERS):
        return cwd
    return None


def project_name(path: Path, home: Path | None = None) -> str | None:
    """Return the stable name of a project directory: git remote's repository name, else the folder name."""
    home = Path.home() if home is None else home
    top = next((d for d in (path, *path.parents) if (d / ".git").exists() and d != home), None)
    remote = _remote_name(top / ".git") if top is not None else None
    return _clean(remote or (top or path).name)


def _remote_name(dot_git: Path) -> str | None:
    """Return the repository name of the `origin` remote (else the first remote) in a git config."""
    config_file = _git_config(dot_git)
    if config_file is None:
        return None
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read(config_file, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return None
    remotes = [s for s in parser.sections() if s.startswith('remote "') and parser.has_option(s, "url")]
    remotes.sort(key=lambda s: s != 'remote "origin"')
    for section in remotes:
        url = parser.get(section, "url").strip().rstrip("/")
        # git@host:owner/repo.git, https://host/owner/repo.git, /srv/git/repo.git: the last path part.
        name = re.split(r"[/:\\]", url)[-1].removesuffix(".git")
        if name:
            return name
    return None


def _git_config(dot_git: Path) -> Path | None:
    """Return the config file of a repository; `.git` may be a file pointing elsewhere (worktrees, submodules)."""
    if dot_git.is_dir():
        return dot_git / "config"
    try:
        pointer = dot_git.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not pointer.startswith("gitdir:"):
        return None
    gitdir = (dot_git.parent / pointer.removeprefix("gitdir:").strip()).resolve()
    common = gitdir / "commondir"
    if common.is_file():
        gitdir = (gitdir / common.read_text(encoding="utf-8").strip()).resolve()
    return gitdir / "config"


def _is_home_or_top(path: Path, home: Path) -> bool:
    return path == home or path == path.parent


def _clean(name: str) -> str | None:
    # A namespace is 1-64 printable characters without surrounding spaces (config.py).
    name = _UNSAFE.sub("", name).strip()[:64].strip()
    return name or None
