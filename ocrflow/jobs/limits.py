"""Per-caller request rate and active jobs, and the total backlog: over a limit, the request is
refused with a `Retry-After`, before anything is stored."""

import logging
import math
from collections.abc import Awaitable
from typing import cast

from redis.asyncio import Redis

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.jobs import redis_keys
from ocrflow.jobs.records import JobStore
from ocrflow.settings import Settings

log = logging.getLogger(__name__)

ACTIVE_RETRY_AFTER = 10
BACKLOG_RETRY_AFTER = 30

# GCRA: one key per caller holding the theoretical arrival time (µs). A request is allowed
# while that time is at most `tolerance` ahead of now; each allowed request moves it one
# interval on. Returns 0, or how many µs until a request would be allowed.
_RATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then return tat - tolerance - now end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
return 0
"""

# Whether one more active job for a caller is refused: 2 when the whole backlog is full, 1 when
# the caller is at its limit, else 0. A limit of 0 is no limit.
# Jobs admitted whose queue entry is not written yet (their source is being stored) count
# against the backlog too: otherwise submissions arriving together all see room for themselves.
# Admission lists them with the time; recording a job removes it; one that never recorded
# (its caller was told 503) stops counting after ADMITTING_MS.
ADMITTING_MS = 60_000
REFUSED_FUNCTION = f"""
local function refused(active, queue, most, backlog)
  most, backlog = tonumber(most), tonumber(backlog)
  if backlog > 0 then
    local now = redis.call('TIME')
    local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
    redis.call('ZREMRANGEBYSCORE', '{redis_keys.ADMITTING}', '-inf', now_ms - {ADMITTING_MS})
    local waiting = redis.call('ZCARD', queue) + redis.call('ZCARD', '{redis_keys.ADMITTING}')
    if waiting >= backlog then return 2 end
  end
  if most > 0 and redis.call('SCARD', active) >= most then return 1 end
  return 0
end
"""
# Admit one more active job for a caller: counted when not refused.
_ADMIT = (
    REFUSED_FUNCTION
    + """
local verdict = refused(KEYS[1], KEYS[2], ARGV[2], ARGV[3])
if verdict == 0 then redis.call('SADD', KEYS[1], ARGV[1]) end
return verdict
"""
)
CALLER_FULL, BACKLOG_FULL = 1, 2


class Limits:
    def __init__(self, redis: Redis, jobs: JobStore, settings: Settings) -> None:
        self._redis, self._jobs, self._settings = redis, jobs, settings
        self._rate = redis.register_script(_RATE)
        self._admit = redis.register_script(_ADMIT)

    async def check_rate(self, caller: str) -> None:
        """A known caller's request, under `OCRFLOW_RATE_LIMIT`."""
        settings = self._settings
        await self._check(redis_keys.RATE_PREFIX + caller, settings.rate_limit, settings.rate_burst)

    async def check_refused_rate(self, address: str) -> None:
        """A request refused for want of a valid key, under `OCRFLOW_REFUSED_RATE_LIMIT` per
        address: guessing keys, or flooding the service with requests it must refuse, gets a
        429 instead of more 401s."""
        rate = self._settings.refused_rate_limit
        await self._check(redis_keys.REFUSED_RATE_PREFIX + address, rate, max(1, int(rate * 2)))

    async def _check(self, key: str, rate: float, burst: int) -> None:
        if rate <= 0:
            return
        interval = 1_000_000 / rate
        tolerance = interval * (burst - 1)
        reply = self._rate(keys=[key], args=[int(interval), int(tolerance)])
        wait = await cast(Awaitable[int], reply)
        if wait:
            seconds = max(1, math.ceil(int(wait) / 1_000_000))
            raise OcrflowError(
                ErrorCode.RATE_LIMITED,
                f"more than {rate:g} requests a second (burst {burst})",
                retry_after=seconds,
            )

    async def admit(self, caller: str, job_id: str) -> None:
        """Count a job as active for its caller, or refuse it (429 at the caller's limit,
        503 when the queue as a whole is full)."""
        for attempt in range(2):
            verdict = await self._try_admit(caller, job_id)
            if verdict == 0:
                return
            if verdict == CALLER_FULL and attempt == 0 and await self.prune(caller):
                continue
            break
        raise self.refusal(verdict)

    def refusal(self, verdict: int) -> OcrflowError:
        """The error that tells a caller why its job was refused (a verdict of `refused`)."""
        if verdict == BACKLOG_FULL:
            return OcrflowError(
                ErrorCode.BACKLOG_FULL,
                "the queue is full; try again later",
                retry_after=BACKLOG_RETRY_AFTER,
            )
        most = self._settings.max_active_jobs_per_caller
        return OcrflowError(
            ErrorCode.TOO_MANY_ACTIVE_JOBS,
            f"{most} jobs of yours are queued or running; submit more as they finish",
            retry_after=ACTIVE_RETRY_AFTER,
        )

    async def _try_admit(self, caller: str, job_id: str) -> int:
        settings = self._settings
        args: list[str | int] = [job_id, settings.max_active_jobs_per_caller, settings.max_backlog]
        keys = [redis_keys.active_key(caller), settings.queue_name]
        return int(await cast(Awaitable[int], self._admit(keys=keys, args=args)))

    async def prune(self, caller: str) -> bool:
        """Drop members whose job has ended or expired (a release that never happened)."""
        raw = await self._redis.smembers(redis_keys.active_key(caller))  # type: ignore[misc]
        members = [m.decode() for m in raw]
        jobs = await self._jobs.get_many(members)
        stale = [m for m, j in zip(members, jobs, strict=True) if j is None or j.state.terminal]
        if stale:
            log.info("caller %s: %d ended jobs were still counted as active", caller, len(stale))
            await self._redis.srem(redis_keys.active_key(caller), *stale)  # type: ignore[misc]
        return bool(stale)

    async def release(self, caller: str, job_id: str) -> None:
        """Give back an admitted job's place: it was not accepted after all."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.srem(redis_keys.active_key(caller), job_id)
            pipe.zrem(redis_keys.ADMITTING, job_id)
            await pipe.execute()
