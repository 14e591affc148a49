"""One document across many workers. A run whose document has more pages to recognise than
OCRFLOW_FANOUT_PAGES keeps what its text layers answered as a part, queues its pages in ranges
and ends; any worker runs a range (its own lease, its own tries) and keeps its pages as a part;
the range that ends last queues the merge, which writes the outputs a part at a time and
records the job's end. The job stays `running` throughout, with one stream of events."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.jobs import redis_keys
from ocrflow.jobs.ranges import MERGE, split
from ocrflow.jobs.records import Job, JobError, JobState
from ocrflow.jobs.services import Services
from ocrflow.pipeline.document import Plan, inspect_document
from ocrflow.pipeline.errors import PipelineError
from ocrflow.pipeline.media import MediaType
from ocrflow.pipeline.parts import merge_parts, save_part
from ocrflow.runtime.logs import current_job
from ocrflow.runtime.memory import release_freed
from ocrflow.runtime.pool import OcrPool
from ocrflow.settings import Settings
from ocrflow.storage import layout
from ocrflow.worker.context import POOL, SERVICES
from ocrflow.worker.handlers import run_handlers
from ocrflow.worker.leases import Watch
from ocrflow.worker.outcomes import JobStopped, fail, store_outputs, store_previews, succeed
from ocrflow.worker.progress import range_reporter
from ocrflow.worker.recognition import Reading, recognize
from ocrflow.worker.retries import retry_or_fail, uncancel
from ocrflow.worker.scratch import fetch_source, scratch

log = logging.getLogger(__name__)

TEXT_PART = "text"


class FannedOut(Exception):
    """The run has queued its document's ranges: it ends here, and the job runs on."""


def worth_it(plan: Plan, settings: Settings) -> bool:
    return 0 < settings.fanout_pages < len(plan.tasks)


async def start(
    services: Services, pool: OcrPool, job: Job, plan: Plan, reading: Reading, workdir: Path
) -> None:
    """Keep the pages the text layers answered as a part, then queue the ranges."""
    part = await pool.run(save_part, reading.pages, workdir / "text.json")
    await _put_part(services, job, TEXT_PART, part)
    ranges = split([task.number for task in plan.tasks], services.settings.fanout_pages)
    if await services.ranges.start(job, ranges, read=len(reading.pages)):
        log.info(
            "job %s: %d pages to recognise, in %d ranges", job.id, len(plan.tasks), len(ranges)
        )


async def process_range(ctx: dict[str, Any], job_id: str, run: int, name: str) -> dict[str, str]:
    """The arq function: recognise one range of a job's pages and keep them as a part."""
    services: Services = ctx[SERVICES]
    job, pages = await _unit_of(services, job_id, run), await services.ranges.pages(job_id, name)
    if job is None or pages is None:
        return {"job_id": job_id, "range": name, "outcome": "skipped"}

    async def work(pool: OcrPool) -> None:
        await _read_range(services, pool, job, name, pages)
        await services.ranges.finish(job, name)

    return await _unit(ctx, services, job, name, work)


async def merge_job(ctx: dict[str, Any], job_id: str, run: int, name: str) -> dict[str, str]:
    """The arq function: every range has ended; write the outputs and end the job."""
    services: Services = ctx[SERVICES]
    job = await _unit_of(services, job_id, run)
    if job is None:
        return {"job_id": job_id, "range": MERGE, "outcome": "skipped"}

    async def work(pool: OcrPool) -> None:
        outputs = await _merge(services, pool, job)
        total = job.progress.pages_total or 0
        await succeed(services, job.id, outputs, total)
        await services.storage.delete_prefix(layout.parts_prefix(job.id))

    return await _unit(ctx, services, job, MERGE, work)


async def _unit_of(services: Services, job_id: str, run: int) -> Job | None:
    """The job, if `run` is its current one and it is still running."""
    current_job.set(job_id)
    job = await services.jobs.get(job_id)
    if job is None or job.state is not JobState.RUNNING or job.run != run:
        return None
    return job


async def _unit(
    ctx: dict[str, Any],
    services: Services,
    job: Job,
    name: str,
    work: Callable[[OcrPool], Awaitable[None]],
) -> dict[str, str]:
    """Run one unit of a job's run under its own lease, within what is left of the job's
    time: a cancel stops it, a fault is retried (this unit alone), bad input ends the job."""
    pool: OcrPool = ctx[POOL]
    unit, attempt = redis_keys.unit(job.id, name), ctx["job_try"]
    outcome = {"job_id": job.id, "range": name, "outcome": "done"}
    await Watch.claim(services, unit, ctx["job_id"])
    try:
        async with Watch(services, job.id, ctx["job_id"], pool, unit=unit, run=job.run) as watch:
            try:
                async with asyncio.timeout(_time_left(job, services.settings)):
                    await work(pool)
            except TimeoutError:
                pool.kill()
                message = f"the job took longer than {services.settings.job_timeout:g} s"
                await fail(services, job.id, JobError(code=ErrorCode.TIMEOUT, message=message))
                outcome["outcome"] = "failed"
            except JobStopped:
                pool.kill()
                outcome["outcome"] = "stopped"
            except asyncio.CancelledError:
                if not watch.stopped:
                    raise  # the worker is stopping: arq runs the unit again
                uncancel()
                outcome["outcome"] = "stopped"
            except (PipelineError, OcrflowError) as exc:
                await _retry_or_fail(services, job, name, attempt, exc)
                outcome["outcome"] = "failed"
            except Exception as exc:
                log.exception("job %s: %s failed", job.id, name)
                message = f"{type(exc).__name__}: {exc}"
                error = OcrflowError(ErrorCode.INTERNAL_ERROR, message, retryable=True)
                await _retry_or_fail(services, job, name, attempt, error)
                outcome["outcome"] = "failed"
    finally:
        release_freed()
    return outcome


def _time_left(job: Job, settings: Settings) -> float:
    """The job timeout covers the whole job: what is left of it since the job started."""
    started = job.started_at.timestamp() if job.started_at else time.time()
    return max(0.0, started + settings.job_timeout - time.time())


async def _retry_or_fail(
    services: Services, job: Job, name: str, attempt: int, exc: PipelineError | OcrflowError
) -> None:
    """A fault is tried again for this unit alone; bad input, or the last try, ends the job
    with the pages it concerns named."""
    where = "merging the pages" if name == MERGE else f"pages {name}"
    error = JobError(code=exc.code, message=f"{where}: {exc.message}", retryable=exc.retryable)
    await retry_or_fail(services, job.id, error, attempt, what=name)


async def _read_range(
    services: Services, pool: OcrPool, job: Job, name: str, pages: Sequence[int]
) -> None:
    async with scratch(services, job.id, name) as workdir:
        source = await fetch_source(services, job.id, workdir)
        runtime = services.settings.runtime
        media_type = MediaType(str(job.source.media_type))
        inspect = partial(inspect_document, source, media_type, workdir, job.options)
        plan = await pool.run(inspect, runtime)
        wanted = set(pages)
        tasks = [task for task in plan.tasks if task.number in wanted]
        reading = Reading(len(tasks), runtime, range_reporter(services, job))
        await recognize(pool, tasks, reading.finished)
        await store_previews(services, job.id, workdir)
        part = await pool.run(save_part, reading.pages, workdir / "part.json")
        await _put_part(services, job, name, part)


async def _merge(services: Services, pool: OcrPool, job: Job) -> dict[str, str]:
    async with scratch(services, job.id, MERGE) as workdir:
        source = await fetch_source(services, job.id, workdir)
        names = await services.ranges.names(job.id)
        parts = [await _get_part(services, job, part, workdir) for part in names]
        text = await _get_part(services, job, TEXT_PART, workdir)
        out_dir = workdir / "out"
        out_dir.mkdir()
        merge = partial(
            merge_parts,
            source=source,
            media_type=MediaType(str(job.source.media_type)),
            max_words=services.settings.max_document_words,
        )
        outputs = (*job.options.outputs, "json")  # the JSON result is always kept
        files = await pool.run(merge, text, parts, out_dir, outputs)
        stored = await store_outputs(services, job.id, files)
        deadline = time.time() + _time_left(job, services.settings)
        return stored | await run_handlers(services, job, files["json"], workdir, deadline)


async def _put_part(services: Services, job: Job, name: str, path: Path) -> None:
    key = layout.part_key(job.id, job.run, name)
    await services.storage.put_file(key, path, content_type="application/json", move=True)


async def _get_part(services: Services, job: Job, name: str, workdir: Path) -> Path:
    path = workdir / f"part-{name}.json"
    await services.storage.fetch(layout.part_key(job.id, job.run, name), path)
    return path
