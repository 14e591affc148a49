"""The aiohttp application: routes, error handling, and the services it opens and closes."""

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from ocrflow.http import (
    jobs,
    monitoring,
    openapi,
    operators,
    pages,
    pictures,
    s3_notifications,
    sse,
    uploads,
)
from ocrflow.http.auth import AUTHENTICATOR, Authenticator, auth_middleware
from ocrflow.http.errors import error_middleware
from ocrflow.http.pubsub import EventHub
from ocrflow.http.state import HUB, SERVICES, SETTINGS
from ocrflow.http.submission import JSON_BODY_LIMIT
from ocrflow.jobs.services import open_services
from ocrflow.pipeline.options import installed_languages
from ocrflow.settings import Settings


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, auth_middleware], client_max_size=JSON_BODY_LIMIT
    )
    app[SETTINGS] = settings
    app[AUTHENTICATOR] = Authenticator(settings)
    app[operators.OVERVIEWS] = operators.Overviews()
    app.cleanup_ctx.append(_services)
    app.on_shutdown.append(_stop_feeds)
    app.on_response_prepare.append(_never_sniffed)
    routed = (jobs, sse, pictures, pages, monitoring, operators, s3_notifications, uploads, openapi)
    for module in routed:
        app.add_routes(module.routes)
    return app


async def _services(app: web.Application) -> AsyncIterator[None]:
    services = await open_services(app[SETTINGS])
    # Warm the installed-language list so the first submission does not block the loop on it.
    await asyncio.to_thread(installed_languages)
    app[SERVICES] = services
    hub = EventHub(services.redis)
    await hub.start()
    app[HUB] = hub
    yield
    await hub.stop()
    await services.close()


async def _never_sniffed(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer is what its Content-Type says: a browser never guesses it is HTML."""
    response.headers["X-Content-Type-Options"] = "nosniff"


async def _stop_feeds(app: web.Application) -> None:
    """Graceful shutdown: end every open event stream so its route returns."""
    await app[HUB].stop()
