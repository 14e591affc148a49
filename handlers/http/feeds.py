"""Server-sent event feeds: a job's events, or all jobs', replayed from the stream then live."""

import asyncio
import json
from typing import Any

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from ocrflow.handlers.http.auth import caller
from ocrflow.handlers.http.hub import Subscription
from ocrflow.handlers.http.jobs import job_or_404, render_job
from ocrflow.handlers.http.state import HUB, SERVICES
from ocrflow.handlers.jobs.events import Event, stream_id
from ocrflow.handlers.jobs.records import Job

PING_INTERVAL = 15.0
# A job whose record is terminal but whose stream lacks the terminal event (trimmed, or not yet
# published) waits this long for it before the feed makes one from the record; a quiet feed
# looks at the record this often, in case a terminal event was never published.
TERMINAL_GRACE = 2.0
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
    last = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    with request.app[HUB].subscribe(job_id, owner) as subscription:
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
        """Send what the client has not seen; True when the feed is over."""
        events = self.request.app[SERVICES].events
        for event in await events.history(self.job_id, self.last, self.owner):
            if await self.send(event):
                return True
        return False

    async def follow(self, subscription: Subscription) -> None:
        finished = self.job_id is not None and await self._finished()
        while True:
            try:
                async with asyncio.timeout(self._patience(finished)):
                    item = await subscription.next()
            except TimeoutError:
                if finished:  # the record is terminal but no terminal event came: end anyway
                    await self._send_from_record()
                    return
                finished = await self._finished()
                continue
            if item == "closed":
                return
            if item == "resync":
                if await self.replay():
                    return
            elif stream_id(item.id) > stream_id(self.last or "0-0") and await self.send(item):
                return

    def _patience(self, finished: bool) -> float | None:
        if self.job_id is None:
            return None
        return TERMINAL_GRACE if finished else RECHECK_INTERVAL

    async def _finished(self) -> bool:
        assert self.job_id is not None
        job = await self.request.app[SERVICES].jobs.get(self.job_id)
        return job is None or job.state.terminal

    async def send(self, event: Event) -> bool:
        """Send one event; True when it ends a job's feed."""
        data = event.data
        if event.terminal and data.get("job"):
            job = Job.model_validate(data["job"])
            data = {**data, "job": render_job(job, self.request)}
        body = json.dumps({"job_id": event.job_id, "ts": event.ts, **data})
        await self.sse.send(body, id=event.id, event=event.kind)
        self.last = event.id
        return event.terminal and self.job_id is not None

    async def _send_from_record(self) -> None:
        assert self.job_id is not None
        job = await self.request.app[SERVICES].jobs.get(self.job_id)
        if job is None:
            return
        kind = "done" if job.state == "succeeded" else str(job.state)
        rendered = render_job(job, self.request)
        body: dict[str, Any] = {"job_id": job.id, "state": job.state, "job": rendered}
        await self.sse.send(json.dumps(body), event=kind)
