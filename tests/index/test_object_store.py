"""The vector index in an object store: a real S3-compatible server (moto) on 127.0.0.1, LanceDB talking S3 to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from agent_memory.config import Settings, load_settings
from agent_memory.service import MemoryService
from tests.conftest import HashEmbedder

pytestmark = pytest.mark.anyio

BUCKET = "agent-memory-test"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An empty bucket on a local S3 server, reachable through the standard AWS_* environment."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    try:
        yield client
    finally:
        server.stop()


def _keys(s3: Any) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


async def _open(settings: Settings) -> MemoryService:
    service = await MemoryService.open(settings, HashEmbedder())
    assert await service.wait_index_open(30), service.status()
    assert await service.wait_indexed(60) is None, service.status()
    return service


async def test_recall_is_hybrid_with_the_index_in_s3_and_rebuilds_when_the_bucket_is_emptied(
    s3: Any, tmp_path: Path
) -> None:
    settings = load_settings(
        {"AGENT_MEMORY_DATA_DIR": str(tmp_path / "data"), "AGENT_MEMORY_VECTOR_URI": f"s3://{BUCKET}/team/index"}
    )
    service = await _open(settings)
    try:
        kept = await service.remember("The staging database runs on port 6543.")
        await service.remember("Lunch on Fridays is at the noodle bar.")
        assert await service.wait_indexed(60) is None
        found = await service.recall("which port does the staging database use")
        assert found.mode == "hybrid" and found.hits[0].id == kept.id
        assert await service.settle(60)  # background compaction and index builds write to S3 too
    finally:
        await service.close()
    keys = _keys(s3)
    assert keys and all(k.startswith("team/index/") for k in keys)
    assert not settings.vector_dir.exists()  # nothing of the index on local disk

    for key in keys:
        s3.delete_object(Bucket=BUCKET, Key=key)
    assert _keys(s3) == []

    service = await _open(settings)
    try:
        assert (await service.index_status()).memories == 2
        found = await service.recall("which port does the staging database use")
        assert found.mode == "hybrid" and found.hits[0].id == kept.id
    finally:
        await service.close()
    assert _keys(s3)


def test_the_vector_uri_must_be_a_uri() -> None:
    from agent_memory.errors import ConfigError

    with pytest.raises(ConfigError, match="not a URI"):
        load_settings({"AGENT_MEMORY_VECTOR_URI": "bucket/prefix"})
    options = load_settings({"AGENT_MEMORY_VECTOR_STORAGE_OPTIONS": '{"aws_endpoint": "http://127.0.0.1:9000"}'})
    assert options.vector_storage_options == (("aws_endpoint", "http://127.0.0.1:9000"),)
    with pytest.raises(ConfigError):
        load_settings({"AGENT_MEMORY_VECTOR_STORAGE_OPTIONS": "[1, 2]"})


def test_only_a_local_table_trusts_that_the_versions_made_under_its_lock_are_its_own(s3: Any, tmp_path: Path) -> None:
    # Another machine may write to the bucket without the local lock: after a compaction there (several commits),
    # the exact search is read again rather than followed.
    from agent_memory.index.lance import LanceVectorIndex

    lock = tmp_path / "vectors.lock"
    assert not LanceVectorIndex(f"s3://{BUCKET}/vectors", "t", 8, lock_path=lock)._table.sole_writer
    assert LanceVectorIndex(tmp_path / "vectors", "t", 8, lock_path=lock)._table.sole_writer
    assert not LanceVectorIndex(tmp_path / "vectors", "t", 8)._table.sole_writer
