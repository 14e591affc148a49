"""Moving a job between states: the record changes atomically, then the change is announced."""

from typing import Any

from ocrflow.handlers.jobs import redis_keys as keys
from ocrflow.handlers.jobs import stats
from ocrflow.handlers.jobs.records import JobState
from ocrflow.handlers.jobs.services import Services

TERMINAL_EVENTS = {
    JobState.SUCCEEDED: "done",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "cancelled",
}


async def transition(
    services: Services,
    job_id: str,
    state: JobState,
    *,
    only_from: frozenset[JobState],
    note: dict[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """Set the state (and fields) if the job is in one of `only_from`; False when it was not."""
    if not await services.jobs.update(job_id, only_from=only_from, state=state, **fields):
        return False
    if state is not JobState.QUEUED:
        await services.redis.hdel(keys.QUEUED, job_id)  # type: ignore[misc]
    if state in TERMINAL_EVENTS:
        job = await services.jobs.get(job_id)
        document = job.model_dump(mode="json") if job else None
        await stats.count_job(services.redis, state)
        if job is not None:
            if job.callback_url:
                await services.redis.enqueue_job(
                    keys.SEND_CALLBACK, job_id, _job_id=f"{job_id}:callback:{job.run}"
                )
            if job.notify_email and services.settings.smtp_host:
                await services.redis.enqueue_job(
                    keys.SEND_EMAIL, job_id, _job_id=f"{job_id}:email:{job.run}"
                )
            await services.reuse.release_in_flight(job)
            await services.limits.release(job.owner, job_id)
            if state is JobState.SUCCEEDED:
                await services.reuse.remember_result(job)
        await services.events.publish(
            job_id, TERMINAL_EVENTS[state], {"state": state, "job": document}
        )
    else:
        await services.events.publish(job_id, "state", {"state": state, **(note or {})})
    return True
