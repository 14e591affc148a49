"""A new job into Redis in two round trips: `claim` (the result cache, the in-flight claim and
the caller's limits, in one script) before its source is stored, `record` (record, queue,
announce and count, in another) after. Each script runs whole, so each step is all or nothing.
As three commands and a nine-command MULTI, the same work took four round trips and about a
fifth of the ingress's CPU in redis-py."""

import json
from collections.abc import Awaitable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, cast

from redis.asyncio import Redis

from ocrflow.jobs import queue, redis_keys
from ocrflow.jobs.events import (
    PER_JOB_EVENTS,
    PER_OWNER_EVENTS,
    PUBLISH_FUNCTION,
    EventKind,
    raw_event,
)
from ocrflow.jobs.idempotency import fingerprint
from ocrflow.jobs.limits import BACKLOG_FULL, CALLER_FULL, REFUSED_FUNCTION
from ocrflow.jobs.records import Job, JobState, record_fields
from ocrflow.jobs.transitions import ENDED_FUNCTION, ending_plan
from ocrflow.settings import Settings


class Verdict(IntEnum):
    ADMITTED = 0
    CALLER_FULL = CALLER_FULL
    BACKLOG_FULL = BACKLOG_FULL
    CACHED = 3  # an earlier job's result may answer it
    IN_FLIGHT = 4  # another job is reading the same content


@dataclass(frozen=True)
class Claim:
    verdict: Verdict
    other: str | None = None  # the earlier (CACHED) or other (IN_FLIGHT) job's id


# KEYS: result cache entry, in-flight claim, the caller's active jobs, the queue.
# ARGV: job id, claim TTL, caller limit, backlog limit, check the cache, check the claim.
# Looks before it writes: a refused job leaves nothing behind.
_CLAIM = (
    REFUSED_FUNCTION
    + f"""
if ARGV[5] == '1' then
  local cached = redis.call('GET', KEYS[1])
  if cached then return {{3, cached}} end
end
if ARGV[6] == '1' then
  local other = redis.call('GET', KEYS[2])
  if other then return {{4, other}} end
end
local verdict = refused(KEYS[3], KEYS[4], ARGV[3], ARGV[4])
if verdict ~= 0 then return {{verdict}} end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
local now = redis.call('TIME')
redis.call('ZADD', '{redis_keys.ADMITTING}', tonumber(now[1]) * 1000, ARGV[1])
return {{0}}
"""
)

# KEYS: record, owner's index, the queue, queued runs, counters, then publish()'s stream and
# channel. ARGV: the plan (JSON), then the record's fields and values. A job accepted for
# reading has its first run queued; one answered from the result cache has ended already.
_RECORD = (
    PUBLISH_FUNCTION
    + queue.ENQUEUE_FUNCTION
    + ENDED_FUNCTION
    + queue.FAIR_FUNCTION
    + f"""
local plan = cjson.decode(ARGV[1])
local record, job_id = KEYS[1], plan.job_id
redis.call('HSET', record, unpack(ARGV, 2))
redis.call('EXPIRE', record, plan.retention)
redis.call('ZADD', KEYS[2], 0, job_id)
redis.call('ZADD', '{redis_keys.RECENT_JOBS}', 0, job_id)
redis.call('ZREMRANGEBYRANK', '{redis_keys.RECENT_JOBS}', 0, -{redis_keys.RECENT_JOBS_KEPT + 1})
redis.call('ZREM', '{redis_keys.ADMITTING}', job_id)
redis.call('HINCRBY', KEYS[5], 'jobs:accepted', 1)
if plan.run then
  local owner = cjson.decode(redis.call('HGET', record, 'owner'))
  local score = fair_score(owner, plan.run[4], plan.head_start)
  enqueue(KEYS[3], plan.run[1], plan.run[2], plan.run[3], score)
  redis.call('HSET', KEYS[4], job_id, plan.run[1])
else
  redis.call('HINCRBY', KEYS[5], 'jobs:' .. plan.state, 1)
  ended(record, KEYS[3], job_id, plan)
end
publish(KEYS[6], KEYS[7], record, plan.event, plan.retention, plan.per_job, plan.per_owner)
return 1
"""
)


class Admission:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._settings = settings
        self._claim = redis.register_script(_CLAIM)
        self._record = redis.register_script(_RECORD)

    async def claim(self, job: Job, *, check_cache: bool, check_claim: bool) -> Claim:
        """Admit `job` under its caller's limits and claim its content as in flight; unless
        checking first finds an earlier result (when `check_cache`) or another job reading
        the content (when `check_claim`), or the limits refuse it."""
        settings = self._settings
        content = fingerprint(job)
        cache = check_cache and content.cacheable and settings.result_cache_ttl > 0
        script_keys = [
            content.result_key,
            content.in_flight_key,
            redis_keys.active_key(job.owner),
            settings.queue_name,
        ]
        args: list[str | int] = [
            job.id,
            settings.job_retention,
            settings.max_active_jobs_per_caller,
            settings.max_backlog,
            int(cache),
            int(check_claim),
        ]
        reply = await cast(Awaitable[list[int | bytes]], self._claim(script_keys, args))
        other = reply[1] if len(reply) > 1 else None
        return Claim(Verdict(int(reply[0])), other.decode() if isinstance(other, bytes) else None)

    async def record(self, job: Job) -> None:
        """Record a new job and announce it, counted as accepted: an admitted job queued for
        its first run, or one answered from the result cache (already succeeded), whose
        callback and e-mail are queued as any ending's are."""
        settings = self._settings
        keep = settings.job_retention
        plan: dict[str, Any] = {
            "job_id": job.id,
            "retention": str(keep),
            "per_job": str(PER_JOB_EVENTS),
            "per_owner": str(PER_OWNER_EVENTS),
        }
        if job.state is JobState.QUEUED:
            entry = queue.run_entry(job.id, run=job.run, priority=job.priority, keep=keep)
            plan["run"] = entry.plan()
            plan["head_start"] = str(queue.PRIORITY_HEAD_START[job.priority])
            plan["event"] = raw_event(job.id, EventKind.STATE, {"state": job.state})
        elif job.state is JobState.SUCCEEDED:
            plan |= ending_plan(settings, job.id, job.state)
            plan["event"] = raw_event(job.id, EventKind.ending(job.state), {"state": job.state})
        else:
            raise ValueError(f"a new job is queued or answered, not {job.state}")
        fields = record_fields(job) | {"reuse": fingerprint(job).record_field()}
        script_keys = [
            redis_keys.job_key(job.id),
            redis_keys.job_index(job.owner),
            settings.queue_name,
            redis_keys.QUEUED,
            redis_keys.STATS,
            redis_keys.events_key(job.id),
            redis_keys.EVENTS_CHANNEL,
        ]
        args = [json.dumps(plan), *(item for pair in fields.items() for item in pair)]
        await cast(Awaitable[int], self._record(script_keys, args))
