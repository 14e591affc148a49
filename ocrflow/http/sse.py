"""Server-sent event feeds: a job's events, or all jobs', replayed from the stream then live."""

import asyncio
import json

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.http.auth import caller
from ocrflow.http.jobs import job_or_404, render_job
from ocrflow.http.pubsub import Subscription
from ocrflow.http.state import HUB, SERVICES
from ocrflow.jobs.events import Event, is_stream_id, stream_id

PING_INTERVAL = 15.0
# A quiet job feed looks this often whether its job has expired.
RECHECK_INTERVAL = 15.0

routes = web.RouteTableDef()


@routes.get("/v1/jobs/{job_id}/events", name="job_events")
async def job_events(request: web.Request) -> web.StreamResponse:
    job = await job_or_404(request)  # a 404 is plain JSON, before any stream starts
    return await _feed(request, job.id, job.owner)


@routes.get("/v1/events", name="all_events")
async def all_events(request: web.Request) -> web.StreamResponse:
    return await _feed(request, None, caller(request))


async def _feed(request: web.Request, job_id: str | None, owner: str) -> web.StreamResponse:
    last = request.headers.get("Last-Event-ID", request.query.get("last_event_id"))
    if last is not None and not is_stream_id(last):
        # Before the stream starts: a browser would otherwise reconnect with it again and again.
        raise OcrflowError(ErrorCode.MALFORMED_REQUEST, f"Last-Event-ID {last[:40]!r} is not ours")
    most = request.app[SERVICES].settings.max_streams_per_caller
    with request.app[HUB].subscribe(job_id, owner, most=most) as subscription:
        # The response is its own context manager; sse_response() would wrap it once more
        # and keep the wrapper alive for the life of every stream.
        async with EventSourceResponse(ping_interval=PING_INTERVAL) as sse:
            await sse.prepare(request)
            feed = _Feed(request, sse, job_id, owner, last)
            if not await feed.replay():
                await feed.follow(subscription)
    return sse


class _Feed:
    __slots__ = ("job_id", "last", "owner", "request", "sse")

    def __init__(
        self,
        request: web.Request,
        sse: EventSourceResponse,
        job_id: str | None,
        owner: str,
        last: str | None,
    ) -> None:
        self.request, self.sse, self.job_id, self.last = request, sse, job_id, last
        self.owner = owner

    async def replay(self) -> bool:
        """Send what the client has not seen of the job's latest run (of every job's events, in
        the all-jobs feed); True when the feed is over."""
        services = self.request.app[SERVICES]
        since = await services.jobs.events_from(self.job_id) if self.job_id else None
        if since and stream_id(self.last or "0-0") < stream_id(since):
            history = services.events.history(self.job_id, None, self.owner, since=since)
        else:
            history = services.events.history(self.job_id, self.last, self.owner)
        async for page in history:
            for event in page:
                if await self.send(event):
                    return True
        return False

    async def follow(self, subscription: Subscription) -> None:
        """Live events until the job's ending. Every transition announces itself in the same
        step that makes it, so the ending always comes; a job feed only looks now and then
        whether its job has expired meanwhile."""
        while True:
            try:
                async with asyncio.timeout(RECHECK_INTERVAL if self.job_id else None):
                    item = await subscription.next()
            except TimeoutError:
                if await self._gone():
                    return
                continue
            if item == "closed":
                return
            if item == "resync":
                if await self.replay():
                    return
            elif stream_id(item.id) > stream_id(self.last or "0-0") and await self.send(item):
                return

    async def _gone(self) -> bool:
        assert self.job_id is not None
        return await self.request.app[SERVICES].jobs.get(self.job_id) is None

    async def send(self, event: Event) -> bool:
        """Send one event; True when it ends a job's feed. An ending carries the job's document
        as it is now (events themselves stay small)."""
        data = event.data
        if event.terminal:
            job = await self.request.app[SERVICES].jobs.get(event.job_id)
            data = {**data, "job": render_job(job, self.request) if job else None}
        body = json.dumps({"job_id": event.job_id, "ts": event.ts, **data})
        await self.sse.send(body, id=event.id, event=event.kind)
        self.last = event.id
        return event.terminal and self.job_id is not None
