"""The default namespace's documented order, and the names projects get."""

from __future__ import annotations

from pathlib import Path

from agent_memory.workspace import project_dir, project_name, resolve
from tests.mcp.test_workspace import make_repo


def test_explicit_beats_roots_beats_cwd_beats_config(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    root = make_repo(tmp_path, "root", None)
    cwd = make_repo(tmp_path, "cwd", None)
    common = {"configured": "conf", "mode": "roots", "home": home}
    assert resolve(explicit="x", roots=[root.as_uri()], cwd=cwd, **common).source == "argument"  # type: ignore[arg-type]
    assert resolve(explicit=None, roots=[root.as_uri()], cwd=cwd, **common).namespace == "root"  # type: ignore[arg-type]
    assert resolve(explicit=None, roots=[], cwd=cwd, **common).namespace == "cwd"  # type: ignore[arg-type]
    assert resolve(explicit=None, roots=[], cwd=home, **common).namespace == "conf"  # type: ignore[arg-type]
    pinned = resolve(explicit=None, configured="conf", mode="config", roots=[root.as_uri()], cwd=cwd, home=home)
    assert (pinned.namespace, pinned.source) == ("conf", "config")


def test_the_home_directory_and_plain_folders_are_not_projects(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".git").mkdir(parents=True)  # a dotfiles repository in $HOME makes no project of it
    (home / "Downloads").mkdir()
    assert project_dir(home, home) is None
    assert project_dir(home / "Downloads", home) is None
    assert project_dir(Path("/"), home) is None
    (home / "notes").mkdir()
    (home / "notes" / "pyproject.toml").write_text("")
    assert project_dir(home / "notes", home) == home / "notes"


def test_a_subdirectory_of_a_checkout_is_named_after_the_checkouts_remote(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "local-folder", "https://github.com/acme/widgets.git/")
    (repo / "src" / "deep").mkdir(parents=True)
    assert project_dir(repo / "src" / "deep", tmp_path / "home") == repo
    assert project_name(repo, tmp_path / "home") == "widgets"
    assert project_name(make_repo(tmp_path, "no-remote", None), tmp_path / "home") == "no-remote"


def test_a_git_worktree_reads_the_main_repositorys_remote(tmp_path: Path) -> None:
    main = make_repo(tmp_path, "main", "git@example.com:team/shared-name.git")
    (main / ".git" / "worktrees" / "wt").mkdir(parents=True)
    (main / ".git" / "worktrees" / "wt" / "commondir").write_text("../..\n")
    tree = tmp_path / "wt"
    tree.mkdir()
    (tree / ".git").write_text(f"gitdir: {main / '.git' / 'worktrees' / 'wt'}\n")
    assert project_name(tree, tmp_path / "home") == "shared-name"


def test_a_root_that_is_not_a_file_uri_is_ignored(tmp_path: Path) -> None:
    used = resolve(explicit=None, configured="conf", mode="roots", roots=["https://example.com/x"], home=tmp_path)
    assert used.source == "config"
