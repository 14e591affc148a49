"""S3 storage against moto's S3 server over real HTTP, through aioboto3."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest
from aiohttp.test_utils import TestClient
from arq.worker import Worker
from moto.server import ThreadedMotoServer

from handlers import retention
from handlers.api import SERVICES
from handlers.app import create_app
from handlers.retention import sweep
from handlers.s3 import S3Storage
from handlers.settings import Settings
from handlers.storage import ObjectNotFound, StorageError
from handlers.worker import worker_settings
from tests.conftest import wait_for_job
from tests.corpus import write_image_pdf

CREDENTIALS = {
    "s3_access_key_id": "testing",
    "s3_secret_access_key": "testing",
    "s3_region": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_settings(settings: Settings, s3_endpoint: str) -> Settings:
    bucket = f"ocrflow-{uuid.uuid4().hex[:8]}"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    update = {
        "storage_backend": "s3",
        "s3_bucket": bucket,
        "s3_prefix": "ocr/",
        "s3_endpoint_url": s3_endpoint,
        **CREDENTIALS,
    }
    return settings.model_copy(update=update)


@pytest.fixture
async def s3_storage(s3_settings: Settings) -> AsyncIterator[S3Storage]:
    storage = await S3Storage.open(s3_settings)
    yield storage
    await storage.close()


def bucket_keys(settings: Settings) -> list[str]:
    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    listing = client.list_objects_v2(Bucket=settings.s3_bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


async def test_a_job_keeps_its_source_and_outputs_in_the_bucket(
    aiohttp_client: Any, s3_settings: Settings, tmp_path: Path
) -> None:
    client: TestClient[Any, Any] = await aiohttp_client(create_app(s3_settings))
    worker = Worker(**worker_settings(s3_settings, handle_signals=False, poll_delay=0.05))
    task = asyncio.create_task(worker.async_run())
    try:
        pdf = write_image_pdf(tmp_path / "scan.pdf", [["Stored in a bucket"]])
        data = aiohttp.FormData()
        data.add_field("file", pdf.read_bytes(), filename="scan.pdf")
        data.add_field("outputs", "text,pdf")
        accepted = await (await client.post("/v1/jobs", data=data)).json()
        job = await wait_for_job(client, accepted["id"])
    finally:
        await worker.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert job["state"] == "succeeded", job["error"]
    prefix = f"ocr/jobs/{job['id']}/"
    assert bucket_keys(s3_settings) == [
        prefix + "outputs/result.json",
        prefix + "outputs/searchable.pdf",
        prefix + "outputs/text.txt",
        prefix + "source",
    ]
    redirect = await client.get(f"/v1/jobs/{job['id']}/outputs/text", allow_redirects=False)
    assert redirect.status == 302
    presigned = redirect.headers["Location"]
    assert presigned.startswith(str(s3_settings.s3_endpoint_url)) and "Signature" in presigned
    async with aiohttp.ClientSession() as plain, plain.get(presigned) as download:
        assert download.status == 200
        assert (await download.text()).split() == ["Stored", "in", "a", "bucket"]
        assert "attachment" in download.headers["Content-Disposition"]
    result = await (await client.get(f"/v1/jobs/{job['id']}/result")).json()
    assert result["pages"][0]["words"] == 4


async def test_storage_operations(s3_storage: S3Storage, tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_text("hello")
    await s3_storage.put_file("jobs/j_1/source", source, content_type="text/plain")
    await s3_storage.copy("jobs/j_1/source", "jobs/j_2/outputs/text.txt")
    assert await s3_storage.read_bytes("jobs/j_2/outputs/text.txt") == b"hello"
    assert await s3_storage.modified("jobs/j_1/source") is not None
    assert await s3_storage.modified("jobs/j_9/source") is None
    assert await s3_storage.job_ids() == ["j_1", "j_2"]
    await s3_storage.delete_job("j_1")
    assert await s3_storage.job_ids() == ["j_2"]
    with pytest.raises(ObjectNotFound):
        await s3_storage.read_bytes("jobs/j_1/source")
    fetched = tmp_path / "b.txt"
    await s3_storage.fetch("jobs/j_2/outputs/text.txt", fetched)
    assert fetched.read_text() == "hello"


async def test_a_missing_bucket_is_a_storage_error(s3_settings: Settings) -> None:
    storage = await S3Storage.open(s3_settings.model_copy(update={"s3_bucket": "no-such-bucket"}))
    try:
        with pytest.raises(StorageError):
            await storage.check()
    finally:
        await storage.close()


async def test_retention_sweeps_the_bucket(
    aiohttp_client: Any,
    s3_settings: Settings,
    s3_storage: S3Storage,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client: TestClient[Any, Any] = await aiohttp_client(create_app(s3_settings))
    source = tmp_path / "a.txt"
    source.write_text("old")
    await s3_storage.put_file("jobs/j_gone/source", source, content_type="text/plain")
    monkeypatch.setattr(retention, "GRACE", 0.0)  # moto cannot backdate an object
    assert await sweep(client.app[SERVICES]) == 1
    assert await s3_storage.job_ids() == []
