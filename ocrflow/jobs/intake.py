"""Accepting a job: its source into storage, its record into Redis, its first run onto the queue."""

import logging
from pathlib import Path
from typing import Literal, cast

from redis.exceptions import RedisError

from ocrflow.errors import ErrorCode, OcrflowError
from ocrflow.jobs.admission import Verdict
from ocrflow.jobs.idempotency import reusable_result, still_running
from ocrflow.jobs.records import Job, JobState, now
from ocrflow.jobs.services import Services
from ocrflow.storage import layout
from ocrflow.storage.backend import ObjectNotFound, Storage, StorageError, StoredObject

log = logging.getLogger(__name__)


UNAVAILABLE_RETRY_AFTER = 5
# What a submission's document is, as it reaches admission: a spool file, bytes held in memory,
# an object already in a bucket, or nothing yet (a URL, fetched by the worker).
Incoming = Path | bytes | StoredObject | None
Reused = Literal["idempotent", "shared", "cached"] | None


async def submit(
    services: Services, job: Job, source: Incoming, *, idempotency_key: str | None
) -> tuple[Job, Reused]:
    """The job that answers this submission, and whether (and how) it was an earlier one.
    Every earlier job it may answer with belongs to the same caller (`job.owner`)."""
    reuse, caller = services.reuse, job.owner
    if idempotency_key and (bound := await reuse.claim_key(caller, idempotency_key, job)):
        earlier = await services.jobs.get(bound)
        if earlier is not None:
            return earlier, "idempotent"
        await reuse.rebind_key(caller, idempotency_key, job, job.id)  # that job has expired
    try:
        answer, reused = await _reuse_or_accept(services, job, source)
    except BaseException:
        if idempotency_key:
            await reuse.release_key(caller, idempotency_key)
        raise
    if idempotency_key and answer.id != job.id:
        await reuse.rebind_key(caller, idempotency_key, job, answer.id)
    return answer, reused


async def _reuse_or_accept(services: Services, job: Job, source: Incoming) -> tuple[Job, Reused]:
    """An earlier job's result, or the job already reading this content, or else `job` itself
    admitted and accepted. Each claim looks in one round trip; when what it finds cannot answer
    (a result since deleted, a job since ended, a caller's count holding ended jobs), the next
    claim looks past it, so this ends within four. A job that asks to be told when it ends
    (callback or e-mail) never shares another's run: that one's ending tells only its own
    caller; a result from the cache is a job of its own, told as any ending is."""
    check_claim = not (job.callback_url or job.notify_email)
    check_cache, pruned = True, False
    while True:
        claim = await services.admission.claim(
            job, check_cache=check_cache, check_claim=check_claim
        )
        if claim.verdict is Verdict.ADMITTED:
            break
        if claim.verdict is Verdict.CACHED:
            check_cache = False
            earlier = await services.jobs.get(cast(str, claim.other))
            if earlier is not None and reusable_result(earlier):
                try:
                    return await _answer_from(services, job, earlier), "cached"
                except ObjectNotFound:
                    log.info(
                        "job %s: the cached result of %s is gone; reading again",
                        job.id,
                        claim.other,
                    )
        elif claim.verdict is Verdict.IN_FLIGHT:
            check_claim = False
            other = await services.jobs.get(cast(str, claim.other))
            if other is not None and still_running(other):
                return other, "shared"
        elif claim.verdict is Verdict.CALLER_FULL and not pruned:
            pruned = True
            if not await services.limits.prune(job.owner):
                raise services.limits.refusal(claim.verdict)
        else:
            raise services.limits.refusal(claim.verdict)
    try:
        return await accept(services, job, source), None
    except BaseException:
        await services.reuse.release_in_flight(job)
        raise


async def _answer_from(services: Services, job: Job, earlier: Job) -> Job:
    """A new job, already succeeded, with its own copy of the earlier job's outputs (each job's
    files live and expire with it)."""
    outputs = {}
    for name, key in earlier.outputs.items():
        outputs[name] = layout.output_key(job.id, key.rsplit("/", 1)[-1])
        await services.storage.copy(key, outputs[name])
    answered = job.model_copy(
        update={
            "state": JobState.SUCCEEDED,
            "cached": True,
            "outputs": outputs,
            "handlers": earlier.handlers,
            "progress": earlier.progress,
            "started_at": now(),
            "finished_at": now(),
        }
    )
    await services.admission.record(answered)
    log.info("job %s answered from the result of %s", job.id, earlier.id)
    return answered


async def accept(services: Services, job: Job, source: Incoming) -> Job:
    """Store the source of an admitted job (a spool file, taken as is; a small upload's
    bytes; an object already in a bucket, copied; a URL is fetched by the worker), then record
    and queue it; any failure leaves no job accepted."""
    try:
        await _store(services.storage, job, source)
    except BaseException:
        await services.limits.release(job.owner, job.id)
        raise
    try:
        await services.admission.record(job)
    except (RedisError, OSError) as exc:
        await _abandon(services, job)
        raise OcrflowError(
            ErrorCode.SERVICE_UNAVAILABLE,
            "the job queue is unavailable; try again shortly",
            retryable=True,
            retry_after=UNAVAILABLE_RETRY_AFTER,
        ) from exc
    except BaseException:  # whatever it was, the request leaves nothing stored behind
        await _abandon(services, job)
        raise
    log.info("job %s accepted: %s", job.id, job.source.url or job.source.media_type)
    return job


async def _store(storage: Storage, job: Job, source: Incoming) -> None:
    key, content_type = layout.source_key(job.id), str(job.source.media_type)
    if isinstance(source, bytes):
        await storage.put_bytes(key, source, content_type=content_type)
    elif isinstance(source, StoredObject):
        if source.bucket is None:
            await storage.copy(source.key, key)
        else:
            await storage.copy_in(source.bucket, source.key, key)
    elif source is not None:
        await storage.put_file(key, source, content_type=content_type, move=True)


async def _abandon(services: Services, job: Job) -> None:
    """The transaction wrote nothing, and the caller is told 503: give back the job's place
    under the limits and remove its stored files, so nothing of it stays behind."""
    try:
        await services.limits.release(job.owner, job.id)
    except (RedisError, OSError):
        log.warning("job %s: its place under the limits is freed when they are next pruned", job.id)
    try:
        await services.storage.delete_job(job.id)
    except StorageError:
        log.warning("job %s: its stored source stays until retention sweeps it", job.id)
