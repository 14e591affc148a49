"""Each worker says every few seconds that it is alive: what it runs, its pool, the health of
its background loops. A worker that stops saying so ages out of `/v1/status`."""

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ocrflow.jobs import redis_keys

WORKER_TTL = 30
MAX_JOBS_LISTED = 20
SOONEST = 0.5  # seconds between beats when what the worker runs keeps changing
_changed: asyncio.Event | None = None  # made by the running beat, in its own loop


def poke() -> None:
    """What this worker runs changed: say so with the next beat, within half a second."""
    if _changed is not None:
        _changed.set()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def heartbeat(
    redis: Redis,
    *,
    running: set[str],
    pool_processes: int,
    started: float,
    tasks: dict[str, dict[str, Any]],
) -> None:
    beat = {
        "name": worker_name(),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "running": len(running),
        "jobs": sorted(running)[:MAX_JOBS_LISTED],  # the jobs (or ranges) under way
        "pool_processes": pool_processes,
        "started": started,
        "seen": time.time(),
        "tasks": tasks,
    }
    await redis.set(redis_keys.WORKER_PREFIX + worker_name(), json.dumps(beat), ex=WORKER_TTL)


async def beat_forever(
    redis: Redis,
    *,
    running: set[str],
    pool_processes: int,
    tasks: Callable[[], dict[str, dict[str, Any]]],
) -> None:
    global _changed
    started = time.time()
    changed = _changed = asyncio.Event()
    try:
        while True:
            # The reaper and arq report a lost Redis; a missed beat only ages out.
            with contextlib.suppress(RedisError, OSError):
                await heartbeat(
                    redis,
                    running=running,
                    pool_processes=pool_processes,
                    started=started,
                    tasks=tasks(),
                )
            changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), WORKER_TTL / 3)
            await asyncio.sleep(SOONEST)
    finally:
        # A worker that stops says so at once; one that dies ages out.
        with contextlib.suppress(RedisError, OSError):
            await asyncio.shield(redis.delete(redis_keys.WORKER_PREFIX + worker_name()))
