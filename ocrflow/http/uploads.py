"""Direct uploads: the client sends the file straight to the bucket with a presigned POST
form, then completes the upload, which checks the object and creates the job."""

import json
import secrets
from typing import Any

from aiohttp import web

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.http.auth import caller
from ocrflow.http.jobs import render_job
from ocrflow.http.state import SERVICES
from ocrflow.http.submission import JsonOptions, UploadStart, job_from_fields, json_fields
from ocrflow.jobs import redis_keys
from ocrflow.jobs.intake import submit
from ocrflow.jobs.records import Source
from ocrflow.jobs.services import Services
from ocrflow.pipeline.media import SNIFF_BYTES, sniff
from ocrflow.storage import layout
from ocrflow.storage.backend import ObjectNotFound, StoredObject
from ocrflow.storage.s3 import S3Storage

routes = web.RouteTableDef()


def _s3(services: Services) -> S3Storage:
    if not isinstance(services.storage, S3Storage):
        raise OcrflowError(
            ErrorCode.S3_STORAGE_REQUIRED, "direct uploads need OCRFLOW_STORAGE_BACKEND=s3"
        )
    return services.storage


@routes.post("/v1/uploads")
async def start_upload(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    storage, settings = _s3(services), services.settings
    fields = await json_fields(request, UploadStart) if request.can_read_body else {}
    filename = fields.get("filename", ["upload"])[-1][:200] or "upload"
    upload_id = "u_" + secrets.token_hex(12)
    expiry = settings.download_url_expiry
    form = await storage.upload_form(
        layout.upload_key(upload_id), max_bytes=settings.max_upload_bytes, expiry=expiry
    )
    record = json.dumps({"filename": filename, "owner": caller(request)})
    await services.redis.set(redis_keys.UPLOAD_PREFIX + upload_id, record, ex=2 * expiry)
    complete = request.url.join(request.app.router["complete_upload"].url_for(upload_id=upload_id))
    body = {
        "upload_id": upload_id,
        "method": "POST",
        "url": form["url"],
        "fields": form["fields"],
        "expires_in": expiry,
        "max_bytes": settings.max_upload_bytes,
        "complete_url": str(complete),
    }
    return web.json_response(body, status=201)


@routes.post("/v1/uploads/{upload_id}/complete", name="complete_upload")
async def complete_upload(request: web.Request) -> web.Response:
    """Check the object arrived, is not too large and is a document; then make it a job."""
    services = request.app[SERVICES]
    storage, settings = _s3(services), services.settings
    upload_id = request.match_info["upload_id"]
    raw = await services.redis.get(redis_keys.UPLOAD_PREFIX + upload_id)
    if raw is None or json.loads(raw).get("owner") != caller(request):
        raise OcrflowError(ErrorCode.UPLOAD_NOT_FOUND, f"no upload {upload_id!r} (or it expired)")
    fields = await json_fields(request, JsonOptions) if request.can_read_body else {}
    source = await _source(storage, upload_id, raw, settings.max_upload_bytes)
    job = job_from_fields(request, fields, source)
    uploaded = StoredObject(layout.upload_key(upload_id))  # copied only if a new job takes it
    key = request.headers.get("Idempotency-Key")
    job, _ = await submit(services, job, uploaded, idempotency_key=key)
    await services.redis.delete(redis_keys.UPLOAD_PREFIX + upload_id)
    await storage.delete(layout.upload_key(upload_id))  # the job has its own copy now
    location = request.url.join(request.app.router["job"].url_for(job_id=job.id))
    return web.json_response(
        render_job(job, request), status=202, headers={"Location": str(location)}
    )


async def _source(storage: S3Storage, upload_id: str, raw: Any, max_bytes: int) -> Source:
    try:
        peeked = await storage.peek(
            storage.bucket, storage.own_key(layout.upload_key(upload_id)), SNIFF_BYTES
        )
    except ObjectNotFound as exc:
        raise OcrflowError(
            ErrorCode.UPLOAD_MISSING, "nothing was uploaded with this form yet"
        ) from exc
    if peeked.size > max_bytes:
        raise OcrflowError(
            ErrorCode.PAYLOAD_TOO_LARGE, f"the upload is {peeked.size} bytes, over the limit"
        )
    # The object's checksum and size name its content: a second, different upload is never
    # taken for this one, and the same bytes uploaded again may share its job or its result.
    return Source(
        filename=json.loads(raw)["filename"],
        bytes=peeked.size,
        etag=peeked.etag or None,
        media_type=sniff(peeked.head),
    )
