"""Counters and gauges for /v1/status and /metrics, kept in Redis so every process adds to
the same figures: jobs by outcome, pages read, page latency, workers alive, queue depth."""

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Awaitable, Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ocrflow.handlers.jobs import redis_keys
from ocrflow.handlers.jobs.queue import PRIORITY_HEAD_START
from ocrflow.handlers.jobs.records import Priority
from ocrflow.pipeline.result import PageResult

WORKER_TTL = 30
PAGE_BUCKETS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def count_job(redis: Redis, state: str) -> None:
    await redis.hincrby(redis_keys.STATS, f"jobs:{state}", 1)  # type: ignore[misc]


async def count_pages(redis: Redis, pages: Sequence[PageResult]) -> None:
    if not pages:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for page in pages:
            pipe.hincrby(redis_keys.STATS, f"pages:{page.method}", 1)
            pipe.hincrbyfloat(redis_keys.STATS, "page_seconds:sum", page.seconds)
            bucket = next((b for b in PAGE_BUCKETS if page.seconds <= b), "+Inf")
            pipe.hincrby(redis_keys.STATS, f"page_seconds:le:{bucket}", 1)
        await pipe.execute()


async def heartbeat(redis: Redis, *, running: int, pool_processes: int, started: float) -> None:
    beat = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "running": running,
        "pool_processes": pool_processes,
        "started": started,
        "seen": time.time(),
    }
    await redis.set(redis_keys.WORKER_PREFIX + worker_name(), json.dumps(beat), ex=WORKER_TTL)


async def workers(redis: Redis) -> list[dict[str, Any]]:
    names = [
        name async for name in redis.scan_iter(match=redis_keys.WORKER_PREFIX + "*", count=100)
    ]
    values = await redis.mget(names) if names else []
    return [json.loads(value) for value in values if value]


async def queue_depth(redis: Redis, queue_name: str) -> dict[str, int]:
    """Jobs waiting, by priority: each priority is a band of arq scores (see queue.py)."""
    now_ms = time.time() * 1000
    head = PRIORITY_HEAD_START
    high_band = now_ms - head[Priority.HIGH] + head[Priority.NORMAL] / 2
    normal_band = now_ms - head[Priority.NORMAL] / 2
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcount(queue_name, "-inf", high_band)
        pipe.zcount(queue_name, f"({high_band}", normal_band)
        pipe.zcount(queue_name, f"({normal_band}", "+inf")
        high, normal, low = await pipe.execute()
    return {Priority.HIGH: int(high), Priority.NORMAL: int(normal), Priority.LOW: int(low)}


async def snapshot(redis: Redis, queue_name: str) -> dict[str, Any]:
    raw = await cast(Awaitable[dict[bytes, bytes]], redis.hgetall(redis_keys.STATS))
    counters = {k.decode(): float(v) for k, v in raw.items()}
    running = await cast(Awaitable[int], redis.hlen(redis_keys.RUNNING))
    return {
        "workers": await workers(redis),
        "queue": await queue_depth(redis, queue_name),
        "running": running,
        "jobs": _group(counters, "jobs:"),
        "pages": _group(counters, "pages:"),
        "page_seconds": {k: v for k, v in counters.items() if k.startswith("page_seconds:")},
    }


def _group(counters: dict[str, float], prefix: str) -> dict[str, int]:
    return {k.removeprefix(prefix): int(v) for k, v in counters.items() if k.startswith(prefix)}


async def beat_forever(redis: Redis, *, running: "set[str]", pool_processes: int) -> None:
    started = time.time()
    while True:
        # The reaper and arq report a lost Redis; a missed beat only ages out.
        with contextlib.suppress(RedisError, OSError):
            await heartbeat(
                redis, running=len(running), pool_processes=pool_processes, started=started
            )
        await asyncio.sleep(WORKER_TTL / 3)


def prometheus(status: dict[str, Any], sse_clients: int) -> str:
    lines = [
        "# HELP ocrflow_jobs_total Jobs by state reached (accepted, then an ending).",
        "# TYPE ocrflow_jobs_total counter",
        *(f'ocrflow_jobs_total{{state="{s}"}} {n}' for s, n in sorted(status["jobs"].items())),
        "# HELP ocrflow_pages_total Pages read, by method.",
        "# TYPE ocrflow_pages_total counter",
        *(f'ocrflow_pages_total{{method="{m}"}} {n}' for m, n in sorted(status["pages"].items())),
        "# HELP ocrflow_page_seconds Time to read one page.",
        "# TYPE ocrflow_page_seconds histogram",
        *_histogram(status["page_seconds"]),
        "# HELP ocrflow_queue_depth Jobs waiting, by priority.",
        "# TYPE ocrflow_queue_depth gauge",
        *(f'ocrflow_queue_depth{{priority="{p}"}} {n}' for p, n in status["queue"].items()),
        "# TYPE ocrflow_jobs_running gauge",
        f"ocrflow_jobs_running {status['running']}",
        "# TYPE ocrflow_workers gauge",
        f"ocrflow_workers {len(status['workers'])}",
        "# HELP ocrflow_sse_clients Event streams open on this ingress process.",
        "# TYPE ocrflow_sse_clients gauge",
        f"ocrflow_sse_clients {sse_clients}",
    ]
    return "\n".join(lines) + "\n"


def _histogram(figures: dict[str, float]) -> list[str]:
    lines, cumulative = [], 0.0
    for bound in (*PAGE_BUCKETS, "+Inf"):
        cumulative += figures.get(f"page_seconds:le:{bound}", 0)
        lines.append(f'ocrflow_page_seconds_bucket{{le="{bound}"}} {int(cumulative)}')
    lines.append(f"ocrflow_page_seconds_sum {figures.get('page_seconds:sum', 0.0):.3f}")
    lines.append(f"ocrflow_page_seconds_count {int(cumulative)}")
    return lines
