"""Accepting a job: its source into storage, its record into Redis, its first run onto the queue."""

import logging
from pathlib import Path

from redis.exceptions import RedisError

from handlers import keys, queue
from handlers.errors import unavailable
from handlers.jobs import Job, JobError, JobState, now
from handlers.services import Services

log = logging.getLogger(__name__)


async def accept(services: Services, job: Job, source: Path) -> Job:
    """Store the source, record the job and queue it; any failure leaves no job accepted."""
    await services.storage.put_file(
        keys.source_key(job.id), source, content_type=job.source.media_type
    )
    await services.jobs.create(job)
    try:
        await queue.enqueue_run(
            services.redis, job.id, priority=job.priority, keep=services.settings.job_retention
        )
    except (RedisError, OSError) as exc:
        await _abandon(services, job, exc)
        raise unavailable("the job queue") from exc
    await services.events.publish(job.id, "state", {"state": JobState.QUEUED})
    log.info("job %s accepted: %s, %d bytes", job.id, job.source.media_type, job.source.bytes)
    return job


async def _abandon(services: Services, job: Job, exc: Exception) -> None:
    """The caller is told 503, so the record must not look like a job still to run."""
    error = JobError(code="enqueue_failed", message=f"the job could not be queued: {exc}")
    try:
        await services.jobs.update(
            job.id,
            only_from=frozenset({JobState.QUEUED}),
            state=JobState.FAILED,
            error=error,
            finished_at=now(),
        )
    except (RedisError, OSError):
        log.warning("job %s could not be queued nor marked failed", job.id)
