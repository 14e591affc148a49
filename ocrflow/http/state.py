"""What the ingress application holds, under typed keys: set up by `app`, read by the routes."""

from aiohttp import web

from ocrflow.http.pubsub import EventHub
from ocrflow.jobs.services import Services
from ocrflow.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
HUB = web.AppKey("hub", EventHub)
