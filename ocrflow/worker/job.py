"""One run of one job: its source fetched, its pages read on the pool, its outputs stored, its
progress announced, and its outcome recorded (or a retry asked of arq)."""

import asyncio
import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.jobs.records import (
    ACTIVE,
    Job,
    JobError,
    JobState,
    Progress,
    Source,
    now,
)
from ocrflow.jobs.services import Services
from ocrflow.pipeline.errors import PipelineError
from ocrflow.pipeline.media import MediaType
from ocrflow.pipeline.outputs import check_pages, write_outputs
from ocrflow.pipeline.result import PageResult
from ocrflow.runtime.logs import current_job
from ocrflow.runtime.memory import release_freed
from ocrflow.runtime.pool import OcrPool
from ocrflow.storage import layout
from ocrflow.worker import fanout
from ocrflow.worker.context import POOL, SERVICES
from ocrflow.worker.fetch import fetch_url
from ocrflow.worker.handlers import run_handlers
from ocrflow.worker.leases import Watch
from ocrflow.worker.outcomes import (
    RUNNING_ONLY,
    JobStopped,
    fail,
    store_outputs,
    store_previews,
    succeed,
)
from ocrflow.worker.progress import run_reporter
from ocrflow.worker.recognition import recognize, triage
from ocrflow.worker.retries import retry_or_fail, uncancel
from ocrflow.worker.scratch import fetch_source, scratch, source_path

log = logging.getLogger(__name__)

HANDED_BACK = "the worker stopped; the job will rerun"


async def process_job(ctx: dict[str, Any], job_id: str) -> dict[str, str]:
    """The arq function: one run of one job, ending in a recorded outcome or a retry."""
    services: Services = ctx[SERVICES]
    settings = services.settings
    attempt: int = ctx["job_try"]
    current_job.set(job_id)  # every log line of this run carries the job id
    job = await services.jobs.get(job_id)
    if job is None or job.state.terminal:
        return {"job_id": job_id, "outcome": "skipped"}
    if attempt > settings.job_max_tries:
        error = JobError(
            code=ErrorCode.TOO_MANY_ATTEMPTS, message=f"gave up after {attempt - 1} tries"
        )
        await fail(services, job_id, error, only_from=ACTIVE)
        return {"job_id": job_id, "outcome": "failed"}
    await Watch.claim(services, job_id, ctx["job_id"])
    started = await services.transitions.apply(
        job_id,
        JobState.RUNNING,
        only_from=ACTIVE,
        note={"attempt": attempt},
        attempt=attempt,
        started_at=now(),
        error=None,
        progress=Progress(stage="starting", message="starting"),
    )
    if not started:
        await Watch.release(services, job_id)
        return {"job_id": job_id, "outcome": "skipped"}
    log.info("run %d started: %s", attempt, job.source.filename)
    try:
        outcome = await _run(ctx, services, job, attempt)
    finally:
        release_freed()  # a large document's pages, freed, go back to the system
    log.info("run %d ended: %s", attempt, outcome["outcome"])
    return outcome


async def _run(ctx: dict[str, Any], services: Services, job: Job, attempt: int) -> dict[str, str]:
    settings, pool = services.settings, ctx[POOL]
    async with Watch(services, job.id, ctx["job_id"], pool) as watch:
        try:
            deadline = time.time() + settings.job_timeout
            async with asyncio.timeout(settings.job_timeout):
                outputs, page_count = await _ocr(services, pool, job, deadline)
        except TimeoutError:
            pool.kill()  # the pages still running belong to this job: stop them
            message = f"the job took longer than {settings.job_timeout:g} s"
            await fail(services, job.id, JobError(code=ErrorCode.TIMEOUT, message=message))
        except JobStopped:  # a page finished after a cancel, before the watch saw it
            pool.kill()
            return {"job_id": job.id, "outcome": "cancelled"}
        except fanout.FannedOut:  # its ranges run on, on any worker; the last queues the merge
            return {"job_id": job.id, "outcome": "fanned out"}
        except (PipelineError, OcrflowError) as exc:
            error = JobError(code=exc.code, message=exc.message, retryable=exc.retryable)
            await _retry_or_fail(services, job.id, ctx["job_id"], error, attempt)
        except asyncio.CancelledError:
            if watch.stopped:  # cancelled through the API; its work is already killed
                uncancel()
                return {"job_id": job.id, "outcome": "cancelled"}
            # Worker shutdown: hand the job back so the next run starts it afresh.
            await asyncio.shield(_requeue(services, job.id, ctx["job_id"], HANDED_BACK))
            raise
        except Exception as exc:
            log.exception("job %s: run %d failed", job.id, attempt)
            message = f"{type(exc).__name__}: {exc}"
            error = JobError(code=ErrorCode.INTERNAL_ERROR, message=message, retryable=True)
            await _retry_or_fail(services, job.id, ctx["job_id"], error, attempt)
        else:
            await succeed(services, job.id, outputs, page_count)
            return {"job_id": job.id, "outcome": "succeeded"}
    return {"job_id": job.id, "outcome": "failed"}


async def _ocr(
    services: Services, pool: OcrPool, job: Job, deadline: float
) -> tuple[dict[str, str], int]:
    """Fetch the source, read every page, store the outputs; returns output keys and pages."""
    settings = services.settings
    async with scratch(services, job.id) as workdir:
        source = source_path(workdir)
        job = await _get_source(services, job, workdir)
        media_type = MediaType(str(job.source.media_type))
        report = run_reporter(services, job.id)
        options, runtime = job.options, settings.runtime
        plan, reading = await triage(pool, source, media_type, workdir, options, runtime, report)
        if fanout.worth_it(plan, settings):
            await fanout.start(services, pool, job, plan, reading, workdir)
            raise fanout.FannedOut(job.id)
        await recognize(pool, plan.tasks, reading.finished)
        await store_previews(services, job.id, workdir)
        check_pages(reading.pages)
        pages = reading.in_order()
        stored = await _store_outputs(services, pool, job, pages, source, deadline)
        return stored, len(pages)


async def _get_source(services: Services, job: Job, workdir: Path) -> Job:
    """The job's document into `source_path(workdir)`: from storage, or (a URL's first run) from
    the web, then kept in storage so a rerun reads the same bytes."""
    if job.source.media_type is not None:
        await fetch_source(services, job.id, workdir)
        return job
    settings, dest = services.settings, source_path(workdir)
    fetched = await fetch_url(
        str(job.source.url),
        dest,
        max_bytes=settings.max_upload_bytes,
        allow_private=settings.allow_private_urls,
        timeout=settings.fetch_timeout,
    )
    await services.storage.put_file(
        layout.source_key(job.id), dest, content_type=fetched.media_type
    )
    fields = {"sha256": fetched.sha256, "bytes": fetched.size, "filename": fetched.filename}
    source = Source.model_validate(
        job.source.model_dump() | fields | {"media_type": fetched.media_type}
    )
    await services.jobs.update(job.id, source=source)
    return job.model_copy(update={"source": source})


async def _store_outputs(
    services: Services,
    pool: OcrPool,
    job: Job,
    pages: list[PageResult],
    source: Path,
    deadline: float,
) -> dict[str, str]:
    out_dir = source.parent / "out"
    out_dir.mkdir()
    # The JSON result is always kept: GET /v1/jobs/{id}/result serves it.
    names = (*job.options.outputs, "json")
    # Rendering outputs (a searchable PDF above all) is CPU work: keep it off the event loop.
    write = partial(write_outputs, source=source, media_type=MediaType(str(job.source.media_type)))
    files = await pool.run(write, pages, out_dir, names)
    stored = await store_outputs(services, job.id, files)
    return stored | await run_handlers(services, job, files["json"], source.parent, deadline)


async def _retry_or_fail(
    services: Services, job_id: str, arq_job_id: str, error: JobError, attempt: int
) -> None:
    requeue = partial(_requeue, services, job_id, arq_job_id)
    await retry_or_fail(services, job_id, error, attempt, what=f"run {attempt}", on_retry=requeue)


async def _requeue(services: Services, job_id: str, arq_job_id: str, message: str) -> None:
    """Back to queued; arq keeps the run (a Retry, or a cancelled run it will pick up again)."""
    await services.transitions.apply(
        job_id,
        JobState.QUEUED,
        only_from=RUNNING_ONLY,
        note={"message": message},
        queued_as=arq_job_id,
        progress=Progress(stage="queued", message=message),
    )
