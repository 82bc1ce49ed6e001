"""Measure the HTTP transport: spawn → listening → initialize, and warm recall over HTTP; prints JSON.

`--s3` puts the vector index in a local S3 server (moto on 127.0.0.1) to show the object-store overhead;
a real bucket adds network round trips on top.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

BIN = str(Path(sys.executable).with_name("agent-memory"))
READY = "agent-memory: serving MCP at "
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
}


def _s3_env() -> tuple[dict[str, str], Any]:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log would drown the result
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ALLOW_HTTP": "true",
        "AGENT_MEMORY_VECTOR_URI": "s3://bench/index",
    }
    boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    ).create_bucket(Bucket="bench")
    return env, server


def spawn(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """Start the server on a free port; return it and its URL once it listens."""
    proc = subprocess.Popen(
        [BIN, "serve", "--transport", "http", "--port", "0"], env=env, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()  # the first line is the URL, written once the socket listens
    if not line.startswith(READY):
        proc.kill()
        raise RuntimeError(f"server did not start: {line}")
    return proc, line.removeprefix(READY).strip()


async def measure(url: str, token: str, start: float, memories: int, queries: int) -> dict[str, Any]:
    """Time the first initialize, store memories over HTTP and time warm (hybrid) recalls."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        response = await http.post(url, json=INITIALIZE)
        response.raise_for_status()
        initialized = time.perf_counter() - start
        async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
            for n in range(memories):
                await client.call_tool("remember", {"content": f"Note {n}: the project uses tool {n % 37}."})
            first = await client.call_tool("recall", {"query": "which tool does the project use"})
            assert first.structured_content and first.structured_content["mode"] == "hybrid"
            times = []
            for n in range(queries):
                t = time.perf_counter()
                await client.call_tool("recall", {"query": f"which tool is used for note {n}"})
                times.append((time.perf_counter() - t) * 1000)
    return {
        "spawn_to_initialize_s": round(initialized, 3),
        "memories": memories,
        "warm_recall_p50_ms": round(statistics.median(times), 1),
        "warm_recall_p95_ms": round(sorted(times)[int(len(times) * 0.95) - 1], 1),
    }


def run(memories: int, queries: int, s3: bool) -> dict[str, Any]:
    """Start one server (index local or in moto's S3) and measure it."""
    token = secrets.token_urlsafe(24)
    extra, moto = _s3_env() if s3 else ({}, None)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("AGENT_MEMORY_")},
                "AGENT_MEMORY_DATA_DIR": str(Path(tmp) / "data"),
                "AGENT_MEMORY_HTTP_TOKENS": f"{token}:bench",
                "AGENT_MEMORY_MODEL_WAIT_SECONDS": "240",
                "HF_HUB_OFFLINE": "1",
                **extra,
            }
            start = time.perf_counter()
            proc, url = spawn(env)
            listening = time.perf_counter() - start
            try:
                result = anyio.run(measure, url, token, start, memories, queries)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    finally:
        if moto is not None:
            moto.stop()
    index = "s3 (moto on 127.0.0.1)" if s3 else "local"
    return {"index": index, "spawn_to_listening_s": round(listening, 3), **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--memories", type=int, default=200)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--s3", action="store_true", help="keep the vector index in a local S3 server (moto)")
    args = parser.parse_args()
    print(json.dumps(run(args.memories, args.queries, args.s3), indent=2))


if __name__ == "__main__":
    main()
