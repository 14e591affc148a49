"""The HTTP API: submit a job, read its document, its result and its output files."""

from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.http.auth import caller, is_operator
from ocrflow.http.multipart import discard, receive_upload
from ocrflow.http.state import SERVICES
from ocrflow.http.submission import JsonSubmission, job_from_fields, json_fields, source_of
from ocrflow.jobs import queue
from ocrflow.jobs.intake import submit
from ocrflow.jobs.records import (
    ACTIVE,
    JOB_ID,
    Job,
    JobState,
    Progress,
    now,
)
from ocrflow.pipeline.errors import PipelineCode
from ocrflow.storage import layout

RETRYABLE = frozenset({JobState.FAILED, JobState.CANCELLED})

routes = web.RouteTableDef()


@routes.post("/v1/jobs")
async def submit_job(request: web.Request) -> web.Response:
    """A document by multipart upload (`file` + option fields) or by JSON `{"url": …}`."""
    services = request.app[SERVICES]
    source: Path | bytes | None = None
    if request.content_type == "application/json":
        fields = await json_fields(request, JsonSubmission)
        url_source = source_of(fields, None, services.settings.allow_private_urls)
        job = job_from_fields(request, fields, url_source)
    elif request.content_type == "multipart/form-data":
        spool = services.settings.work_dir / "incoming"
        upload = await receive_upload(request, spool, services.settings.max_upload_bytes)
        source = upload.content
    else:
        raise OcrflowError(
            PipelineCode.UNSUPPORTED_MEDIA_TYPE, 'send multipart/form-data or a JSON {"url"}'
        )
    try:
        if source is not None:
            upload_source = source_of(upload.fields, upload, services.settings.allow_private_urls)
            job = job_from_fields(request, upload.fields, upload_source)
        key = request.headers.get("Idempotency-Key")
        job, reused = await submit(services, job, source, idempotency_key=key)
    finally:
        if source is not None:
            discard(source)
    location = request.url.join(request.app.router["job"].url_for(job_id=job.id))
    headers = {"Location": str(location)}
    if reused:
        headers["Ocrflow-Reused"] = reused  # idempotent | shared | cached
    return web.json_response(render_job(job, request), status=202, headers=headers)


@routes.get("/v1/jobs/{job_id}", name="job")
async def get_job(request: web.Request) -> web.Response:
    job = await job_or_404(request)
    return web.json_response(render_job(job, request))


@routes.post("/v1/jobs/{job_id}/cancel")
async def cancel_job(request: web.Request) -> web.Response:
    """A queued job never starts; a running one has its work killed within a second or so."""
    services = request.app[SERVICES]
    job = await job_or_404(request)
    stopped = job.progress.model_copy(update={"stage": "cancelled", "message": "cancelled"})
    if not await services.transitions.apply(
        job.id, JobState.CANCELLED, only_from=ACTIVE, finished_at=now(), progress=stopped
    ):
        raise OcrflowError(ErrorCode.JOB_FINISHED, f"job {job.id} has already ended")
    return web.json_response(render_job(await job_or_404(request), request))


@routes.post("/v1/jobs/{job_id}/retry")
async def retry_job(request: web.Request) -> web.Response:
    """Run a failed or cancelled job again, as a new run."""
    services = request.app[SERVICES]
    job = await job_or_404(request)
    run = job.run + 1
    if job.state not in RETRYABLE:
        raise _not_retryable(job)
    await services.limits.admit(job.owner, job.id)
    entry = queue.run_entry(
        job.id, run=run, priority=job.priority, keep=services.settings.job_retention
    )
    if not await services.transitions.apply(
        job.id,
        JobState.QUEUED,
        only_from=RETRYABLE,
        note={"run": run},
        enqueue=entry,
        starts_run=True,
        run=run,
        error=None,
        finished_at=None,
        started_at=None,
        outputs={},
        handlers={name: run.fresh() for name, run in job.handlers.items()},
        progress=Progress(),
    ):
        await services.limits.release(job.owner, job.id)
        raise _not_retryable(job)
    refreshed = await job_or_404(request)
    location = request.url.join(request.app.router["job"].url_for(job_id=job.id))
    return web.json_response(
        render_job(refreshed, request), status=202, headers={"Location": str(location)}
    )


def _not_retryable(job: Job) -> OcrflowError:
    return OcrflowError(
        ErrorCode.JOB_NOT_RETRYABLE,
        f"job {job.id} is {job.state}; only failed or cancelled jobs can be retried",
    )


@routes.get("/v1/jobs/{job_id}/result")
async def get_result(request: web.Request) -> web.StreamResponse:
    """Streamed from storage: a large result never sits whole in the ingress's memory."""
    job = await job_or_404(request)
    _require_success(job)
    storage = request.app[SERVICES].storage
    path = storage.local_path(job.outputs["json"])
    if path is not None:
        return web.FileResponse(path, headers={"Content-Type": "application/json"})
    chunks = storage.chunks(job.outputs["json"])
    first = await anext(chunks, b"")  # a missing object is a JSON error, before any byte
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await response.write(first)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


@routes.get("/v1/jobs/{job_id}/outputs/{name}", name="output")
async def get_output(request: web.Request) -> web.StreamResponse:
    """The file itself from local storage; a redirect to a short-lived presigned link on S3."""
    job = await job_or_404(request)
    storage = request.app[SERVICES].storage
    name = request.match_info["name"]
    if name not in job.outputs:
        raise OcrflowError(ErrorCode.OUTPUT_NOT_FOUND, f"job {job.id} has no output named {name!r}")
    key, media_type = job.outputs[name], layout.output_media_type(name)
    filename = f"{Path(job.source.filename).stem or job.id}-{layout.download_name(name)}"
    url = await storage.download_url(key, filename=filename, content_type=media_type)
    if url is not None:
        raise web.HTTPFound(url)
    path = storage.local_path(key)
    if path is None:
        raise OcrflowError(ErrorCode.OUTPUT_NOT_FOUND, f"output {name!r} of job {job.id} is gone")
    headers = {
        "Content-Type": media_type,
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}",
        # An HTML output (hOCR, a handler's report) opened anyway runs nothing, in no origin.
        "Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'",
    }
    return web.FileResponse(path, headers=headers)


async def job_or_404(request: web.Request) -> Job:
    """The caller's job; anyone else's is as absent as a job that never was."""
    job_id = request.match_info["job_id"]
    job = await request.app[SERVICES].jobs.get(job_id) if job_id.startswith("j_") else None
    if job is None or (job.owner != caller(request) and not is_operator(request)):
        raise OcrflowError(ErrorCode.JOB_NOT_FOUND, f"no job {job_id!r}")
    return job


def _require_success(job: Job) -> None:
    if job.state is JobState.FAILED and job.error:
        raise OcrflowError(ErrorCode.JOB_FAILED, f"job {job.id} failed: {job.error.message}")
    if job.state is not JobState.SUCCEEDED:
        raise OcrflowError(
            ErrorCode.JOB_NOT_FINISHED, f"job {job.id} is {job.state}, not succeeded"
        )


def render_job(job: Job, request: web.Request) -> dict[str, Any]:
    """The job document a client sees: output names become download links."""
    document = job.model_dump(mode="json")
    document["outputs"] = {
        name: str(request.url.join(request.app.router["output"].url_for(job_id=job.id, name=name)))
        for name in job.outputs
    }
    return document


LIST_LIMIT = 100
# Records one listing request may look at: with a `state` filter that few jobs match, a page
# can come back short (even empty) with a `next_cursor`, rather than walk every job there is.
SCAN_BUDGET = 1000


@routes.get("/v1/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    """Jobs newest first; `state` filters, `cursor` (the last id of a page) continues. The
    listing is over when `next_cursor` is null."""
    store, owner = request.app[SERVICES].jobs, caller(request)
    limit = int_query(request, "limit", 20, 1, LIST_LIMIT)
    state = request.query.get("state")
    if state is not None and state not in JobState.__members__.values():
        raise OcrflowError(ErrorCode.INVALID_OPTIONS, f"unknown state {state!r}")
    cursor = request.query.get("cursor") or None  # empty: from the start
    if cursor is not None and not JOB_ID.fullmatch(cursor):
        message = f"cursor {cursor[:40]!r} is not one this listing gave (a job id)"
        raise OcrflowError(ErrorCode.MALFORMED_REQUEST, message)
    found: list[Job] = []
    exhausted, scanned = False, 0
    while len(found) < limit and not exhausted and scanned < SCAN_BUDGET:
        chunk = min(LIST_LIMIT, SCAN_BUDGET)
        ids = await store.newest(owner, before=cursor, count=chunk)
        exhausted = len(ids) < chunk
        scanned += len(ids)
        jobs = await store.get_many(ids)
        await store.forget(owner, [i for i, job in zip(ids, jobs, strict=True) if job is None])
        for job_id, job in zip(ids, jobs, strict=True):
            cursor = job_id
            if job and (state is None or job.state == state):
                found.append(job)
            if len(found) == limit:
                break
    if len(found) < limit and exhausted:
        cursor = None
    body = {"jobs": [render_job(job, request) for job in found], "next_cursor": cursor}
    return web.json_response(body)


def int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(request.query.get(name, default))
    except ValueError as exc:
        raise OcrflowError(ErrorCode.INVALID_OPTIONS, f"{name} must be a whole number") from exc
    if not low <= value <= high:
        raise OcrflowError(ErrorCode.INVALID_OPTIONS, f"{name} must be between {low} and {high}")
    return value
