"""One pub/sub connection per ingress process, fanned out in memory to every SSE client."""

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.jobs import redis_keys
from ocrflow.jobs.events import Event, decode_event
from ocrflow.runtime.tasks import Supervised

log = logging.getLogger(__name__)

# What a subscription may receive besides events: replay from the stream (the listener was
# reconnected, or the client fell behind), or stop (the server is shutting down).
Signal = Literal["resync", "closed"]
QUEUE_LIMIT = 512
STREAMS_RETRY_AFTER = 10
RECONNECT_DELAY = (0.1, 5.0)


class Subscription:
    """One listener's pending events. Deliberately small: an ingress holds thousands."""

    __slots__ = ("_behind", "_items", "_waiter", "job_id")

    def __init__(self, job_id: str | None) -> None:
        self.job_id = job_id
        self._items: list[Event | Signal] = []
        self._waiter: asyncio.Future[None] | None = None
        self._behind = False

    def offer(self, item: Event | Signal) -> None:
        if item != "closed":
            if self._behind:
                return  # it will replay everything from the stream once it catches up
            if len(self._items) >= QUEUE_LIMIT:
                self._behind = True
                return
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self) -> Event | Signal:
        while not self._items:
            if self._behind:
                self._behind = False
                return "resync"
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


EVERYONE = "**"  # the topic of operators' feeds: every caller's events (no owner is "*")


def _all_of(owner: str) -> str:
    return "*" + owner  # job ids start with "j_", so no topic is both


class EventHub:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._subscriptions: dict[str, set[Subscription]] = {}  # by job id, or _all_of(owner)
        self._streams: Counter[str] = Counter()  # open subscriptions by owner
        self._listener = Supervised("event-listener", self._listen)
        self._ready = asyncio.Event()
        self.dropped = 0  # messages that could not be read

    def health(self) -> dict[str, Any]:
        return {"listener": self._listener.health.as_dict(), "dropped_messages": self.dropped}

    @property
    def clients(self) -> int:
        return sum(len(subs) for subs in self._subscriptions.values())

    async def start(self) -> None:
        self._listener.start()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._ready.wait()

    async def stop(self) -> None:
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                subscription.offer("closed")
        await self._listener.stop()

    @contextlib.contextmanager
    def subscribe(
        self, job_id: str | None, owner: str, *, most: int = 0, everyone: bool = False
    ) -> Iterator[Subscription]:
        """Events of one job (or, for None, of all `owner`'s jobs; with `everyone`, of every
        caller's) while the block runs; with `most`, refused (`too_many_streams`) when `owner`
        holds that many already."""
        if most and self._streams[owner] >= most:
            raise OcrflowError(
                ErrorCode.TOO_MANY_STREAMS,
                f"{most} event streams of yours are open here; close one first",
                retry_after=STREAMS_RETRY_AFTER,
            )
        subscription = Subscription(job_id)
        topic = EVERYONE if everyone else job_id or _all_of(owner)
        self._subscriptions.setdefault(topic, set()).add(subscription)
        self._streams[owner] += 1
        try:
            yield subscription
        finally:
            self._streams[owner] -= 1
            if not self._streams[owner]:
                del self._streams[owner]
            subscribers = self._subscriptions.get(topic, set())
            subscribers.discard(subscription)
            if not subscribers:
                self._subscriptions.pop(topic, None)

    async def _listen(self) -> None:
        delay = RECONNECT_DELAY[0]
        while True:
            try:
                async for message in self._messages():
                    delay = RECONNECT_DELAY[0]
                    self._dispatch_one(message)
            except (RedisError, OSError) as exc:
                log.warning("event listener lost Redis (%s); reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_DELAY[1])

    async def _messages(self) -> AsyncIterator[bytes]:
        async with self._redis.pubsub() as pubsub:
            await pubsub.subscribe(redis_keys.EVENTS_CHANNEL)
            # Whatever was published while we were not listening is in the streams.
            self._broadcast("resync")
            self._ready.set()
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=30)
                if message and message["type"] == "message":
                    yield message["data"]

    def _broadcast(self, signal: Signal) -> None:
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                subscription.offer(signal)

    def _dispatch_one(self, message: bytes) -> None:
        """A message that cannot be read (not ocrflow's, or damaged) is logged and dropped: the
        streams stay the truth, and the listener goes on."""
        try:
            self._dispatch(message)
        except (ValueError, KeyError, TypeError) as exc:  # JSON and UTF-8 errors are ValueErrors
            self.dropped += 1
            log.warning("event listener dropped an unreadable message (%s): %r", exc, message[:200])

    def _dispatch(self, message: bytes) -> None:
        ids, owner, raw = message.decode().split("\n", 2)
        job_stream_id, all_stream_id = ids.split(" ")
        event = decode_event(job_stream_id, raw)
        for subscription in self._subscriptions.get(event.job_id, ()):
            subscription.offer(event)
        for subscription in self._subscriptions.get(EVERYONE, ()):
            subscription.offer(event)
        everyone = self._subscriptions.get(_all_of(json.loads(owner)))
        if everyone:
            as_all = decode_event(all_stream_id, raw)
            for subscription in everyone:
                subscription.offer(as_all)
