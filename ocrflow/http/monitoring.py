"""What operators and platforms look at: liveness, readiness, status, metrics; and the page."""

import asyncio
import os
import shutil

from aiohttp import web

from ocrflow.http.auth import monitoring, public
from ocrflow.http.state import HUB, SERVICES
from ocrflow.jobs import stats
from ocrflow.settings import MIB
from ocrflow.storage.backend import DiskFull

routes = web.RouteTableDef()


@routes.get("/v1/status")
@monitoring
async def status(request: web.Request) -> web.Response:
    """Workers alive (with their background loops), queue depth by priority, jobs running,
    counts since the start, and this ingress process with its event listener."""
    services, hub = request.app[SERVICES], request.app[HUB]
    figures = await stats.snapshot(services.redis, services.settings.queue_name)
    figures["ingress"] = {"pid": os.getpid(), "sse_clients": hub.clients, **hub.health()}
    return web.json_response(figures)


@routes.get("/metrics")
@monitoring
async def metrics(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    figures = await stats.snapshot(services.redis, services.settings.queue_name)
    clients = request.app[HUB].clients
    return web.Response(
        text=stats.prometheus(figures, clients), content_type="text/plain", charset="utf-8"
    )


@routes.get("/healthz")
@public
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
@public
async def readyz(request: web.Request) -> web.Response:
    """Redis answers, storage answers, and the disk under the data directory has room."""
    services = request.app[SERVICES]
    await services.redis.ping()
    await services.storage.check()
    data_dir = services.settings.data_dir
    free = await asyncio.to_thread(lambda: shutil.disk_usage(data_dir).free)
    if free < services.settings.min_free_bytes:
        raise DiskFull(f"the data directory ({free // MIB} MiB free)")
    return web.json_response({"status": "ready", "free_bytes": free})
