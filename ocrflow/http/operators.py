"""For operators: every caller's jobs, the workers and the queue, live. `/dashboard` is the
page; `/v1/admin/…` the API behind it (OCRFLOW_ADMIN_CALLERS say who may use it)."""

import asyncio
import json
import time
from typing import Any

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.http.auth import caller, operator
from ocrflow.http.jobs import int_query, render_job
from ocrflow.http.pubsub import Subscription
from ocrflow.http.state import HUB, SERVICES
from ocrflow.jobs import stats
from ocrflow.jobs.records import JOB_ID, JobState
from ocrflow.jobs.services import Services

routes = web.RouteTableDef()

OVERVIEW_INTERVAL = 2.0  # seconds between the feed's snapshots of workers, queue and throughput
PING_INTERVAL = 15.0
LIST_LIMIT = 200
VERDICTS = ("passed", "failed")  # what validate concluded, to filter the listing by
SCAN_BUDGET = 1000  # recent jobs one listing looks at


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
    verdict = request.query.get("verdict") or None
    if verdict is not None and verdict not in VERDICTS:
        raise OcrflowError(
            ErrorCode.MALFORMED_REQUEST, f"a verdict is one of {', '.join(VERDICTS)}"
        )
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
        if verdict and (job.verdict is None or job.verdict.passed != (verdict == "passed")):
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
