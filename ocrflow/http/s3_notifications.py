"""Inbound S3 event notifications (AWS's `Records` format, which MinIO sends too): each new
object in a configured bucket becomes one job, however often its event is delivered."""

import hmac
import logging
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import web

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.http.auth import signed
from ocrflow.http.state import SERVICES
from ocrflow.http.submission import read_json
from ocrflow.jobs import redis_keys
from ocrflow.jobs.intake import submit
from ocrflow.jobs.records import Job, Source, new_job_id, now
from ocrflow.jobs.services import Services
from ocrflow.pipeline.errors import PipelineError
from ocrflow.pipeline.media import SNIFF_BYTES, sniff
from ocrflow.storage import layout
from ocrflow.storage.backend import StorageError, StoredObject
from ocrflow.storage.s3 import S3Storage

log = logging.getLogger(__name__)


MAX_RECORDS = 100

routes = web.RouteTableDef()


@routes.post("/v1/webhooks/s3")
@signed
async def s3_events(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    _authenticate(request, services.settings.s3_events_secret)
    storage = services.storage
    if not isinstance(storage, S3Storage):
        raise OcrflowError(
            ErrorCode.S3_STORAGE_REQUIRED, "S3 events need OCRFLOW_STORAGE_BACKEND=s3"
        )
    body = await read_json(request)
    try:
        records = body["Records"]
        assert isinstance(records, list)
    except (KeyError, TypeError, AssertionError) as exc:
        raise OcrflowError(
            ErrorCode.MALFORMED_REQUEST, "expected an S3 event with `Records`"
        ) from exc
    if len(records) > MAX_RECORDS:
        # S3 sends one record an event; thousands in one request are someone else's doing.
        message = f"{len(records)} records in one request; at most {MAX_RECORDS}"
        raise OcrflowError(ErrorCode.PAYLOAD_TOO_LARGE, message)
    buckets = set(services.settings.webhook_buckets) or {storage.bucket}
    results = [await _record(services, storage, record, buckets) for record in records]
    return web.json_response({"records": results}, status=202)


def _authenticate(request: web.Request, secret: str | None) -> None:
    if not secret:
        raise OcrflowError(
            ErrorCode.NOT_FOUND, "S3 event webhooks are off (no OCRFLOW_S3_EVENTS_SECRET)"
        )
    given = request.headers.get("X-Ocrflow-Webhook-Secret") or request.headers.get(
        "Authorization", ""
    ).removeprefix("Bearer ")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        raise OcrflowError(ErrorCode.UNAUTHORIZED, "missing or wrong webhook secret")


async def _record(
    services: Services, storage: S3Storage, record: Any, buckets: set[str]
) -> dict[str, Any]:
    try:
        event = str(record["eventName"])
        bucket = str(record["s3"]["bucket"]["name"])
        obj = record["s3"]["object"]
        key = unquote_plus(str(obj["key"]))
    except (KeyError, TypeError):
        return {"outcome": "ignored", "reason": "not an S3 object event"}
    if "ObjectCreated" not in event or bucket not in buckets:
        return {"bucket": bucket, "key": key, "outcome": "ignored"}
    if bucket == storage.bucket and layout.is_own(storage.own_key(""), key):
        # Another caller's source, or ocrflow's own write of one: never a new job (a job made
        # from it would read another caller's document, and its own copy would feed back).
        return {"bucket": bucket, "key": key, "outcome": "refused", "error": "ocrflow_storage"}
    version = str(obj.get("versionId") or obj.get("eTag") or obj.get("sequencer") or "")
    return {"bucket": bucket, "key": key, **await _job_for(services, storage, bucket, key, version)}


async def _job_for(
    services: Services, storage: S3Storage, bucket: str, key: str, version: str
) -> dict[str, Any]:
    """One job per object version: a repeated delivery answers with the same job."""
    job_id = new_job_id()
    marker = f"{redis_keys.S3_EVENT_PREFIX}{bucket}\n{key}\n{version}"
    retention = services.settings.job_retention
    if not await services.redis.set(marker, job_id, nx=True, ex=retention):
        existing = await services.redis.get(marker)
        return {"outcome": "duplicate", "job_id": existing.decode() if existing else None}
    try:
        peeked = await storage.peek(bucket, key, SNIFF_BYTES)
        media_type = sniff(peeked.head)
    except (StorageError, PipelineError) as exc:  # gone, empty, unreadable, not a document
        await services.redis.delete(marker)
        return {"outcome": "refused", "error": exc.code}
    job = Job(
        id=job_id,
        owner=services.settings.webhook_caller,
        created_at=now(),
        options=services.settings.default_options,
        source=Source(
            kind="upload",
            filename=PurePosixPath(key).name or key,
            bytes=peeked.size,
            etag=peeked.etag or None,  # this version's content, not only its name
            media_type=media_type,
            url=f"s3://{bucket}/{key}",
        ),
        metadata={"s3": {"bucket": bucket, "key": key, "version": version}},
    )
    try:
        answer, _ = await submit(services, job, StoredObject(key, bucket), idempotency_key=None)
    except BaseException:
        await services.redis.delete(marker)  # not taken: a redelivery may try again
        raise
    # A redelivery answers with the job that took the event (another may have answered it).
    await services.redis.set(marker, answer.id, ex=retention)
    log.info("S3 event %s/%s created job %s", bucket, key, answer.id)
    return {"outcome": "created", "job_id": answer.id}
