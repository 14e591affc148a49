"""Answering a submission with a job that already exists: the same Idempotency-Key, an identical
document already in flight, or an identical document already read (the result cache)."""

import hashlib
import json
from collections.abc import Awaitable
from typing import cast

from redis.asyncio import Redis

from handlers.errors import ApiError
from handlers.jobs import ACTIVE, Job, JobState

IDEMPOTENCY_PREFIX = "ocrflow:idempotency:"
IN_FLIGHT_PREFIX = "ocrflow:inflight:"
RESULT_PREFIX = "ocrflow:result:"
KEY_TTL = 24 * 3600

# Delete a key only while it still names this job: a later job may own it by now.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def content_fingerprint(job: Job) -> str:
    """Same caller, same bytes, same options: the same result. Never another caller's job: that
    would show one caller's job to another, and tell it what others have submitted."""
    options = job.options.model_dump_json()
    content = job.source.sha256 or f"url:{job.source.url}"
    return hashlib.sha256(f"{job.owner}\n{content}\n{options}".encode()).hexdigest()


def request_fingerprint(job: Job) -> str:
    """What an Idempotency-Key promises stays the same: the document, options and the rest."""
    extra = json.dumps([job.priority, job.metadata], sort_keys=True)
    return hashlib.sha256(f"{content_fingerprint(job)}\n{extra}".encode()).hexdigest()


class Reuse:
    def __init__(self, redis: Redis, *, result_ttl: int, retention: int) -> None:
        self._redis = redis
        self._result_ttl = result_ttl
        self._retention = retention
        self._release = redis.register_script(_RELEASE)

    async def claim_key(self, caller: str, key: str, job: Job) -> str | None:
        """Bind the key to `job`; or the id of the job it already names (same request only)."""
        name = IDEMPOTENCY_PREFIX + hashlib.sha256(f"{caller}\n{key}".encode()).hexdigest()
        value = json.dumps({"job_id": job.id, "request": request_fingerprint(job)})
        if await self._redis.set(name, value, nx=True, ex=KEY_TTL):
            return None
        raw = await self._redis.get(name)
        if raw is None:  # expired between the two calls: try once more
            return await self.claim_key(caller, key, job)
        bound = json.loads(raw)
        if bound["request"] != request_fingerprint(job):
            raise ApiError(
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request in the last 24 hours",
            )
        return str(bound["job_id"])

    async def rebind_key(self, caller: str, key: str, job: Job, job_id: str) -> None:
        name = IDEMPOTENCY_PREFIX + hashlib.sha256(f"{caller}\n{key}".encode()).hexdigest()
        value = json.dumps({"job_id": job_id, "request": request_fingerprint(job)})
        await self._redis.set(name, value, ex=KEY_TTL)

    async def release_key(self, caller: str, key: str) -> None:
        name = IDEMPOTENCY_PREFIX + hashlib.sha256(f"{caller}\n{key}".encode()).hexdigest()
        await self._redis.delete(name)

    async def claim_in_flight(self, job: Job) -> str | None:
        """Mark `job` as the one reading this content; or the id of the one already reading it."""
        name = IN_FLIGHT_PREFIX + content_fingerprint(job)
        if await self._redis.set(name, job.id, nx=True, ex=self._retention):
            return None
        raw = await self._redis.get(name)
        return raw.decode() if raw else None

    async def take_in_flight(self, job: Job) -> None:
        """The job that held the claim has ended or gone: this one reads the content now."""
        await self._redis.set(
            IN_FLIGHT_PREFIX + content_fingerprint(job), job.id, ex=self._retention
        )

    async def release_in_flight(self, job: Job) -> None:
        await cast(
            Awaitable[int],
            self._release(keys=[IN_FLIGHT_PREFIX + content_fingerprint(job)], args=[job.id]),
        )

    async def remember_result(self, job: Job) -> None:
        if self._result_ttl > 0 and job.source.kind == "upload":
            name = RESULT_PREFIX + content_fingerprint(job)
            await self._redis.set(name, job.id, ex=min(self._result_ttl, self._retention))

    async def cached_result(self, job: Job) -> str | None:
        if self._result_ttl <= 0 or job.source.sha256 is None:
            return None  # off, or a URL whose content may have changed since
        raw = await self._redis.get(RESULT_PREFIX + content_fingerprint(job))
        return raw.decode() if raw else None


def still_running(job: Job | None) -> bool:
    return job is not None and job.state in ACTIVE


def reusable_result(job: Job | None) -> bool:
    return job is not None and job.state is JobState.SUCCEEDED and bool(job.outputs)
