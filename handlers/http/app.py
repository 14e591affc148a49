"""The aiohttp application: routes, error handling, and the services it opens and closes."""

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from ocrflow.handlers.http import feeds, openapi, webhooks
from ocrflow.handlers.http import jobs as api
from ocrflow.handlers.http import uploads as presigned
from ocrflow.handlers.http.auth import AUTHENTICATOR, Authenticator, auth_middleware
from ocrflow.handlers.http.errors import error_middleware
from ocrflow.handlers.http.forms import use_fast_disposition
from ocrflow.handlers.http.hub import EventHub
from ocrflow.handlers.jobs.services import SERVICES, open_services
from ocrflow.handlers.settings import Settings
from ocrflow.pipeline.options import installed_languages

SETTINGS = web.AppKey("settings", Settings)
JSON_BODY_LIMIT = 1024 * 1024


def create_app(settings: Settings) -> web.Application:
    use_fast_disposition()
    app = web.Application(
        middlewares=[error_middleware, auth_middleware], client_max_size=JSON_BODY_LIMIT
    )
    app[SETTINGS] = settings
    app[AUTHENTICATOR] = Authenticator(settings)
    app.cleanup_ctx.append(_services)
    app.on_shutdown.append(_stop_feeds)
    app.add_routes(api.routes)
    app.add_routes(feeds.routes)
    app.add_routes(webhooks.routes)
    app.add_routes(presigned.routes)
    app.add_routes(openapi.routes)
    return app


async def _services(app: web.Application) -> AsyncIterator[None]:
    services = await open_services(app[SETTINGS])
    # Warm the installed-language list so the first submission does not block the loop on it.
    await asyncio.to_thread(installed_languages)
    app[SERVICES] = services
    hub = EventHub(services.redis)
    await hub.start()
    app[feeds.HUB] = hub
    app[api.SSE_CLIENTS] = lambda: hub.clients
    yield
    await hub.stop()
    await services.close()


async def _stop_feeds(app: web.Application) -> None:
    """Graceful shutdown: end every open event stream so its handler returns."""
    await app[feeds.HUB].stop()
