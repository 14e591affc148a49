"""The arq side of Redis: connection settings, a JSON serializer, and enqueueing a job's run."""

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import serialize_job
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from ocrflow.handlers.jobs import redis_keys as keys
from ocrflow.handlers.settings import Settings

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
WEEK = 7 * 24 * 3600.0
PATIENT_RETRIES = 6  # ~5 s of backoff; longer outages restart the worker
_DECADE_MS = 10 * 365 * 24 * 3600 * 1000
PRIORITY_HEAD_START = {"high": 2 * _DECADE_MS, "normal": _DECADE_MS, "low": 0}


def redis_settings(settings: Settings, *, patient: bool = False) -> RedisSettings:
    """Connection settings; a patient client (the worker) rides out a Redis restart of a few
    seconds, an impatient one (the ingress) fails fast so callers get a 503 at once."""
    config: RedisSettings = RedisSettings.from_dsn(settings.redis_url or DEFAULT_REDIS_URL)
    config.conn_timeout = 5
    config.conn_retries = 3
    config.retry_on_timeout = True
    config.retry_on_error = [ConnectionError, TimeoutError, RedisConnectionError]
    attempts = PATIENT_RETRIES if patient else 1
    config.retry = Retry(ExponentialBackoff(cap=2.0, base=0.1), attempts)
    return config


def serialize(value: Any) -> bytes:
    """arq's job serializer: JSON, so nothing stored in Redis is ever executable."""
    return json.dumps(value, default=repr).encode()


def deserialize(raw: bytes) -> Any:
    return json.loads(raw)


async def connect(settings: Settings) -> ArqRedis:
    pool: ArqRedis = await create_pool(
        redis_settings(settings),
        job_serializer=serialize,
        job_deserializer=deserialize,
        default_queue_name=settings.queue_name,
    )
    return pool


async def enqueue_run(
    arq: ArqRedis, job_id: str, *, run: int = 1, priority: str = "normal", keep: float = WEEK
) -> bool:
    """Queue one run of a job; False when that run is already queued or finished.

    arq takes the lowest score first and scores by time; a priority moves the score years into
    the past, so every high job comes before every normal one, and normal before low, each
    in the order they came.
    """
    score = datetime.now(UTC) - timedelta(milliseconds=PRIORITY_HEAD_START[priority])
    queued = await arq.enqueue_job(
        keys.PROCESS_JOB,
        job_id,
        _job_id=keys.arq_job_id(job_id, run),
        _defer_until=score,
        _expires=timedelta(seconds=keep),
    )
    if queued is not None:
        await arq.hset(keys.QUEUED, job_id, keys.arq_job_id(job_id, run))  # type: ignore[misc]
    return queued is not None


@dataclass(frozen=True)
class FirstRun:
    """The first run of a new job as arq stores a queued job: its payload under `key` for
    `keep_ms`, its id in the queue at `score`. What `enqueue_run` stores, written directly:
    arq's own enqueue checks, in three round trips, for an id that cannot exist yet, since
    job ids are new."""

    arq_id: str
    key: str
    payload: bytes
    keep_ms: int
    score: int


def first_run(job_id: str, *, priority: str, keep: float) -> FirstRun:
    now_ms = int(time.time() * 1000)
    arq_id = keys.arq_job_id(job_id, 1)
    payload = serialize_job(keys.PROCESS_JOB, (job_id,), {}, None, now_ms, serializer=serialize)
    return FirstRun(
        arq_id=arq_id,
        key=keys.ARQ_JOB + arq_id,
        payload=payload,
        keep_ms=int(keep * 1000),
        score=now_ms - PRIORITY_HEAD_START[priority],
    )
