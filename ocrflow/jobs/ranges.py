"""A document read across workers: its recognition split into ranges of pages, each queued as a
unit any worker can run. No coordinator: each step is one script, and the range that ends last
queues the merge. A range's state (queued, done) and pages live in a hash beside the job."""

import json
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import cast

from arq.jobs import serialize_job
from redis.asyncio import Redis

from ocrflow.jobs import queue, redis_keys
from ocrflow.jobs.events import (
    PER_JOB_EVENTS,
    PER_OWNER_EVENTS,
    PUBLISH_FUNCTION,
)
from ocrflow.jobs.queue import ENQUEUE_FUNCTION, Entry, serialize
from ocrflow.jobs.records import Job
from ocrflow.settings import Settings

# Is this the job's current run, still running? (`run` is a record field: a JSON number.)
_CURRENT = """
local function current(record, run)
  local state, at = unpack(redis.call('HMGET', record, 'state', 'run'))
  return state == '"running"' and at == tostring(run)
end
"""

# KEYS: record, ranges, the queue. ARGV: the plan (JSON): run, the ranges (name, pages, arq
# entry), pages already read (the text layers'), retention.
_START = (
    ENQUEUE_FUNCTION
    + _CURRENT
    + """
local plan = cjson.decode(ARGV[1])
if not current(KEYS[1], plan.run) then return 0 end
-- This run queued its ranges already (it ran again after its worker died): they stand.
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
for _, r in ipairs(plan.ranges) do
  redis.call('HSET', KEYS[2], r.name, cjson.encode({state = 'queued', pages = r.pages}))
  enqueue(KEYS[3], r.entry[1], r.entry[2], r.entry[3], r.entry[4])
end
redis.call('EXPIRE', KEYS[2], plan.retention)
redis.call('HSET', KEYS[1], 'ranges_left', #plan.ranges, 'pages_read', plan.read)
return #plan.ranges
"""
)

# KEYS: record, the job's stream, the events channel. ARGV: the plan: run, pages just read,
# pages in all, and the event's time. Counts the pages and announces the job's progress.
_PROGRESS = (
    PUBLISH_FUNCTION
    + _CURRENT
    + """
local plan = cjson.decode(ARGV[1])
if not current(KEYS[1], plan.run) then return -1 end
local done = redis.call('HINCRBY', KEYS[1], 'pages_read', plan.read)
local fraction = math.floor(done / plan.total * 10000 + 0.5) / 10000
local progress = {stage = 'ocr', pages_done = done, pages_total = plan.total,
  fraction = fraction, message = 'page ' .. done .. '/' .. plan.total}
redis.call('HSET', KEYS[1], 'progress', cjson.encode(progress))
local event = cjson.encode({job_id = plan.job_id, kind = 'progress', data = progress, ts = plan.ts})
publish(KEYS[2], KEYS[3], KEYS[1], event, plan.retention, plan.per_job, plan.per_owner)
return done
"""
)

# KEYS: record, ranges, the queue. ARGV: the plan: run, the range's name, the merge's arq entry.
# Marks the range done once; the range that leaves none queues the merge.
_FINISH = (
    ENQUEUE_FUNCTION
    + _CURRENT
    + """
local plan = cjson.decode(ARGV[1])
if not current(KEYS[1], plan.run) then return -1 end
local raw = redis.call('HGET', KEYS[2], plan.name)
if not raw then return -1 end
local entry = cjson.decode(raw)
if entry.state ~= 'queued' then return -2 end
entry.state = 'done'
redis.call('HSET', KEYS[2], plan.name, cjson.encode(entry))
local left = redis.call('HINCRBY', KEYS[1], 'ranges_left', -1)
if left == 0 then enqueue(KEYS[3], plan.merge[1], plan.merge[2], plan.merge[3], plan.merge[4]) end
return left
"""
)


MERGE = "merge"  # the unit that merges the parts, named as a range is


@dataclass(frozen=True)
class Range:
    """A run of pages to recognise, named by its first and last: `5-12`."""

    pages: tuple[int, ...]

    @property
    def name(self) -> str:
        return f"{self.pages[0]}-{self.pages[-1]}"


def split(pages: Sequence[int], size: int) -> list[Range]:
    """`pages` (in order) in ranges of `size`, the last one the remainder."""
    return [Range(tuple(pages[at : at + size])) for at in range(0, len(pages), size)]


class Ranges:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis, self._settings = redis, settings
        self._start = redis.register_script(_START)
        self._progress = redis.register_script(_PROGRESS)
        self._finish = redis.register_script(_FINISH)

    async def start(self, job: Job, ranges: Sequence[Range], *, read: int) -> bool:
        """Queue every range of `job`'s current run (once: a run that runs again finds them
        queued); False when the run has moved on."""
        keep = self._settings.job_retention
        plan = {
            "run": job.run,
            "read": read,
            "retention": keep,
            "ranges": [
                {
                    "name": part.name,
                    "pages": list(part.pages),
                    "entry": self._entry(job, redis_keys.PROCESS_RANGE, part.name),
                }
                for part in ranges
            ],
        }
        keys = [redis_keys.job_key(job.id), redis_keys.ranges_key(job.id), self._queue]
        started = await cast(Awaitable[int], self._start(keys=keys, args=[json.dumps(plan)]))
        return int(started) != 0

    async def progress(self, job_id: str, run: int, read: int, total: int) -> bool:
        """Count `read` more pages of the run and announce it; False when it has stopped."""
        plan = {
            "job_id": job_id,
            "run": run,
            "read": read,
            "total": total,
            "ts": time.time(),
            "retention": self._settings.job_retention,
            "per_job": PER_JOB_EVENTS,
            "per_owner": PER_OWNER_EVENTS,
        }
        keys = [
            redis_keys.job_key(job_id),
            redis_keys.events_key(job_id),
            redis_keys.EVENTS_CHANNEL,
        ]
        done = await cast(Awaitable[int], self._progress(keys=keys, args=[json.dumps(plan)]))
        return int(done) >= 0

    async def finish(self, job: Job, name: str) -> int:
        """Mark range `name` done: how many are left (the one that leaves none has queued the
        merge), or less than 0 when the run has moved on or the range was done already."""
        plan = {
            "run": job.run,
            "name": name,
            "merge": self._entry(job, redis_keys.MERGE_JOB, MERGE),
        }
        keys = [redis_keys.job_key(job.id), redis_keys.ranges_key(job.id), self._queue]
        return int(await cast(Awaitable[int], self._finish(keys=keys, args=[json.dumps(plan)])))

    async def pages(self, job_id: str, name: str) -> tuple[int, ...] | None:
        """The pages of range `name`, if the job has it."""
        reply = self._redis.hget(redis_keys.ranges_key(job_id), name)
        raw = await cast(Awaitable[bytes | None], reply)
        return tuple(json.loads(raw)["pages"]) if raw else None

    async def names(self, job_id: str) -> list[str]:
        """The job's ranges, in page order."""
        raw = await cast(Awaitable[list[bytes]], self._redis.hkeys(redis_keys.ranges_key(job_id)))
        return sorted((name.decode() for name in raw), key=lambda name: int(name.split("-")[0]))

    async def requeue(self, job: Job, name: str) -> bool:
        """Queue unit `name` of the job's current run again (its arq entry was lost)."""
        function = redis_keys.MERGE_JOB if name == MERGE else redis_keys.PROCESS_RANGE
        arq_id, payload, keep_ms, score = self._entry(job, function, name)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(redis_keys.ARQ_JOB + arq_id, payload, px=int(keep_ms), nx=True)
            pipe.zadd(self._queue, {arq_id: int(score)})
            done = await pipe.execute()
        return bool(done[0])

    @property
    def _queue(self) -> str:
        return self._settings.queue_name

    def _entry(self, job: Job, function: str, name: str) -> list[str]:
        """The arq entry of a unit of `job`'s run (`function(job_id, run, name)`), in its
        priority's band."""
        now_ms = int(time.time() * 1000)
        args = (job.id, job.run, name)
        payload = serialize_job(function, args, {}, None, now_ms, serializer=serialize)
        return Entry(
            arq_id=redis_keys.range_arq_id(job.id, job.run, name),
            payload=payload,
            keep_ms=int(self._settings.job_retention * 1000),
            score=now_ms - queue.PRIORITY_HEAD_START[job.priority],
        ).plan()
