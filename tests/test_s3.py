"""S3 storage against moto's S3 server over real HTTP, through aioboto3."""

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest
from aiohttp.test_utils import TestClient
from moto.server import ThreadedMotoServer
from yarl import URL

from ocrflow.http.app import create_app
from ocrflow.http.auth import new_api_key
from ocrflow.http.state import SERVICES
from ocrflow.settings import Settings
from ocrflow.storage.backend import ObjectNotFound, StorageError
from ocrflow.storage.s3 import S3Storage
from ocrflow.worker import retention
from ocrflow.worker.retention import sweep
from tests.support import running_worker, wait_for_job, write_image_pdf

CREDENTIALS = {
    "s3_access_key_id": "testing",
    "s3_secret_access_key": "testing",
    "s3_region": "us-east-1",
}


def s3_client(endpoint: str | None) -> Any:
    """A plain boto3 client on moto's endpoint, to look into the bucket from outside."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


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
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
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
    client = s3_client(settings.s3_endpoint_url)
    listing = client.list_objects_v2(Bucket=settings.s3_bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


async def test_a_job_keeps_its_source_and_outputs_in_the_bucket(
    aiohttp_client: Any, s3_settings: Settings, tmp_path: Path
) -> None:
    client: TestClient[Any, Any] = await aiohttp_client(create_app(s3_settings))
    async with running_worker(s3_settings):
        pdf = write_image_pdf(tmp_path / "scan.pdf", [["Stored in a bucket"]])
        data = aiohttp.FormData()
        data.add_field("file", pdf.read_bytes(), filename="scan.pdf")
        data.add_field("outputs", "text,pdf")
        accepted = await (await client.post("/v1/jobs", data=data)).json()
        job = await wait_for_job(client, accepted["id"])

    assert job["state"] == "succeeded", job["error"]
    prefix = f"ocr/jobs/{job['id']}/"
    assert bucket_keys(s3_settings) == [
        prefix + "outputs/result.json",
        prefix + "outputs/searchable.pdf",
        prefix + "outputs/text.txt",
        prefix + "previews/00001.jpg",  # the page's picture, kept as it was read
        prefix + "source",
    ]
    picture = await client.get(f"/v1/jobs/{job['id']}/pages/1/image")
    assert picture.status == 200 and picture.content_type == "image/jpeg"
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
    await s3_storage.put_bytes("jobs/j_3/source", b"held in memory", content_type="image/png")
    assert await s3_storage.read_bytes("jobs/j_3/source") == b"held in memory"


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


def s3_event(
    bucket: str, key: str, etag: str, name: str = "s3:ObjectCreated:Put"
) -> dict[str, Any]:
    record = {
        "eventName": name,
        "s3": {
            "bucket": {"name": bucket},
            "object": {"key": key.replace(" ", "+"), "size": 1, "eTag": etag},
        },
    }
    return {"Records": [record]}


async def test_s3_events_create_one_job_per_object_however_often_delivered(
    aiohttp_client: Any, s3_settings: Settings, tmp_path: Path
) -> None:
    own = s3_settings.model_copy(update={"s3_events_secret": "hook-secret"})
    client: TestClient[Any, Any] = await aiohttp_client(create_app(own))
    s3 = s3_client(own.s3_endpoint_url)
    pdf = write_image_pdf(tmp_path / "scan.pdf", [["Arrived by event"]])
    s3.put_object(Bucket=own.s3_bucket, Key="inbox/my scan.pdf", Body=pdf.read_bytes())
    s3.put_object(Bucket=own.s3_bucket, Key="inbox/notes.txt", Body=b"not a document")
    event = s3_event(str(own.s3_bucket), "inbox/my scan.pdf", "etag-1")
    auth = {"Authorization": "Bearer hook-secret"}

    assert (await client.post("/v1/webhooks/s3", json=event)).status == 401
    wrong = await client.post("/v1/webhooks/s3", json=event, headers={"Authorization": "nope"})
    assert wrong.status == 401
    first = await (await client.post("/v1/webhooks/s3", json=event, headers=auth)).json()
    again = await (await client.post("/v1/webhooks/s3", json=event, headers=auth)).json()
    (created,), (duplicate,) = first["records"], again["records"]
    assert created["outcome"] == "created" and duplicate["outcome"] == "duplicate"
    assert created["job_id"] == duplicate["job_id"]

    other = s3_event(str(own.s3_bucket), "inbox/notes.txt", "etag-2")
    refused = await (await client.post("/v1/webhooks/s3", json=other, headers=auth)).json()
    assert refused["records"][0] == {
        "bucket": own.s3_bucket,
        "key": "inbox/notes.txt",
        "outcome": "refused",
        "error": "unsupported_media_type",
    }
    removed = s3_event(str(own.s3_bucket), "inbox/my scan.pdf", "etag-1", "s3:ObjectRemoved:Delete")
    ignored = await (await client.post("/v1/webhooks/s3", json=removed, headers=auth)).json()
    assert ignored["records"][0]["outcome"] == "ignored"

    async with running_worker(own):
        job = await wait_for_job(client, created["job_id"])
    assert job["state"] == "succeeded", job["error"]
    assert job["source"]["filename"] == "my scan.pdf"
    assert job["metadata"]["s3"]["key"] == "inbox/my scan.pdf"
    text = await (await client.get(f"/v1/jobs/{job['id']}/result")).json()
    assert text["pages"][0]["text"].split() == ["Arrived", "by", "event"]


async def test_a_presigned_upload_goes_straight_to_the_bucket_then_becomes_a_job(
    aiohttp_client: Any, s3_settings: Settings, tmp_path: Path
) -> None:
    client: TestClient[Any, Any] = await aiohttp_client(create_app(s3_settings))
    started = await client.post("/v1/uploads", json={"filename": "direct.pdf"})
    assert started.status == 201
    upload = await started.json()
    early = await client.post(f"/v1/uploads/{upload['upload_id']}/complete", json={})
    assert early.status == 409
    assert (await early.json())["error"]["code"] == "upload_missing"

    pdf = write_image_pdf(tmp_path / "direct.pdf", [["Sent straight to storage"]])
    form = aiohttp.FormData(upload["fields"])
    form.add_field("file", pdf.read_bytes(), filename="direct.pdf")
    async with aiohttp.ClientSession() as plain, plain.post(upload["url"], data=form) as sent:
        assert sent.status in (200, 204), await sent.text()

    complete = URL(upload["complete_url"]).path  # the test client takes paths only
    assert complete == f"/v1/uploads/{upload['upload_id']}/complete"
    done = await client.post(complete, json={"outputs": ["text"]})
    assert done.status == 202, await done.text()
    job = await done.json()
    assert job["source"]["filename"] == "direct.pdf"
    assert job["source"]["media_type"] == "application/pdf"
    twice = await client.post(complete, json={})
    assert twice.status == 404
    assert not [key for key in bucket_keys(s3_settings) if key.startswith("ocr/uploads/")]

    async with running_worker(s3_settings):
        final = await wait_for_job(client, job["id"])
    assert final["state"] == "succeeded", final["error"]
    text = await client.get(f"/v1/jobs/{job['id']}/outputs/text", allow_redirects=False)
    link = URL(text.headers["Location"])  # presigned for this one object, and expiring
    assert link.path.endswith(f"/ocr/jobs/{job['id']}/outputs/text.txt")
    assert link.query["X-Amz-Expires"] == str(s3_settings.download_url_expiry)
    async with aiohttp.ClientSession() as plain, plain.get(text.headers["Location"]) as got:
        assert (await got.text()).split() == ["Sent", "straight", "to", "storage"]


async def test_an_upload_is_completed_only_by_the_caller_that_started_it(
    aiohttp_client: Any, s3_settings: Settings, tmp_path: Path
) -> None:
    alice_key, alice = new_api_key("alice")
    bob_key, bob = new_api_key("bob")
    secured = s3_settings.model_copy(update={"api_keys": (alice, bob)})
    client: TestClient[Any, Any] = await aiohttp_client(create_app(secured))
    as_alice = {"Authorization": f"Bearer {alice_key}"}
    started = await client.post("/v1/uploads", json={"filename": "a.pdf"}, headers=as_alice)
    upload = await started.json()
    pdf = write_image_pdf(tmp_path / "a.pdf", [["Alice's upload"]])
    form = aiohttp.FormData(upload["fields"])
    form.add_field("file", pdf.read_bytes(), filename="a.pdf")
    async with aiohttp.ClientSession() as plain, plain.post(upload["url"], data=form) as sent:
        assert sent.status in (200, 204)
    complete = URL(upload["complete_url"]).path
    stolen = await client.post(complete, json={}, headers={"X-API-Key": bob_key})
    assert stolen.status == 404
    assert (await stolen.json())["error"]["code"] == "upload_not_found"
    mine = await client.post(complete, json={}, headers=as_alice)
    assert mine.status == 202 and (await mine.json())["owner"] == "key:alice"


async def test_direct_uploads_need_s3(client: TestClient[Any, Any]) -> None:
    refused = await client.post("/v1/uploads", json={})
    assert refused.status == 409
    assert (await refused.json())["error"]["code"] == "s3_storage_required"


# aiobotocore hands each part to aiohttp as bytes, which aiohttp warns about; not ours to change.
@pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning")
async def test_large_objects_go_up_in_parts(s3_settings: Settings, tmp_path: Path) -> None:
    small_parts = s3_settings.model_copy(update={"s3_multipart_threshold": 5 * 1024 * 1024})
    storage = await S3Storage.open(small_parts)
    try:
        big = tmp_path / "big.bin"
        big.write_bytes(bytes(range(256)) * (12 * 1024 * 1024 // 256))  # 12 MiB: three parts
        await storage.put_file("jobs/j_big/source", big, content_type="application/pdf")
        client = s3_client(small_parts.s3_endpoint_url)
        head = client.head_object(Bucket=small_parts.s3_bucket, Key="ocr/jobs/j_big/source")
        assert head["ContentLength"] == big.stat().st_size
        assert head["ETag"].strip('"').endswith("-3"), "not a multipart upload"
        copy = tmp_path / "copy.bin"
        await storage.fetch("jobs/j_big/source", copy)
        assert copy.read_bytes() == big.read_bytes()
    finally:
        await storage.close()


async def upload_directly(client: TestClient[Any, Any], pdf: Path, **options: Any) -> Any:
    """A document sent straight to the bucket with a presigned form, then completed."""
    upload = await (await client.post("/v1/uploads", json={"filename": pdf.name})).json()
    form = aiohttp.FormData(upload["fields"])
    form.add_field("file", pdf.read_bytes(), filename=pdf.name)
    async with aiohttp.ClientSession() as plain, plain.post(upload["url"], data=form) as sent:
        assert sent.status in (200, 204), await sent.text()
    done = await client.post(URL(upload["complete_url"]).path, json=options)
    assert done.status == 202, await done.text()
    return await done.json()


async def test_different_direct_uploads_are_different_jobs_and_the_same_one_is_cached(
    aiohttp_client: Any, s3_settings: Settings, tmp_path: Path
) -> None:
    """Two different documents uploaded and completed back to back (the first still queued)
    are two jobs with their own texts; the first one's bytes again come from its result."""
    client: TestClient[Any, Any] = await aiohttp_client(create_app(s3_settings))
    first_pdf = write_image_pdf(tmp_path / "first.pdf", [["First direct document"]])
    second_pdf = write_image_pdf(tmp_path / "second.pdf", [["Second direct document"]])
    first = await upload_directly(client, first_pdf)
    second = await upload_directly(client, second_pdf)
    assert first["id"] != second["id"]
    assert first["source"]["etag"] and first["source"]["etag"] != second["source"]["etag"]
    async with running_worker(s3_settings):
        for job, word in ((first, "First"), (second, "Second")):
            done = await wait_for_job(client, job["id"])
            assert done["state"] == "succeeded", done["error"]
            result = await (await client.get(f"/v1/jobs/{job['id']}/result")).json()
            assert result["pages"][0]["text"].split()[0] == word
    again = await upload_directly(client, first_pdf)
    assert again["id"] != first["id"] and again["cached"] is True
    result = await (await client.get(f"/v1/jobs/{again['id']}/result")).json()
    assert result["pages"][0]["text"].split() == ["First", "direct", "document"]
    assert not [key for key in bucket_keys(s3_settings) if "/uploads/" in key]


async def test_a_new_version_of_an_object_is_a_new_job_and_redelivery_finds_a_real_job(
    aiohttp_client: Any, s3_settings: Settings, tmp_path: Path
) -> None:
    own = s3_settings.model_copy(update={"s3_events_secret": "hook-secret"})
    client: TestClient[Any, Any] = await aiohttp_client(create_app(own))
    s3, bucket = s3_client(own.s3_endpoint_url), str(own.s3_bucket)
    auth = {"X-Ocrflow-Webhook-Secret": "hook-secret"}
    documents: dict[str, bytes] = {}

    async def event(version: str, text: str) -> str:
        """`text` written as a new version of one object, and its event delivered."""
        if text not in documents:
            documents[text] = write_image_pdf(tmp_path / f"{version}.pdf", [[text]]).read_bytes()
        s3.put_object(Bucket=bucket, Key="inbox/report.pdf", Body=documents[text])
        body = s3_event(bucket, "inbox/report.pdf", "")
        body["Records"][0]["s3"]["object"]["versionId"] = version
        answer = await (await client.post("/v1/webhooks/s3", json=body, headers=auth)).json()
        job_id: str = answer["records"][0]["job_id"]
        assert (await client.get(f"/v1/jobs/{job_id}")).status == 200
        return job_id

    old = await event("v1", "The old version")
    new = await event("v2", "The new version")  # while the old one's job is still queued
    assert new != old
    # Identical content as another version: a job of its own, which names its own version (a
    # job's metadata is part of what makes two submissions the same).
    same_bytes = await event("v3", "The new version")
    assert same_bytes not in (old, new)
    named = (await (await client.get(f"/v1/jobs/{same_bytes}")).json())["metadata"]["s3"]
    assert named["version"] == "v3"
    # Redelivered, an event names the job it made, which exists.
    assert await event("v3", "The new version") == same_bytes
    async with running_worker(own):
        for job_id, word in ((old, "old"), (new, "new")):
            done = await wait_for_job(client, job_id)
            result = await (await client.get(f"/v1/jobs/{job_id}/result")).json()
            assert done["state"] == "succeeded" and result["pages"][0]["text"].split()[1] == word


async def test_an_empty_endpoint_variable_means_aws(
    s3_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """render.yaml and the README say to leave OCRFLOW_S3_ENDPOINT_URL empty for AWS."""
    monkeypatch.setenv("OCRFLOW_S3_ENDPOINT_URL", "")
    monkeypatch.setenv("OCRFLOW_S3_REGION", "")
    settings = Settings(_env_file=None, storage_backend="s3", s3_bucket="some-bucket")
    assert settings.s3_endpoint_url is None and settings.s3_region is None
    storage = await S3Storage.open(settings)  # "Invalid endpoint" before
    await storage.close()


async def test_s3_events_cannot_cross_callers_feed_themselves_or_flood(
    aiohttp_client: Any, s3_settings: Settings, tmp_path: Path
) -> None:
    """An event naming ocrflow's own objects (another caller's source) once made a job for the
    webhook's caller that read it; a job's own source, a job for it again; 10,000 records in
    one request took 33 s; and the inbound secret was the one every callback receiver holds."""
    alice_key, alice = new_api_key("alice")
    own = s3_settings.model_copy(
        update={
            "api_keys": (alice,),
            "s3_events_secret": "inbound-only",
            "webhook_secret": "signs-callbacks",
            "webhook_caller": "key:ingest",
        }
    )
    client: TestClient[Any, Any] = await aiohttp_client(create_app(own))
    pdf = write_image_pdf(tmp_path / "private.pdf", [["Alice's private page"]])
    data = aiohttp.FormData()
    data.add_field("file", pdf.read_bytes(), filename="private.pdf")
    headers = {"Authorization": f"Bearer {alice_key}"}
    job = await (await client.post("/v1/jobs", data=data, headers=headers)).json()
    bucket = str(own.s3_bucket)
    source = f"ocr/jobs/{job['id']}/source"
    assert source in bucket_keys(own)

    def post(body: Any, secret: str) -> Any:
        return client.post(
            "/v1/webhooks/s3", json=body, headers={"Authorization": f"Bearer {secret}"}
        )

    assert (await post(s3_event(bucket, source, "e1"), "signs-callbacks")).status == 401
    answer = await (await post(s3_event(bucket, source, "e1"), "inbound-only")).json()
    assert answer["records"][0]["outcome"] == "refused"
    assert answer["records"][0]["error"] == "ocrflow_storage"
    upload = s3_event(bucket, "ocr/uploads/u_0123", "e2")
    assert (await (await post(upload, "inbound-only")).json())["records"][0]["outcome"] == "refused"
    flood = {"Records": s3_event(bucket, "inbox/a.pdf", "e3")["Records"] * 101}
    too_many = await post(flood, "inbound-only")
    assert too_many.status == 413
    assert (await too_many.json())["error"]["code"] == "payload_too_large"
    with pytest.raises(ValueError, match="must differ"):
        Settings(_env_file=None, s3_events_secret="same", webhook_secret="same")
