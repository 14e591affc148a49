"""One retry policy for the worker's arq functions: how long to wait before the next try, and
whether a failed run (or unit of one) is tried again or ends the job."""

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

from arq import Retry

from ocrflow.jobs.records import JobError
from ocrflow.jobs.services import Services
from ocrflow.worker.outcomes import fail

log = logging.getLogger(__name__)

FIRST_BACKOFF = 2.0  # seconds before a job's second run
MAX_BACKOFF = 60.0  # a job's run never waits longer than this for its next try


def backoff(attempt: int, first: float, most: float = math.inf) -> float:
    """Seconds before try `attempt + 1`: `first`, doubling after each try, at most `most`."""
    return min(first * 2.0 ** (attempt - 1), most)


async def retry_or_fail(
    services: Services,
    job_id: str,
    error: JobError,
    attempt: int,
    *,
    what: str,
    on_retry: Callable[[str], Awaitable[None]] | None = None,
) -> None:
    """A fault is tried again after its backoff (arq's `Retry`, after `on_retry` is told why);
    bad input, or the last try, ends the job with `error`."""
    if not error.retryable or attempt >= services.settings.job_max_tries:
        await fail(services, job_id, error)
        return
    delay = backoff(attempt, FIRST_BACKOFF, MAX_BACKOFF)
    log.warning("job %s: %s failed (%s); retrying in %g s", job_id, what, error.code, delay)
    if on_retry is not None:
        await on_retry(f"retrying in {delay:g} s after: {error.message}")
    raise Retry(defer=delay)


def uncancel() -> None:
    """The current task goes on after a cancellation it has handled (a cancel through the API)."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
