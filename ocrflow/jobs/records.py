"""The job record: its document, its states, and the Redis hash that holds it."""

import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, cast

from pydantic import BaseModel, Field, computed_field, field_validator
from pydantic_core import to_jsonable_python
from redis.asyncio import Redis

from ocrflow.errors import ErrorCode
from ocrflow.jobs import redis_keys
from ocrflow.jobs.sources import clean_filename
from ocrflow.pipeline.errors import PipelineCode
from ocrflow.pipeline.options import OcrOptions

log = logging.getLogger(__name__)
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
JOB_ID = re.compile(r"j_[0-9a-hjkmnp-tv-z]{22}")  # what `new_job_id` makes


class Priority(StrEnum):
    """Workers take every high job before any normal one, and normal before low."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
ACTIVE = frozenset({JobState.QUEUED, JobState.RUNNING})


class Source(BaseModel):
    kind: Literal["upload", "url"] = "upload"
    filename: str  # a display name, made safe here for every way a document comes in
    url: str | None = None
    # Known at once for uploads; for a URL, once the worker has fetched it.
    sha256: str | None = None
    etag: str | None = None  # the stored object's checksum, for a direct upload or an S3 event
    bytes: int | None = None
    media_type: str | None = None

    @field_validator("filename")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return clean_filename(value)


class Progress(BaseModel):
    stage: str = "queued"
    pages_done: int = 0
    pages_total: int | None = None
    fraction: float = 0.0
    message: str = ""


class JobError(BaseModel):
    code: ErrorCode | PipelineCode
    message: str
    retryable: bool = False


class HandlerRun(BaseModel):
    """One handler a job runs after recognition: what it was asked, and how its run went."""

    params: dict[str, Any] = Field(default_factory=dict)
    # cancelled: the job was cancelled before this handler ended (or began)
    state: Literal["pending", "running", "succeeded", "failed", "cancelled"] = "pending"
    summary: dict[str, Any] | None = None
    error: JobError | None = None
    outputs: list[str] = Field(default_factory=list)  # names in the job's outputs
    seconds: float | None = None

    def fresh(self) -> "HandlerRun":
        """The same request, not yet run (for a new run of the job)."""
        return HandlerRun(params=self.params)


class FailedRule(BaseModel):
    rule: str
    reason: str  # in words: `amount: 75000 is more than 50000`


class Verdict(BaseModel):
    """What the job's `validate` handler concluded: the OCR can succeed while checks fail."""

    passed: bool
    failed: list[FailedRule] = Field(default_factory=list)


class Job(BaseModel):
    id: str
    owner: str = "anonymous"  # the caller that submitted it: only it can see the job
    state: JobState = JobState.QUEUED
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempt: int = 0  # arq's try of the current run
    run: int = 1  # runs started explicitly: the first, then one per retry or hand-back
    priority: Priority = Priority.NORMAL
    source: Source
    options: OcrOptions
    progress: Progress = Field(default_factory=Progress)
    outputs: dict[str, str] = Field(default_factory=dict)  # output name -> storage key
    cached: bool = False  # answered from an earlier job's result for the same bytes and options
    error: JobError | None = None
    callback_url: str | None = None
    callbacks: list[dict[str, Any]] = Field(default_factory=list)  # delivery attempts
    notify_email: str | None = None
    notifications: list[dict[str, Any]] = Field(default_factory=list)  # e-mails sent or not
    metadata: dict[str, Any] = Field(default_factory=dict)
    # Handlers run after recognition, in this order: name -> its request and its run.
    handlers: dict[str, HandlerRun] = Field(default_factory=dict)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def verdict(self) -> Verdict | None:
        """When the job ran `validate`: passed, or failed with the failed rules in words. The
        job's `state` stays what the OCR did."""
        run = self.handlers.get("validate")
        if run is None or run.state != "succeeded" or not isinstance(run.summary, dict):
            return None
        reasons = run.summary.get("reasons") or {}
        failed = [
            FailedRule(rule=str(rule), reason=str(reasons.get(rule, "")))
            for rule in run.summary.get("failed") or []
        ]
        return Verdict(passed=bool(run.summary.get("passed")), failed=failed)


_last_id = [0, 0]  # the millisecond and random part of this process's latest id


def created_ms(job_id: str) -> int:
    """When a job was made (ms since the epoch), from its id; 0 for an id `new_job_id` did not
    make."""
    digits = job_id[2:12]
    if not job_id.startswith("j_") or len(digits) != 10:
        return 0
    value = 0
    for char in digits:
        index = _CROCKFORD.find(char)
        if index < 0:
            return 0
        value = value * 32 + index
    return value


def new_job_id() -> str:
    """`j_` + a sortable timestamp + randomness: ids of later jobs sort later. Within one
    millisecond the random part only grows (as ULID's monotonic mode does), so a burst of ids
    from one process sorts in the order it was made."""
    millis, last_millis = int(time.time() * 1000), _last_id[0]
    if millis > last_millis:
        random = secrets.randbits(59)  # leaves room to count up within the millisecond
    else:
        millis, random = last_millis, _last_id[1] + 1 + secrets.randbits(16)
    _last_id[:] = millis, random
    return "j_" + _crockford(millis, 10) + _crockford(random, 12)


def _crockford(value: int, digits: int) -> str:
    """The low 5 * `digits` bits of `value` in Crockford base 32, most significant first."""
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(5 * digits - 5, -1, -5))


def now() -> datetime:
    return datetime.now(UTC)


# Update fields only while the job is in one of the allowed states (ARGV[1], comma-separated,
# empty = any), so a late progress write can never overwrite a cancel or a terminal state.
_UPDATE = """
local current = redis.call('HGET', KEYS[1], 'state')
if not current then return -1 end
if ARGV[1] ~= '' then
  local allowed = false
  for state in string.gmatch(ARGV[1], '[^,]+') do
    if state == current then allowed = true end
  end
  if not allowed then return 0 end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
"""


class JobStore:
    """Job records as Redis hashes, one JSON value per top-level field."""

    def __init__(self, redis: Redis, *, retention: int) -> None:
        self._redis = redis
        self._retention = retention
        self._update = redis.register_script(_UPDATE)

    async def get(self, job_id: str) -> Job | None:
        raw = await cast(
            Awaitable[dict[bytes, bytes]], self._redis.hgetall(redis_keys.job_key(job_id))
        )
        return _decode(job_id, raw) if raw else None

    async def events_from(self, job_id: str) -> str | None:
        """Where the job's latest run's events begin (after a retry), if it was retried."""
        raw = await cast(
            Awaitable[bytes | None], self._redis.hget(redis_keys.job_key(job_id), "events_from")
        )
        return str(json.loads(raw)) if raw else None

    async def get_many(self, job_ids: list[str]) -> list[Job | None]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hgetall(redis_keys.job_key(job_id))
            rows = await pipe.execute()
        return [
            _decode(job_id, row) if row else None for job_id, row in zip(job_ids, rows, strict=True)
        ]

    async def newest(self, owner: str | None, *, before: str | None, count: int) -> list[str]:
        """An owner's job ids (every caller's recent ones, for None), newest first, older than
        `before` (a job id) when given."""
        top = f"({before}" if before else "+"
        index = redis_keys.job_index(owner) if owner is not None else redis_keys.RECENT_JOBS
        ids = await self._redis.zrevrangebylex(index, top, "-", start=0, num=count)
        return [i.decode() for i in ids]

    async def forget(self, owner: str, job_ids: list[str]) -> None:
        """Drop ids whose records have expired from an owner's index."""
        if job_ids:
            await self._redis.zrem(redis_keys.job_index(owner), *job_ids)

    async def update(
        self, job_id: str, *, only_from: frozenset[JobState] | None = None, **fields: Any
    ) -> bool:
        """Set fields atomically; False when the job is gone or not in one of `only_from`."""
        allowed = ",".join(json.dumps(str(state)) for state in sorted(only_from or ()))
        flat = [item for pair in encode_fields(to_jsonable_python(fields)).items() for item in pair]
        done = await self._update(keys=[redis_keys.job_key(job_id)], args=[allowed, *flat])
        return bool(done == 1)


def _decode(job_id: str, raw: dict[bytes, bytes]) -> Job | None:
    """The record as a job; None, reported, when it cannot be read (damaged, or written by
    something else): one bad record must not break a listing or stop the reaper."""
    try:
        return Job.model_validate({k.decode(): json.loads(v) for k, v in raw.items()})
    except (ValueError, TypeError) as exc:  # JSON, UTF-8 and validation errors are ValueErrors
        log.error("job %s: its record cannot be read, so it is passed over: %s", job_id, exc)
        return None


def record_fields(job: Job) -> dict[str, str]:
    """A new job's record: each top-level field as JSON."""
    return encode_fields(job.model_dump(mode="json", exclude={"verdict"}))


def encode_fields(document: dict[str, Any]) -> dict[str, str]:
    return {name: json.dumps(value) for name, value in document.items()}
