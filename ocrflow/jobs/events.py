"""Job events: appended to a capped Redis Stream per job (and one for all jobs), announced on
pub/sub. The streams are the record a late or returning listener replays; pub/sub only wakes."""

import json
import re
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from redis.asyncio import Redis

from ocrflow.jobs import redis_keys
from ocrflow.jobs.records import JobState


class EventKind(StrEnum):
    STATE = "state"  # queued (again) or running
    PROGRESS = "progress"
    PAGE = "page"
    HANDLER = "handler"  # a handler started, progressed, or ended
    DONE = "done"  # the job's last event, one of these three
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in _ENDINGS.values()

    @classmethod
    def ending(cls, state: JobState) -> "EventKind":
        """The event a job's feed ends with when it reaches `state` (a terminal one)."""
        return _ENDINGS[state]


_ENDINGS = {
    JobState.SUCCEEDED: EventKind.DONE,
    JobState.FAILED: EventKind.FAILED,
    JobState.CANCELLED: EventKind.CANCELLED,
}
PER_JOB_EVENTS = 2000  # a 500-page job sends ~2 events a page, plus its states
PER_OWNER_EVENTS = 10_000  # the feed of all of one caller's jobs
REPLAY_PAGE = 500  # events read at a time; a fresh feed of all jobs starts this far back

# XADD to the job's stream and to its owner's stream (the owner read from the job's record: the
# feed of all a caller's jobs reads only that caller's events), keep them short-lived and
# capped, and announce both ids in one message, atomically: no listener sees an event the
# streams lack. The message is "<job stream id> <owner stream id>\n<owner JSON>\n<event JSON>".
# A Lua function, so the scripts that accept a job or change its state announce it in the same
# call. (The owner's stream key is made here, from the record: ocrflow runs on one Redis.)
PUBLISH_FUNCTION = f"""
local function publish(stream, channel, record, event, retention, per_job, per_owner)
  local owner = redis.call('HGET', record, 'owner') or '""'
  local owners = '{redis_keys.OWNER_EVENTS_PREFIX}' .. cjson.decode(owner)
  local job_id = redis.call('XADD', stream, 'MAXLEN', '~', per_job, '*', 'event', event)
  redis.call('EXPIRE', stream, retention)
  local owner_id = redis.call('XADD', owners, 'MAXLEN', '~', per_owner, '*', 'event', event)
  redis.call('EXPIRE', owners, retention)
  redis.call('PUBLISH', channel, job_id .. ' ' .. owner_id .. '\\n' .. owner .. '\\n' .. event)
  return job_id
end
"""
_PUBLISH = (
    PUBLISH_FUNCTION
    + "return publish(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])"
)


@dataclass(frozen=True)
class Event:
    id: str  # the job stream's id (or the owner stream's, in the feed of all a caller's jobs)
    job_id: str
    kind: EventKind
    data: dict[str, Any]
    ts: float  # publish time, seconds since the epoch

    @property
    def terminal(self) -> bool:
        return self.kind.terminal

    def payload(self) -> str:
        return json.dumps({"job_id": self.job_id, "ts": self.ts, **self.data})


def stream_id(value: str) -> tuple[int, int]:
    """A stream id as a sortable pair; anything malformed sorts first."""
    millis, _, sequence = value.partition("-")
    try:
        return int(millis), int(sequence or 0)
    except ValueError:
        return (0, 0)


_STREAM_ID = re.compile(r"\d{1,20}(-\d{1,20})?")
_LAST_READABLE = (2**64 - 1, 2**64 - 2)  # Redis reads after ids up to this one


def is_stream_id(value: str) -> bool:
    """Whether `value` has the form of a stream id (`<ms>-<seq>`, or `<ms>` alone)."""
    return _STREAM_ID.fullmatch(value) is not None


def decode_event(event_id: str, raw: bytes | str) -> Event:
    body = json.loads(raw)
    return Event(
        id=event_id,
        job_id=body["job_id"],
        kind=EventKind(body["kind"]),
        data=body["data"],
        ts=body["ts"],
    )


class EventLog:
    """Publishing and replaying job events."""

    def __init__(self, redis: Redis, *, retention: int) -> None:
        self._redis = redis
        self._retention = retention
        self._publish = redis.register_script(_PUBLISH)

    async def publish(self, job_id: str, kind: EventKind, data: dict[str, Any]) -> str:
        raw = raw_event(job_id, kind, data)
        event_id = await self._publish(keys=self._keys(job_id), args=self._args(raw))
        return event_id.decode() if isinstance(event_id, bytes) else str(event_id)

    def publish_parts(
        self, job_id: str, kind: EventKind, data: dict[str, Any]
    ) -> tuple[list[str], list[str | int]]:
        """The keys and arguments of `publish(...)` in PUBLISH_FUNCTION, for a script that
        announces an event along with writes of its own."""
        return self._keys(job_id), self._args(raw_event(job_id, kind, data))

    async def publish_many(
        self, job_id: str, events: list[tuple[EventKind, dict[str, Any]]]
    ) -> None:
        """Several events of one job, in order, in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for kind, data in events:
                raw = raw_event(job_id, kind, data)
                await self._publish(keys=self._keys(job_id), args=self._args(raw), client=pipe)
            await pipe.execute()

    def _keys(self, job_id: str) -> list[str]:
        return [
            redis_keys.events_key(job_id),
            redis_keys.EVENTS_CHANNEL,
            redis_keys.job_key(job_id),
        ]

    def _args(self, raw: str) -> list[str | int]:
        return [raw, self._retention, PER_JOB_EVENTS, PER_OWNER_EVENTS]

    async def history(
        self, job_id: str | None, after: str | None, owner: str, *, since: str | None = None
    ) -> AsyncIterator[list[Event]]:
        """Events after `after` (exclusive) or from `since` (inclusive), of one job or of all
        `owner`'s jobs, a page at a time; with neither, all a job's kept events, or the latest
        page of the owner's."""
        key = redis_keys.events_key(job_id) if job_id else redis_keys.owner_events_key(owner)
        if after and stream_id(after) > _LAST_READABLE:
            return  # nothing can come after it
        if after and stream_id(after) != (0, 0):
            start = f"({after}"
        elif since or job_id:
            start = since or "-"
        else:
            start = await self._latest_page_start(key)
        while True:
            rows = await self._page(key, start)
            if rows:
                yield [decode_event(_text(event_id), fields[b"event"]) for event_id, fields in rows]
            if len(rows) < REPLAY_PAGE:
                return
            start = f"({_text(rows[-1][0])}"

    async def _page(self, key: str, start: str) -> list[Any]:
        reply = self._redis.xrange(key, min=start, max="+", count=REPLAY_PAGE)
        return await cast(Awaitable[list[Any]], reply)

    async def _latest_page_start(self, key: str) -> str:
        reply = self._redis.xrevrange(key, max="+", min="-", count=REPLAY_PAGE)
        rows = await cast(Awaitable[list[Any]], reply)
        return _text(rows[-1][0]) if rows else "-"


def raw_event(job_id: str, kind: EventKind, data: dict[str, Any]) -> str:
    return json.dumps({"job_id": job_id, "kind": kind, "data": data, "ts": time.time()})


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
