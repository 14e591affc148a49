"""Counters and gauges for /v1/status and /metrics, kept in Redis so every process adds to
the same figures: jobs by outcome, pages read, page latency, workers alive (from their
heartbeats), queue depth."""

import json
import time
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, cast

from redis.asyncio import Redis

from ocrflow.jobs import redis_keys
from ocrflow.jobs.queue import PRIORITY_HEAD_START
from ocrflow.jobs.records import Priority, created_ms
from ocrflow.pipeline.result import PageResult

PAGE_BUCKETS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)


async def count_job(redis: Redis, state: str) -> None:
    await redis.hincrby(redis_keys.STATS, f"jobs:{state}", 1)  # type: ignore[misc]


async def count_pages(redis: Redis, pages: Sequence[PageResult]) -> None:
    if not pages:
        return
    async with redis.pipeline(transaction=False) as pipe:
        minute = redis_keys.throughput_key(int(time.time() // 60))
        pipe.hincrby(minute, "pages", len(pages))
        pipe.expire(minute, redis_keys.THROUGHPUT_KEEP)
        for page in pages:
            pipe.hincrby(redis_keys.STATS, f"pages:{page.method}", 1)
            pipe.hincrbyfloat(redis_keys.STATS, "page_seconds:sum", page.seconds)
            bucket = next((b for b in PAGE_BUCKETS if page.seconds <= b), "+Inf")
            pipe.hincrby(redis_keys.STATS, f"page_seconds:le:{bucket}", 1)
        await pipe.execute()


async def count_checks(redis: Redis, passed: bool) -> None:
    """A job's `validate` verdict: counted since the start, and in this minute's figures."""
    verdict = "passed" if passed else "failed"
    async with redis.pipeline(transaction=False) as pipe:
        minute = redis_keys.throughput_key(int(time.time() // 60))
        pipe.hincrby(redis_keys.STATS, f"checks:{verdict}", 1)
        pipe.hincrby(minute, f"checks_{verdict}", 1)
        pipe.expire(minute, redis_keys.THROUGHPUT_KEEP)
        await pipe.execute()


async def workers(redis: Redis) -> list[dict[str, Any]]:
    names = [
        name async for name in redis.scan_iter(match=redis_keys.WORKER_PREFIX + "*", count=100)
    ]
    values = await redis.mget(names) if names else []
    return [json.loads(value) for value in values if value]


# Waiting units by priority band: arq keeps a unit in its queue while a worker runs it (it leaves
# only when it ends), so those with arq's in-progress key are running, not waiting.
_WAITING = """
local high, normal = tonumber(ARGV[1]), tonumber(ARGV[2])
local counts = {0, 0, 0}
local queued = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #queued, 2 do
  if redis.call('EXISTS', ARGV[3] .. queued[i]) == 0 then
    local score = tonumber(queued[i + 1])
    local band = score <= high and 1 or (score <= normal and 2 or 3)
    counts[band] = counts[band] + 1
  end
end
return counts
"""


async def queue_depth(redis: Redis, queue_name: str) -> dict[str, int]:
    """Units waiting for a worker, by priority: each priority is a band of arq scores (see
    queue.py); a unit a worker has taken is running, not waiting."""
    now_ms = time.time() * 1000
    head = PRIORITY_HEAD_START
    high_band = now_ms - head[Priority.HIGH] + head[Priority.NORMAL] / 2
    normal_band = now_ms - head[Priority.NORMAL] / 2
    bands = (f"{high_band:.0f}", f"{normal_band:.0f}")
    counts = await cast(
        Awaitable[list[int]],
        redis.eval(_WAITING, 1, queue_name, *bands, redis_keys.ARQ_IN_PROGRESS),
    )
    high, normal, low = counts
    return {Priority.HIGH: int(high), Priority.NORMAL: int(normal), Priority.LOW: int(low)}


async def snapshot(redis: Redis, queue_name: str) -> dict[str, Any]:
    raw = await cast(Awaitable[dict[bytes, bytes]], redis.hgetall(redis_keys.STATS))
    counters = {k.decode(): float(v) for k, v in raw.items()}
    running = await cast(Awaitable[int], redis.hlen(redis_keys.RUNNING))
    queue = await queue_depth(redis, queue_name)
    return {
        "workers": await workers(redis),
        "queue": queue,
        "running": running,
        # What an autoscaler scales workers on: units of work (a job's run, a range of a large
        # document's pages, a merge) waiting and under way; a unit is counted once, as one or
        # the other.
        "units": {"queued": sum(queue.values()), "running": running},
        "jobs": _group(counters, "jobs:"),
        "pages": _group(counters, "pages:"),
        "checks": _group(counters, "checks:"),  # validate's verdicts: passed, failed
        "page_seconds": page_seconds(counters),
    }


async def throughput(redis: Redis, minutes: int = 60) -> list[dict[str, Any]]:
    """The last `minutes` minutes, oldest first: jobs ended by state, and pages read."""
    now = int(time.time() // 60)
    span = range(now - minutes + 1, now + 1)
    async with redis.pipeline(transaction=False) as pipe:
        for minute in span:
            pipe.hgetall(redis_keys.throughput_key(minute))
        counts = await pipe.execute()
    return [
        {"minute": minute * 60} | {k.decode(): int(v) for k, v in raw.items()}
        for minute, raw in zip(span, counts, strict=True)
    ]


async def oldest_waiting(redis: Redis) -> float | None:
    """Seconds the oldest queued job has waited since it was submitted (job ids tell when)."""
    queued = await cast(Awaitable[list[bytes]], redis.hkeys(redis_keys.QUEUED))
    if not queued:
        return None
    oldest = min(created_ms(job_id.decode()) for job_id in queued)
    return round(max(0.0, time.time() - oldest / 1000), 1)


def _group(counters: dict[str, float], prefix: str) -> dict[str, int]:
    return {k.removeprefix(prefix): int(v) for k, v in counters.items() if k.startswith(prefix)}


def page_seconds(counters: dict[str, float]) -> dict[str, Any]:
    """The page-time histogram: how many pages took at most each bound (cumulative, in order
    of the bounds), how many in all, and their total seconds."""
    buckets, cumulative = [], 0
    for bound in (*PAGE_BUCKETS, "+Inf"):
        cumulative += int(counters.get(f"page_seconds:le:{bound}", 0))
        buckets.append({"le": bound, "pages": cumulative})
    total = round(counters.get("page_seconds:sum", 0.0), 3)
    return {"pages": cumulative, "seconds": total, "buckets": buckets}


def prometheus(status: dict[str, Any], sse_clients: int) -> str:
    def metric(name: str, kind: str, about: str, samples: Iterable[str]) -> list[str]:
        return [f"# HELP {name} {about}", f"# TYPE {name} {kind}", *samples]

    jobs, pages, queue = status["jobs"], status["pages"], status["queue"]
    lines = [
        *metric(
            "ocrflow_jobs_total",
            "counter",
            "Jobs by state reached (accepted, or accepted again by a retry; then an ending).",
            (f'ocrflow_jobs_total{{state="{s}"}} {n}' for s, n in sorted(jobs.items())),
        ),
        *metric(
            "ocrflow_checks_total",
            "counter",
            "Jobs whose validate handler passed or failed them.",
            (
                f'ocrflow_checks_total{{verdict="{v}"}} {n}'
                for v, n in sorted(status["checks"].items())
            ),
        ),
        *metric(
            "ocrflow_pages_total",
            "counter",
            "Pages read, by method.",
            (f'ocrflow_pages_total{{method="{m}"}} {n}' for m, n in sorted(pages.items())),
        ),
        *metric(
            "ocrflow_page_seconds",
            "histogram",
            "Time to read one page.",
            _histogram(status["page_seconds"]),
        ),
        *metric(
            "ocrflow_queue_depth",
            "gauge",
            "Jobs waiting, by priority.",
            (f'ocrflow_queue_depth{{priority="{p}"}} {n}' for p, n in queue.items()),
        ),
        *metric(
            "ocrflow_jobs_running",
            "gauge",
            "Units of work under way on all workers (the same as ocrflow_units_running).",
            [f"ocrflow_jobs_running {status['running']}"],
        ),
        *metric(
            "ocrflow_units_queued",
            "gauge",
            "Units of work waiting (runs, ranges of large documents, merges): scale on this.",
            [f"ocrflow_units_queued {status['units']['queued']}"],
        ),
        *metric(
            "ocrflow_units_running",
            "gauge",
            "Units of work under way on all workers.",
            [f"ocrflow_units_running {status['units']['running']}"],
        ),
        *metric(
            "ocrflow_workers",
            "gauge",
            "Workers heard from in the last 30 seconds.",
            [f"ocrflow_workers {len(status['workers'])}"],
        ),
        *metric(
            "ocrflow_sse_clients",
            "gauge",
            "Event streams open on this ingress process.",
            [f"ocrflow_sse_clients {sse_clients}"],
        ),
    ]
    return "\n".join(lines) + "\n"


def _histogram(figures: dict[str, Any]) -> list[str]:
    lines = [
        f'ocrflow_page_seconds_bucket{{le="{bucket["le"]}"}} {bucket["pages"]}'
        for bucket in figures["buckets"]
    ]
    lines.append(f"ocrflow_page_seconds_sum {figures['seconds']:.3f}")
    lines.append(f"ocrflow_page_seconds_count {figures['pages']}")
    return lines
