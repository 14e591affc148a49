"""The arq side of Redis: connection settings, a JSON serializer, and enqueueing a job's run."""

import json
import time
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import serialize_job
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from ocrflow.jobs import redis_keys
from ocrflow.jobs.records import Priority
from ocrflow.settings import Settings

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
WEEK = 7 * 24 * 3600.0
PATIENT_RETRIES = 6  # ~5 s of backoff; longer outages restart the worker
_DECADE_MS = 10 * 365 * 24 * 3600 * 1000
# Every band starts in the past (arq takes only scores up to now), far enough that a caller's
# place in fair sharing (`FAIR_FUNCTION`) never reaches the present.
PRIORITY_HEAD_START = {
    Priority.HIGH: 2 * _DECADE_MS,
    Priority.NORMAL: _DECADE_MS,
    Priority.LOW: _DECADE_MS // 10,
}


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


# Queue an arq job from inside a script, as arq's `enqueue_job` does: unless arq still holds that
# id (queued, running or its result kept), store its payload for a while and queue its id.
ENQUEUE_FUNCTION = f"""
local function enqueue(queue, arq_id, payload, keep_ms, score)
  local held = redis.call(
    'EXISTS', '{redis_keys.ARQ_JOB}' .. arq_id, '{redis_keys.ARQ_RESULT}' .. arq_id)
  if held > 0 then return 0 end
  redis.call('PSETEX', '{redis_keys.ARQ_JOB}' .. arq_id, keep_ms, payload)
  redis.call('ZADD', queue, score, arq_id)
  return 1
end
"""
TASK_KEEP_MS = 24 * 3600 * 1000  # arq's own default for a job nobody has picked up

# Fair sharing between callers (start-time fair queueing): each caller has a place in virtual
# time that every job it queues moves FAIR_STEP_MS on, and a job is scored from its caller's
# place, not from the clock. A caller who queues 400 jobs at once runs them one after another
# as before, but a job from a caller with none waiting is scored now, ahead of the 399. The
# bands of priority stay decades apart, so a score stays in the past: arq takes it at once.
FAIR_STEP_MS = 1000
FAIR_FUNCTION = f"""
local function fair_score(owner, score, head_start)
  local now = tonumber(score) + tonumber(head_start)
  local place = tonumber(redis.call('HGET', '{redis_keys.FAIR}', owner) or '0')
  if place < now then place = now end
  redis.call('HSET', '{redis_keys.FAIR}', owner, string.format('%d', place + {FAIR_STEP_MS}))
  return string.format('%d', place - tonumber(head_start))
end
"""


@dataclass(frozen=True)
class Entry:
    """An arq job as `ENQUEUE_FUNCTION` stores it: `payload` for `keep_ms`, `arq_id` queued at
    `score` (arq takes the lowest score first)."""

    arq_id: str
    payload: bytes
    keep_ms: int
    score: int

    def plan(self) -> list[str]:
        """The arguments of `enqueue` after the queue, as a script's JSON plan carries them."""
        return [self.arq_id, self.payload.decode(), str(self.keep_ms), str(self.score)]


def run_entry(job_id: str, *, run: int, priority: Priority, keep: float) -> Entry:
    """One run of a job. arq scores by time; a priority moves the score years into the past,
    so every high job comes before every normal one, and normal before low, each in the order
    they came."""
    now_ms = int(time.time() * 1000)
    payload = serialize_job(
        redis_keys.PROCESS_JOB, (job_id,), {}, None, now_ms, serializer=serialize
    )
    return Entry(
        arq_id=redis_keys.arq_job_id(job_id, run),
        payload=payload,
        keep_ms=int(keep * 1000),
        score=now_ms - PRIORITY_HEAD_START[priority],
    )


def task_payload(function: str, job_id: str) -> tuple[bytes, int]:
    """What queues a job's callback or e-mail: arq's payload, and the score (now, in ms)."""
    now_ms = int(time.time() * 1000)
    return serialize_job(function, (job_id,), {}, None, now_ms, serializer=serialize), now_ms
