"""Measure spawn → initialize, first (model cold) and warm recall over real stdio; prints JSON."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

BIN = str(Path(sys.executable).with_name("agent-memory"))


async def one_run(data: str, warm_queries: int) -> dict[str, float]:
    """Spawn one server, time the handshake, a cold recall, the model-ready point and warm recalls."""
    params = StdioServerParameters(command=BIN, args=["serve"], env={"AGENT_MEMORY_DATA_DIR": data})
    start = time.perf_counter()
    async with Client(params, mode="legacy") as client:
        initialized = time.perf_counter() - start
        await client.list_tools()
        listed = time.perf_counter() - start
        t = time.perf_counter()
        await client.call_tool("recall", {"query": "what do I prefer?"})
        cold = time.perf_counter() - t
        ready = None
        while ready is None:  # bounded by the model load; polls the server's own answer
            r = await client.call_tool("recall", {"query": "what do I prefer?"})
            if r.structured_content and r.structured_content["mode"] == "hybrid":
                ready = time.perf_counter() - start
            elif time.perf_counter() - start > 300:
                raise TimeoutError("model never became ready")
            else:
                await anyio.sleep(0.05)
        warm = []
        for n in range(warm_queries):
            t = time.perf_counter()
            await client.call_tool("recall", {"query": f"preference number {n}"})
            warm.append((time.perf_counter() - t) * 1000)
    return {
        "initialize_s": initialized,
        "tools_list_s": listed,
        "first_recall_ms": cold * 1000,
        "model_ready_s": ready,
        "warm_recall_p50_ms": statistics.median(warm),
    }


def floor() -> float:
    """Time the bare `import mcp.server.mcpserver` in a new interpreter."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mcp.server.mcpserver"], check=True)
    return time.perf_counter() - t


async def main() -> None:
    """Run five spawns against a store with a few memories and print medians."""
    with tempfile.TemporaryDirectory() as data:
        params = StdioServerParameters(command=BIN, args=["serve"], env={"AGENT_MEMORY_DATA_DIR": data})
        async with Client(params, mode="legacy") as client:
            for n in range(50):
                await client.call_tool("remember", {"content": f"I prefer option {n} for task {n * 7}."})
        runs = [await one_run(data, 30) for _ in range(5)]
    floors = [floor() for _ in range(5)]
    result = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    result["import_floor_s"] = statistics.median(floors)
    result["cpu_count"] = os.cpu_count() or 0
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    anyio.run(main)
