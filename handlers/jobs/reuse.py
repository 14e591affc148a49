"""Answering a submission with a job that already exists: the same Idempotency-Key, an identical
document already in flight, or an identical document already read (the result cache)."""

import hashlib
import json
from collections.abc import Awaitable
from typing import cast

from redis.asyncio import Redis

from ocrflow.handlers.errors import ErrorCode, OcrflowError
from ocrflow.handlers.jobs.records import ACTIVE, Job, JobState

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
            raise OcrflowError(
                ErrorCode.IDEMPOTENCY_KEY_REUSED,
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

    @property
    def in_flight_ttl(self) -> int:
        return self._retention

    def claim_keys(self, job: Job) -> tuple[str | None, str]:
        """Where an earlier job whose result answers this one is named (None when the cache is
        off, or for a URL, whose content may have changed since); and where the job reading
        this content is (claimed as a job is admitted)."""
        fingerprint = content_fingerprint(job)
        cache_off = self._result_ttl <= 0 or job.source.sha256 is None
        return None if cache_off else RESULT_PREFIX + fingerprint, IN_FLIGHT_PREFIX + fingerprint

    async def release_in_flight(self, job: Job) -> None:
        await cast(
            Awaitable[int],
            self._release(keys=[IN_FLIGHT_PREFIX + content_fingerprint(job)], args=[job.id]),
        )

    async def remember_result(self, job: Job) -> None:
        if self._result_ttl > 0 and job.source.kind == "upload":
            name = RESULT_PREFIX + content_fingerprint(job)
            await self._redis.set(name, job.id, ex=min(self._result_ttl, self._retention))


def still_running(job: Job | None) -> bool:
    return job is not None and job.state in ACTIVE


def reusable_result(job: Job | None) -> bool:
    return job is not None and job.state is JobState.SUCCEEDED and bool(job.outputs)
