"""A run's scratch space on the worker's disk, and the job's source fetched into it."""

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from ocrflow.jobs.services import Services
from ocrflow.storage import layout
from ocrflow.storage.backend import disk_errors


@asynccontextmanager
async def scratch(services: Services, job_id: str, name: str = "run") -> AsyncIterator[Path]:
    """A directory of the run's own under the work directory, removed after; a full disk there
    is `DiskFull` (retried later), not an internal error."""
    path = services.settings.work_dir / job_id / f"{name}-{uuid.uuid4().hex[:8]}"
    with disk_errors("the worker's scratch space"):
        path.mkdir(parents=True)
        try:
            yield path
        finally:
            await asyncio.to_thread(shutil.rmtree, path, True)


def source_path(workdir: Path) -> Path:
    """Where a run keeps the job's document in its scratch space."""
    return workdir / "source"


async def fetch_source(services: Services, job_id: str, workdir: Path) -> Path:
    """The job's stored document, as `source_path(workdir)`."""
    source = source_path(workdir)
    await services.storage.fetch(layout.source_key(job_id), source)
    return source
