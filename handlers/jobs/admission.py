"""A new job into Redis in two round trips: `claim` (the result cache, the in-flight claim and
the caller's limits, in one script) before its source is stored, `record` (record, queue,
announce and count, in another) after. Each script runs whole, so each step is all or nothing.
As three commands and a nine-command MULTI, the same work took four round trips and about a
fifth of the ingress's CPU in redis-py."""

from collections.abc import Awaitable
from dataclasses import dataclass
from enum import IntEnum
from typing import cast

from redis.asyncio import Redis

from ocrflow.handlers.jobs import queue
from ocrflow.handlers.jobs import redis_keys as keys
from ocrflow.handlers.jobs.events import PUBLISH_FUNCTION, EventLog
from ocrflow.handlers.jobs.limits import BACKLOG_FULL, CALLER_FULL, REFUSED_FUNCTION, active_key
from ocrflow.handlers.jobs.records import Job, JobState, record_fields
from ocrflow.handlers.jobs.reuse import Reuse
from ocrflow.handlers.jobs.stats import STATS
from ocrflow.handlers.settings import Settings


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
    + """
if ARGV[5] == '1' then
  local cached = redis.call('GET', KEYS[1])
  if cached then return {3, cached} end
end
if ARGV[6] == '1' then
  local other = redis.call('GET', KEYS[2])
  if other then return {4, other} end
end
local verdict = refused(KEYS[3], KEYS[4], ARGV[3], ARGV[4])
if verdict ~= 0 then return {verdict} end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
return {0}
"""
)

# KEYS: record, owner's index, arq job, queue, queued runs, stats, then publish()'s four.
# ARGV: job id, retention, arq id, arq payload, keep (ms), queue score, then publish()'s four,
# then the record's fields and values.
_RECORD = (
    PUBLISH_FUNCTION
    + """
redis.call('HSET', KEYS[1], unpack(ARGV, 11))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('PSETEX', KEYS[3], ARGV[5], ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[3])
redis.call('HSET', KEYS[5], ARGV[1], ARGV[3])
redis.call('HINCRBY', KEYS[6], 'jobs:accepted', 1)
publish(KEYS[7], KEYS[8], KEYS[9], KEYS[10], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
return 1
"""
)


class Admission:
    def __init__(self, redis: Redis, settings: Settings, reuse: Reuse, events: EventLog) -> None:
        self._settings, self._reuse, self._events = settings, reuse, events
        self._claim = redis.register_script(_CLAIM)
        self._record = redis.register_script(_RECORD)

    async def claim(self, job: Job, *, check_cache: bool, check_claim: bool) -> Claim:
        """Admit `job` under its caller's limits and claim its content as in flight; unless
        checking first finds an earlier result (when `check_cache`) or another job reading
        the content (when `check_claim`), or the limits refuse it."""
        settings = self._settings
        cached, in_flight = self._reuse.claim_keys(job)
        script_keys = [cached or "", in_flight, active_key(job.owner), settings.queue_name]
        args: list[str | int] = [
            job.id,
            self._reuse.in_flight_ttl,
            settings.max_active_jobs_per_caller,
            settings.max_backlog,
            int(check_cache and cached is not None),
            int(check_claim),
        ]
        reply = await cast(Awaitable[list[int | bytes]], self._claim(script_keys, args))
        other = reply[1] if len(reply) > 1 else None
        return Claim(Verdict(int(reply[0])), other.decode() if isinstance(other, bytes) else None)

    async def record(self, job: Job) -> None:
        """Record the admitted job, queue its first run, announce it queued and count it."""
        keep = self._settings.job_retention
        run = queue.first_run(job.id, priority=job.priority, keep=keep)
        event_keys, event_args = self._events.publish_parts(
            job.id, "state", {"state": JobState.QUEUED}
        )
        record = keys.job_key(job.id)
        script_keys = [
            record,
            keys.job_index(job.owner),
            run.key,
            self._settings.queue_name,
            keys.QUEUED,
            STATS,
            *event_keys,
        ]
        args: list[str | int | bytes] = [
            job.id,
            keep,
            run.arq_id,
            run.payload,
            run.keep_ms,
            run.score,
            *event_args,
        ]
        for name, value in record_fields(job).items():
            args += (name, value)
        await cast(Awaitable[int], self._record(script_keys, args))
