"""The layering rules of DESIGN.md, and a start-up that imports nothing heavy."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "server" / "agent_memory"

OWNERS = {
    "mcp": {
        "mcp/server.py",
        "mcp/http.py",
        "mcp/auth.py",
        "mcp/context.py",
        "mcp/sampling.py",
        "mcp/tools.py",
        "mcp/oauth.py",
        "mcp/consent.py",
        "mcp/workspace.py",
        "mcp/strict.py",
        "cli/ui.py",
    },
    "jinja2": set(),
    "markupsafe": {"web/render.py"},
    "sentence_transformers": {"embedding/embedder.py"},
    "transformers": {"embedding/pooling.py"},
    # embedding/half.py: the exact search's float16 product (numpy has no fast one), once the model has loaded torch.
    "torch": {"embedding/pooling.py", "embedding/bert.py", "embedding/half.py"},
    "tokenizers": {"embedding/bert.py"},
    "safetensors": {"embedding/bert.py"},
    "anthropic": {"summary/backends.py"},
    "lancedb": {"index/lance.py", "index/lance_table.py"},
    # The Postgres store and the pgvector index (issue 16), imported only when AGENT_MEMORY_DATABASE_URL is set.
    "psycopg": {
        "index/pgvector.py",
        "index/pgvector_bulk.py",
        "index/pgvector_sql.py",
        "store/postgres/pool.py",
        "store/postgres/schema.py",
        "store/postgres/store.py",
    },
    "psycopg_pool": {"index/pgvector.py", "store/postgres/pool.py"},
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("library", sorted(OWNERS))
def test_only_the_owning_module_imports_each_outside_library(library: str) -> None:
    importers = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if library in _imports(p)}
    assert importers <= OWNERS[library], importers


# What each part of the package may import from the package: dependencies point one way,
# faces -> service -> {recall, summary, write, index} -> {store, embedding}, and config, errors, models anywhere.
BASE = {"config", "errors", "models", "__init__", "__version__"}
SERVICE = {"service", "operations", "diagnostics", "accounts", "facts", "browse", "summarizing"}
ALLOWED = {
    # workspace.py: which project a call is about (stdlib only), used by the faces.
    "workspace": BASE | {"workspace"},
    "mcp": BASE | {"service", "mcp", "workspace"},
    # `agent-memory serve` starts the MCP face, `agent-memory hook` the hooks face, `agent-memory ui` the page.
    "cli": BASE | {"service", "cli", "mcp", "workspace", "hooks", "conversations", "web", "backups", "moving"},
    # The hooks face: the quick reader for what it injects, the service for what it stores.
    "hooks": BASE | {"service", "hooks", "lookup", "workspace", "conversations"},
    # Read-only answers for the hooks, beside the service: the store's quick reader and recall's query words.
    "lookup": BASE | {"lookup", "store.quick", "recall.terms"},
    # Readers of other tools' conversations: pure parsing into memories.
    "conversations": BASE | {"conversations"},
    # The web page exports and imports with the CLI's JSONL format (cli/transfer.py).
    "web": BASE | {"service", "web", "cli.transfer", "cli.importers"},
    "service": BASE | SERVICE | {"recall", "summary", "write", "index", "store", "embedding"},
    "operations": BASE | SERVICE | {"index", "store", "embedding", "errors"},
    "summarizing": BASE | {"summarizing", "summary", "store", "write"},
    "browse": BASE | {"store", "write"},
    "diagnostics": BASE | {"diagnostics", "index", "store", "embedding"},
    "accounts": BASE | {"store"},
    # Whole-store operations (issue 16): SQLite backup and restore, and copying one store into another.
    "backups": BASE | {"backups", "store"},
    "moving": BASE | {"moving", "store", "write"},
    # facts.py: supersede chains, expiry and near memories (issue 15), a part of the service like operations.
    "facts": BASE | SERVICE | {"index", "store", "write", "recall", "embedding"},
    # recall and summary share the query words (recall/terms.py); summaries are scrubbed like every write.
    "recall": BASE | {"recall", "store", "embedding"},
    "summary": BASE | {"summary", "store", "write", "recall.terms"},
    "write": BASE | {"write", "store"},
    "index": BASE | {"index", "store", "embedding"},
    "store": BASE | {"store"},
    "embedding": BASE | {"embedding"},
}


def _internal_imports(path: Path) -> set[str]:
    """Return the package modules `path` imports, as dotted names below agent_memory."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("agent_memory"):
            base = node.module.removeprefix("agent_memory").lstrip(".")
            names.update(f"{base}.{a.name}".strip(".") if not base or base in ALLOWED else base for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name.removeprefix("agent_memory.") for a in node.names if a.name.startswith("agent_memory."))
    return names


def _part(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_each_part_imports_only_the_parts_below_it(part: str) -> None:
    files = [PACKAGE / f"{part}.py"] if (PACKAGE / f"{part}.py").exists() else list((PACKAGE / part).rglob("*.py"))
    assert files, part
    for path in files:
        for name in _internal_imports(path):
            assert name in ALLOWED[part] or _part(name) in ALLOWED[part], f"{path.relative_to(PACKAGE)} imports {name}"


def test_nothing_below_the_faces_prints() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "cli":
            continue
        calls = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)]
        assert not [c for c in calls if isinstance(c.func, ast.Name) and c.func.id == "print"], path


def test_the_prompt_hook_imports_nothing_heavy(tmp_path: Path) -> None:
    # It runs in a fresh process before every prompt: no asyncio, pydantic, numpy, aiosqlite, torch or mcp.
    code = (
        "import io, sys; from agent_memory.cli.main import main;"
        'sys.stdin = io.StringIO(\'{"session_id": "s", "prompt": "deploy the staging database"}\');'
        f"main(['hook', 'prompt', '--data-dir', {str(tmp_path)!r}]);"
        "heavy = [m for m in ('asyncio', 'pydantic', 'numpy', 'aiosqlite', 'torch', 'mcp', 'lancedb', 'psycopg')"
        " if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == ""


def test_building_the_server_imports_no_model_or_index_libraries(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from agent_memory.config import Settings;"
        "from agent_memory.mcp.server import build_server;"
        f"build_server(Settings(data_dir=Path({str(tmp_path)!r})));"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'lancedb', 'anthropic', 'psycopg')"
        " if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == ""
