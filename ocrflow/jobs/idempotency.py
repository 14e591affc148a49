"""Answering a submission with a job that already exists: the same Idempotency-Key, an identical
document already in flight, or an identical document already read (the result cache)."""

import hashlib
import json
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.jobs import redis_keys
from ocrflow.jobs.records import ACTIVE, Job, JobState, Source

KEY_TTL = 24 * 3600

# Delete a key only while it still names this job: a later job may own it by now.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def content_identity(source: Source) -> str | None:
    """What names a document's content: its hash, or its object's checksum and size, or (for a
    URL not yet fetched) its address; None when nothing does."""
    if source.sha256:
        return f"sha256:{source.sha256}"
    if source.etag and source.bytes is not None:
        return f"etag:{source.etag}:{source.bytes}"
    if source.kind == "url" and source.url:
        return f"url:{source.url}"
    return None


@dataclass(frozen=True)
class Fingerprint:
    """Same caller, same content, same options, handlers and metadata: the same job. Never
    another caller's job: that would show one caller's job to another, and tell it what others
    have submitted. Metadata counts because the job answered carries it: a submission for
    order B-2 is never answered with the job recorded for order A-1."""

    value: str
    cacheable: bool  # the content itself is known (not only its address): a result answers it

    @property
    def in_flight_key(self) -> str:
        return redis_keys.IN_FLIGHT_PREFIX + self.value

    @property
    def result_key(self) -> str:
        return redis_keys.RESULT_PREFIX + self.value

    def record_field(self) -> str:
        """The record's `reuse` field, read when the job ends (`transitions.ENDED_FUNCTION`)."""
        return json.dumps({"fingerprint": self.value, "cache": self.cacheable})


def fingerprint(job: Job) -> Fingerprint:
    """A document nothing names (an identity-less source) is fingerprinted by its own job id, so
    it shares nothing."""
    identity = content_identity(job.source)
    content = identity or f"job:{job.id}"
    options, metadata = asked_of(job), json.dumps(job.metadata, sort_keys=True)
    text = f"{job.owner}\n{content}\n{options}\n{metadata}"
    value = hashlib.sha256(text.encode()).hexdigest()
    return Fingerprint(value, cacheable=identity is not None and not identity.startswith("url:"))


def asked_of(job: Job) -> str:
    """The options and the handlers with their parameters: what makes the same result."""
    options = job.options.model_dump_json()
    if not job.handlers:
        return options
    handlers = [[name, run.params] for name, run in job.handlers.items()]
    return options + "\n" + json.dumps(handlers, sort_keys=True)


def request_fingerprint(job: Job) -> str:
    """What an Idempotency-Key promises stays the same: the document, options and the rest."""
    source = content_identity(job.source) or job.source.model_dump_json(include={"filename"})
    options = asked_of(job)
    extra = json.dumps([job.priority, job.metadata], sort_keys=True)
    text = f"{job.owner}\n{source}\n{options}\n{extra}"
    return hashlib.sha256(text.encode()).hexdigest()


class Reuse:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._release = redis.register_script(_RELEASE)

    async def claim_key(self, caller: str, key: str, job: Job) -> str | None:
        """Bind the key to `job`; or the id of the job it already names (same request only)."""
        name = (
            redis_keys.IDEMPOTENCY_PREFIX + hashlib.sha256(f"{caller}\n{key}".encode()).hexdigest()
        )
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
        name = (
            redis_keys.IDEMPOTENCY_PREFIX + hashlib.sha256(f"{caller}\n{key}".encode()).hexdigest()
        )
        value = json.dumps({"job_id": job_id, "request": request_fingerprint(job)})
        await self._redis.set(name, value, ex=KEY_TTL)

    async def release_key(self, caller: str, key: str) -> None:
        name = (
            redis_keys.IDEMPOTENCY_PREFIX + hashlib.sha256(f"{caller}\n{key}".encode()).hexdigest()
        )
        await self._redis.delete(name)

    async def release_in_flight(self, job: Job) -> None:
        """Give up `job`'s in-flight claim (a job that was not accepted after all)."""
        claim = fingerprint(job).in_flight_key
        await cast(Awaitable[int], self._release(keys=[claim], args=[job.id]))


def still_running(job: Job | None) -> bool:
    return job is not None and job.state in ACTIVE


def reusable_result(job: Job | None) -> bool:
    return job is not None and job.state is JobState.SUCCEEDED and bool(job.outputs)
