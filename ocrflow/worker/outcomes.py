"""How a run (or a unit of one) ends: the outputs stored, and the job's success or failure
recorded; and the signal that a job left the running state while its pages were being read."""

import asyncio
import logging
from pathlib import Path

from ocrflow.jobs.records import JobError, JobState, Progress, now
from ocrflow.jobs.services import Services
from ocrflow.pipeline.options import Output
from ocrflow.pipeline.outputs import MEDIA_TYPES
from ocrflow.pipeline.page import kept_previews
from ocrflow.storage import layout

log = logging.getLogger(__name__)

RUNNING_ONLY = frozenset({JobState.RUNNING})
PREVIEWS_AT_ONCE = 8


class JobStopped(Exception):
    """The job left the running state (cancelled) while its pages were being read."""


async def store_outputs(
    services: Services, job_id: str, files: dict[Output, Path]
) -> dict[str, str]:
    """Each output file into storage, at its fixed key (a rerun overwrites the same keys)."""
    stored: dict[str, str] = {}
    for name, path in files.items():
        key = layout.output_key(job_id, path.name)
        await services.storage.put_file(key, path, content_type=MEDIA_TYPES[name])
        stored[name] = key
    return stored


async def store_previews(services: Services, job_id: str, workdir: Path) -> None:
    """The pictures the pool kept of the pages it read, beside the job's outputs: a page picture
    is then a file served, never a page drawn by the ingress."""
    pictures = kept_previews(workdir)
    store = services.storage
    # A few at once: to S3, a long document's pictures one by one would add seconds to the run.
    for first in range(0, len(pictures), PREVIEWS_AT_ONCE):
        await asyncio.gather(
            *(
                store.put_file(
                    layout.preview_key(job_id, n), path, content_type="image/jpeg", move=True
                )
                for n, path in pictures[first : first + PREVIEWS_AT_ONCE]
            )
        )


async def succeed(services: Services, job_id: str, outputs: dict[str, str], pages: int) -> None:
    done = Progress(stage="done", pages_done=pages, pages_total=pages, fraction=1.0, message="done")
    await services.transitions.apply(
        job_id,
        JobState.SUCCEEDED,
        only_from=RUNNING_ONLY,
        outputs=outputs,
        finished_at=now(),
        progress=done,
    )


async def fail(
    services: Services, job_id: str, error: JobError, only_from: frozenset[JobState] = RUNNING_ONLY
) -> None:
    log.info("job %s failed: %s: %s", job_id, error.code, error.message)
    await services.transitions.apply(
        job_id, JobState.FAILED, only_from=only_from, error=error, finished_at=now()
    )
