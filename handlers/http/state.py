"""What the ingress application holds, under typed keys: set up by `app`, read by the routes."""

from aiohttp import web

from ocrflow.handlers.http.hub import EventHub
from ocrflow.handlers.jobs.services import Services
from ocrflow.handlers.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
HUB = web.AppKey("hub", EventHub)
