"""Signed callbacks: when a job ends, its document is POSTed to the job's callback_url, signed
with HMAC-SHA256 over the timestamp and the body, retried with backoff as its own arq job."""

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import aiohttp
from arq import Retry
from yarl import URL

from ocrflow.jobs.records import Job, now
from ocrflow.jobs.services import Services
from ocrflow.runtime.addresses import AddressNotAllowed, check_url, connector_options
from ocrflow.settings import Settings
from ocrflow.worker.context import SERVICES
from ocrflow.worker.retries import backoff

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Ocrflow-Signature"
TOLERANCE = 300  # seconds a receiver should accept between the signed time and its clock
TIMEOUT = aiohttp.ClientTimeout(total=15)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    stamp = int(time.time()) if timestamp is None else timestamp
    return f"t={stamp},v1={sign(secret, stamp, body)}"


def verify(secret: str, header: str, body: bytes, *, now_: float | None = None) -> bool:
    """What a receiver does: recompute the signature, compare in constant time, check the age."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        stamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    fresh = abs((time.time() if now_ is None else now_) - stamp) <= TOLERANCE
    return fresh and hmac.compare_digest(sign(secret, stamp, body), parts.get("v1", ""))


def callback_document(job: Job, settings: Settings) -> dict[str, Any]:
    document = job.model_dump(mode="json", exclude={"callbacks"})
    base = (settings.public_url or "").rstrip("/")
    document["outputs"] = {name: f"{base}/v1/jobs/{job.id}/outputs/{name}" for name in job.outputs}
    return document


async def deliver(services: Services, job: Job, attempt: int) -> str | None:
    """POST once; None on a 2xx answer, else what went wrong."""
    settings = services.settings
    body = json.dumps(callback_document(job, settings)).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "ocrflow-callback"}
    if settings.webhook_secret:
        headers[SIGNATURE_HEADER] = signature_header(settings.webhook_secret, body)
    url = URL(str(job.callback_url))
    check_url(url, allow_private=settings.allow_private_urls)
    connector = aiohttp.TCPConnector(**connector_options(allow_private=settings.allow_private_urls))
    async with (
        aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session,
        session.post(url, data=body, headers=headers, allow_redirects=False) as reply,
    ):
        return None if 200 <= reply.status < 300 else f"HTTP {reply.status}"


async def send_callback(ctx: dict[str, Any], job_id: str) -> dict[str, str]:
    """The arq function: one delivery attempt; Retry with backoff until it lands or tries end."""
    services: Services = ctx[SERVICES]
    settings, attempt = services.settings, ctx["job_try"]
    job = await services.jobs.get(job_id)
    if job is None or not job.callback_url:
        return {"job_id": job_id, "callback": "skipped"}
    final = False
    try:
        error = await deliver(services, job, attempt)
    except AddressNotAllowed as exc:
        error, final = exc.message, True
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except Exception as exc:  # the request cannot be made at all: trying again won't help
        log.exception("job %s: callback cannot be sent", job_id)
        error, final = f"{type(exc).__name__}: {exc}", True
    record = {"attempt": attempt, "at": now().isoformat(), "error": error}
    await services.jobs.update(job_id, callbacks=[*job.callbacks, record])
    if error is None:
        return {"job_id": job_id, "callback": "delivered"}
    log.warning("job %s: callback attempt %d failed: %s", job_id, attempt, error)
    if final or attempt >= settings.callback_max_tries:
        return {"job_id": job_id, "callback": "failed"}
    raise Retry(defer=backoff(attempt, settings.callback_backoff))
