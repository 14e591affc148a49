"""For operators: every caller's jobs, the workers and the queue, live. `/dashboard` is the
page; `/v1/admin/…` the API behind it (OCRFLOW_ADMIN_CALLERS say who may use it)."""

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.http.auth import caller, operator
from ocrflow.http.jobs import int_query, job_or_404, render_job
from ocrflow.http.pubsub import Subscription
from ocrflow.http.state import HUB, SERVICES
from ocrflow.jobs import stats
from ocrflow.jobs.records import JOB_ID, JobState
from ocrflow.jobs.services import Services
from ocrflow.pipeline.errors import PipelineError
from ocrflow.pipeline.media import MediaType
from ocrflow.pipeline.preview import preview
from ocrflow.storage import layout

routes = web.RouteTableDef()

OVERVIEW_INTERVAL = 2.0  # seconds between the feed's snapshots of workers, queue and throughput
PING_INTERVAL = 15.0
LIST_LIMIT = 200
SCAN_BUDGET = 1000  # recent jobs one listing looks at
PREVIEW_WIDTH = (100, 2000, 900)  # least, most, default
PREVIEW_TIMEOUT = 20.0
_previews = asyncio.Semaphore(2)  # pages drawn at once by one ingress process


class Overviews:
    """One overview at a time per ingress process, however many dashboards are open: each feed
    takes the latest if it is fresh."""

    FRESH = 1.5  # seconds

    def __init__(self) -> None:
        self._value: dict[str, Any] | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, services: Services) -> dict[str, Any]:
        async with self._lock:
            if self._value is None or time.monotonic() - self._at > self.FRESH:
                self._value = await overview_of(services)
                self._at = time.monotonic()
            return self._value


OVERVIEWS = web.AppKey("overviews", Overviews)


async def overview_of(services: Services) -> dict[str, Any]:
    """Workers, queue, counts, throughput over the last hour, and the oldest wait."""
    figures = await stats.snapshot(services.redis, services.settings.queue_name)
    figures["oldest_waiting_seconds"] = await stats.oldest_waiting(services.redis)
    figures["throughput"] = await stats.throughput(services.redis)
    figures["now"] = time.time()
    return figures


@routes.get("/v1/admin/overview")
@operator
async def overview(request: web.Request) -> web.Response:
    return web.json_response(await overview_of(request.app[SERVICES]))  # asked: made now


@routes.get("/v1/admin/jobs")
@operator
async def recent_jobs(request: web.Request) -> web.Response:
    """Every caller's recent jobs, newest first; `state` and `caller` filter, `before` (a job id
    from `next_cursor`) pages on."""
    services = request.app[SERVICES]
    state = request.query.get("state") or None
    if state is not None and state not in set(JobState):
        raise OcrflowError(ErrorCode.MALFORMED_REQUEST, f"no state {state[:40]!r}")
    owner = request.query.get("caller") or None
    limit = int_query(request, "limit", 50, 1, LIST_LIMIT)
    before = request.query.get("before") or None  # empty: no cursor, as absent
    if before is not None and not JOB_ID.fullmatch(before):
        raise OcrflowError(ErrorCode.MALFORMED_REQUEST, "a cursor the listing never gave")
    # With a caller, that caller's own index: all its jobs, not only the recent ones.
    ids = await services.jobs.newest(owner, before=before, count=SCAN_BUDGET)
    found, looked = [], 0
    for job in await services.jobs.get_many(ids):
        looked += 1
        if job is None or (state and job.state != state) or (owner and job.owner != owner):
            continue
        found.append(job)
        if len(found) == limit:
            break
    more = looked < len(ids) or len(ids) == SCAN_BUDGET
    cursor = ids[looked - 1] if more and looked else None
    return web.json_response(
        {"jobs": [render_job(job, request) for job in found], "next_cursor": cursor}
    )


@routes.get("/v1/admin/events", name="operator_events")
@operator
async def operator_events(request: web.Request) -> web.StreamResponse:
    """Every caller's job events as they happen (no replay: the page loads the recent jobs
    first), and an `overview` every two seconds. `resync` says events were missed."""
    services = request.app[SERVICES]
    most = services.settings.max_streams_per_caller
    with request.app[HUB].subscribe(None, caller(request), most=most, everyone=True) as feed:
        async with EventSourceResponse(ping_interval=PING_INTERVAL) as sse:
            await sse.prepare(request)
            await _follow(request, sse, feed)
    return sse


async def _follow(request: web.Request, sse: EventSourceResponse, feed: Subscription) -> None:
    services = request.app[SERVICES]
    loop = asyncio.get_running_loop()
    due = loop.time()
    while True:
        if loop.time() >= due:
            overview = await request.app[OVERVIEWS].get(services)
            await sse.send(json.dumps(overview), event="overview")
            due = loop.time() + OVERVIEW_INTERVAL
        try:
            async with asyncio.timeout_at(due):
                item = await feed.next()
        except TimeoutError:
            continue
        if item == "closed":
            return
        if item == "resync":
            await sse.send("{}", event="resync")
            continue
        data = item.data
        if item.terminal:
            job = await services.jobs.get(item.job_id)
            data = {**data, "job": render_job(job, request) if job else None}
        await sse.send(json.dumps({"job_id": item.job_id, "ts": item.ts, **data}), event=item.kind)


@routes.get("/v1/jobs/{job_id}/pages/{number}/image")
async def page_image(request: web.Request) -> web.Response:
    """A page of the job's document as a PNG (`?width=`, 900 px by default): to look at beside
    its text. The caller's own job, or any job for an operator."""
    job = await job_or_404(request)
    services = request.app[SERVICES]
    try:
        number = int(request.match_info["number"])
    except ValueError:
        raise OcrflowError(ErrorCode.MALFORMED_REQUEST, "a page is a number") from None
    least, most, default = PREVIEW_WIDTH
    width = int_query(request, "width", default, least, most)
    pages = job.progress.pages_total
    if job.source.media_type is None or number < 1 or (pages is not None and number > pages):
        raise OcrflowError(ErrorCode.NOT_FOUND, f"job {job.id} has no page {number} to show")
    media_type = MediaType(job.source.media_type)
    settings = services.settings
    async with _previews:
        # From S3, the source comes down to a scratch file first.
        with tempfile.TemporaryDirectory(prefix="ocrflow-preview-") as scratch:
            source = services.storage.local_path(layout.source_key(job.id))
            if source is None:
                source = Path(scratch) / "source"
                await services.storage.fetch(layout.source_key(job.id), source)
            elif not source.exists():
                raise OcrflowError(ErrorCode.NOT_FOUND, f"the document of job {job.id} is gone")
            try:
                png = await asyncio.to_thread(
                    preview,
                    source,
                    media_type,
                    number=number,
                    width=width,
                    max_pixels=settings.max_page_pixels,
                    timeout=PREVIEW_TIMEOUT,
                )
            except PipelineError as exc:
                raise OcrflowError(ErrorCode.NOT_FOUND, exc.message) from exc
    return web.Response(
        body=png, content_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
    )
