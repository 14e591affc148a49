"""Moving a job between states, in one script: the record, the lists of queued and running
runs, the counters, the reuse claims and the caller's active jobs change, what follows is queued
(a run, a callback, an e-mail) and the change is announced, all of it or none. No listener sees
a state the record lacks, and no ending goes unannounced."""

import json
from collections.abc import Awaitable
from typing import Any, cast

from pydantic_core import to_jsonable_python
from redis.asyncio import Redis

from ocrflow.jobs import redis_keys
from ocrflow.jobs.events import (
    PER_JOB_EVENTS,
    PER_OWNER_EVENTS,
    PUBLISH_FUNCTION,
    EventKind,
    raw_event,
)
from ocrflow.jobs.queue import ENQUEUE_FUNCTION, TASK_KEEP_MS, Entry, task_payload
from ocrflow.jobs.records import TERMINAL, JobState, encode_fields
from ocrflow.settings import Settings

# Once a job has ended: queue its callback and e-mail (each once per run: arq refuses an id it
# still holds), give back its in-flight claim and its place among its caller's active jobs,
# and offer a success to the result cache. The record names the owner, run, callback, e-mail
# and reuse fingerprint (keys are built from them here: ocrflow runs on one Redis, not a
# cluster, as arq requires).
ENDED_FUNCTION = f"""
local function ended(record, queue, job_id, plan)
  local f = redis.call('HMGET', record, 'owner', 'run', 'callback_url', 'notify_email', 'reuse')
  local run = f[2] or '1'
  if plan.callback and f[3] and f[3] ~= 'null' then
    enqueue(queue, job_id .. ':callback:' .. run, plan.callback, {TASK_KEEP_MS}, plan.now)
  end
  if plan.email and f[4] and f[4] ~= 'null' then
    enqueue(queue, job_id .. ':email:' .. run, plan.email, {TASK_KEEP_MS}, plan.now)
  end
  if f[1] then redis.call('SREM', '{redis_keys.ACTIVE_PREFIX}' .. cjson.decode(f[1]), job_id) end
  local clock = redis.call('TIME')
  local minute = '{redis_keys.THROUGHPUT_PREFIX}' .. math.floor(tonumber(clock[1]) / 60)
  redis.call('HINCRBY', minute, plan.state, 1)
  redis.call('EXPIRE', minute, {redis_keys.THROUGHPUT_KEEP})
  redis.call('DEL', '{redis_keys.RANGES_PREFIX}' .. job_id)
  if not f[5] then return end
  local reuse = cjson.decode(f[5])
  local claim = '{redis_keys.IN_FLIGHT_PREFIX}' .. reuse.fingerprint
  if redis.call('GET', claim) == job_id then redis.call('DEL', claim) end
  if plan.succeeded and reuse.cache and tonumber(plan.result_ttl) > 0 then
    local result = '{redis_keys.RESULT_PREFIX}' .. reuse.fingerprint
    redis.call('SET', result, job_id, 'EX', plan.result_ttl)
  end
end
"""

# KEYS: record, queued runs, counters, the arq queue, then publish()'s stream and channel.
# ARGV: the plan (JSON), then the record's new fields and values (the state among them).
# Returns the announcing event's id, or nil when the job is gone or in another state.
_TRANSITION = (
    PUBLISH_FUNCTION
    + ENQUEUE_FUNCTION
    + ENDED_FUNCTION
    + """
local plan = cjson.decode(ARGV[1])
local record, queued, job_id = KEYS[1], KEYS[2], plan.job_id
local current = redis.call('HGET', record, 'state')
if not current then return nil end
if #plan.from > 0 then
  local allowed = false
  for _, state in ipairs(plan.from) do
    if state == current then allowed = true end
  end
  if not allowed then return nil end
end
redis.call('HSET', record, unpack(ARGV, 2))
if plan.run then
  enqueue(KEYS[4], plan.run[1], plan.run[2], plan.run[3], plan.run[4])
  redis.call('HSET', queued, job_id, plan.run[1])
elseif plan.queued_as then
  redis.call('HSET', queued, job_id, plan.queued_as)
elseif plan.state ~= 'queued' then
  redis.call('HDEL', queued, job_id)
end
if plan.terminal then
  redis.call('EXPIRE', record, plan.retention)
  redis.call('HINCRBY', KEYS[3], 'jobs:' .. plan.state, 1)
  ended(record, KEYS[4], job_id, plan)
end
local event_id = publish(
  KEYS[5], KEYS[6], record, plan.event, plan.retention, plan.per_job, plan.per_owner)
if plan.starts_run then
  redis.call('HSET', record, 'events_from', cjson.encode(event_id))
  redis.call('HINCRBY', KEYS[3], 'jobs:accepted', 1)
end
return event_id
"""
)


class Transitions:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._settings = settings
        self._script = redis.register_script(_TRANSITION)

    async def apply(
        self,
        job_id: str,
        state: JobState,
        *,
        only_from: frozenset[JobState],
        note: dict[str, Any] | None = None,
        queued_as: str | None = None,
        enqueue: Entry | None = None,
        starts_run: bool = False,
        **fields: Any,
    ) -> bool:
        """Set the state (and fields) if the job is in one of `only_from`; False when it was
        not. Into `queued`, the run waiting is `enqueue` (queued here) or `queued_as` (an arq job
        that still holds it); `starts_run` marks this as where a new run's events begin."""
        plan = self._plan(job_id, state, only_from, note, fields)
        plan |= {"queued_as": queued_as, "starts_run": starts_run}
        if enqueue is not None:
            plan["run"] = enqueue.plan()
        values = encode_fields(to_jsonable_python({"state": state, **fields}))
        flat = [item for pair in values.items() for item in pair]
        script_keys = [
            redis_keys.job_key(job_id),
            redis_keys.QUEUED,
            redis_keys.STATS,
            self._settings.queue_name,
            redis_keys.events_key(job_id),
            redis_keys.EVENTS_CHANNEL,
        ]
        # Nothing null in the plan: Lua's JSON null is a value, and a true one.
        given = {name: value for name, value in plan.items() if value is not None}
        reply = self._script(keys=script_keys, args=[json.dumps(given), *flat])
        return await cast(Awaitable[bytes | None], reply) is not None

    def _plan(
        self,
        job_id: str,
        state: JobState,
        only_from: frozenset[JobState],
        note: dict[str, Any] | None,
        fields: dict[str, Any],
    ) -> dict[str, Any]:
        settings = self._settings
        terminal = state in TERMINAL
        kind = EventKind.ending(state) if terminal else EventKind.STATE
        data = {"state": state, **(note or {})}
        if terminal and fields.get("error") is not None:
            data["error"] = to_jsonable_python(fields["error"])
        plan: dict[str, Any] = {
            "job_id": job_id,
            "state": str(state),
            "from": [json.dumps(str(s)) for s in sorted(only_from)],
            "terminal": terminal,
            "event": raw_event(job_id, kind, data),
            "retention": str(settings.job_retention),
            "per_job": str(PER_JOB_EVENTS),
            "per_owner": str(PER_OWNER_EVENTS),
        }
        if terminal:
            plan |= ending_plan(settings, job_id, state)
        return plan


def ending_plan(settings: Settings, job_id: str, state: JobState) -> dict[str, Any]:
    """What `ENDED_FUNCTION` reads from a plan: the callback's and e-mail's arq payloads (no
    e-mail without a mail server), when, and what the result cache keeps of a success."""
    callback, now_ms = task_payload(redis_keys.SEND_CALLBACK, job_id)
    email, _ = task_payload(redis_keys.SEND_EMAIL, job_id)
    return {
        "state": str(state),
        "callback": callback.decode(),
        "email": email.decode() if settings.smtp_host else None,
        "now": str(now_ms),
        "succeeded": state is JobState.SUCCEEDED,
        "result_ttl": str(min(settings.result_cache_ttl, settings.job_retention)),
    }
