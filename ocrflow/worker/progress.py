"""What a run announces as its pages finish: page events, the page counters, and the job's
progress (on its record for a whole run, on the shared range counters for a range)."""

from collections.abc import Sequence
from typing import Any

from ocrflow.jobs import redis_keys, stats
from ocrflow.jobs.events import EventKind
from ocrflow.jobs.records import Job, Progress
from ocrflow.jobs.services import Services
from ocrflow.pipeline.result import PageResult
from ocrflow.worker.outcomes import RUNNING_ONLY, JobStopped
from ocrflow.worker.recognition import PageCallback


def run_reporter(services: Services, job_id: str) -> PageCallback:
    """For a run that reads the whole document: its record's progress, then the events."""

    async def report(done: int, total: int, pages: Sequence[PageResult]) -> None:
        progress = Progress(
            stage="ocr",
            pages_done=done,
            pages_total=total,
            fraction=round(done / total, 4) if total else 0.0,
            message=f"page {done}/{total}",
        )
        if not await services.jobs.update(job_id, only_from=RUNNING_ONLY, progress=progress):
            raise JobStopped(job_id)
        await _announce(services, job_id, pages, (EventKind.PROGRESS, progress.model_dump()))

    return report


def range_reporter(services: Services, job: Job) -> PageCallback:
    """For a range of a split document: the events, then the job's shared page count."""
    total = job.progress.pages_total or 0

    async def report(done: int, count: int, pages: Sequence[PageResult]) -> None:
        if not pages:
            return
        fresh = await _first_told(services, job, pages)
        if fresh:
            await _announce(services, job.id, fresh)
        if not await services.ranges.progress(job.id, job.run, len(fresh), total):
            raise JobStopped(job.id)

    return report


async def _first_told(
    services: Services, job: Job, pages: Sequence[PageResult]
) -> list[PageResult]:
    """The pages not yet announced in this run: a range run again after its worker died reads
    its pages again, and each is told (and counted) once."""
    key = redis_keys.announced_key(job.id, job.run)
    async with services.redis.pipeline(transaction=False) as pipe:
        for page in pages:
            pipe.sadd(key, page.number)
        pipe.expire(key, int(services.settings.job_timeout) + 3600)
        *added, _ = await pipe.execute()
    return [page for page, new in zip(pages, added, strict=True) if new]


async def _announce(
    services: Services,
    job_id: str,
    pages: Sequence[PageResult],
    *more: tuple[EventKind, dict[str, Any]],
) -> None:
    await stats.count_pages(services.redis, pages)
    events = [(EventKind.PAGE, page.summary()) for page in pages]
    await services.events.publish_many(job_id, [*events, *more])
