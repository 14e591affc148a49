"""Retention: stored files outlive nothing. Job records expire in Redis by themselves; this
removes the sources and outputs of expired jobs, and scratch space killed workers left."""

import asyncio
import logging
import shutil
import time
from pathlib import Path

from redis.exceptions import RedisError

from ocrflow.jobs import redis_keys
from ocrflow.jobs.services import Services
from ocrflow.storage import layout
from ocrflow.storage.backend import StorageError

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 600.0
# Files younger than this are never swept: a job's source is stored just before its record.
GRACE = 3600.0
SCRATCH_MAX_AGE = 24 * 3600.0


async def sweep(services: Services) -> int:
    """One round; returns how many jobs' files were removed."""
    removed = 0
    for job_id in await services.storage.job_ids():
        try:
            removed += await _sweep_job(services, job_id)
        except (RedisError, OSError, StorageError):
            raise  # the round's to report
        except Exception:  # one job's files never stop the others' being swept
            log.exception("retention: could not sweep job %s; passing over it", job_id)
    await asyncio.to_thread(_clear_scratch, services.settings.work_dir, SCRATCH_MAX_AGE)
    if removed:
        log.info("retention: removed the files of %d expired jobs", removed)
    return removed


async def _sweep_job(services: Services, job_id: str) -> int:
    if await services.redis.exists(redis_keys.job_key(job_id)):
        return 0
    written = await services.storage.modified(layout.source_key(job_id))
    if written is not None and time.time() - written < GRACE:
        return 0
    await services.storage.delete_job(job_id)
    return 1


def _clear_scratch(work: Path, max_age: float) -> None:
    if not work.is_dir():
        return
    cutoff = time.time() - max_age
    for entry in [*work.iterdir(), *((work / "incoming").glob("*"))]:
        if entry.name != "incoming" and entry.stat().st_mtime < cutoff:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


async def sweep_forever(services: Services) -> None:
    """Runs supervised (`runtime.tasks`): anything but Redis or storage being away restarts it,
    with backoff."""
    while True:
        await asyncio.sleep(SWEEP_INTERVAL)
        try:
            # One worker sweeps each round; the others skip it.
            if await services.redis.set(
                redis_keys.SWEEP_LOCK, 1, nx=True, ex=int(SWEEP_INTERVAL / 2)
            ):
                await sweep(services)
        except (RedisError, OSError, StorageError) as exc:
            log.warning("retention sweep failed: %s", exc)
