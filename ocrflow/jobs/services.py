"""The shared resources every ocrflow process opens once: queue, job records, storage."""

from dataclasses import dataclass

from arq.connections import ArqRedis

from ocrflow.jobs import queue
from ocrflow.jobs.admission import Admission
from ocrflow.jobs.events import EventLog
from ocrflow.jobs.idempotency import Reuse
from ocrflow.jobs.limits import Limits
from ocrflow.jobs.ranges import Ranges
from ocrflow.jobs.records import JobStore
from ocrflow.jobs.transitions import Transitions
from ocrflow.settings import Settings
from ocrflow.storage.backend import Storage, open_storage


@dataclass(frozen=True)
class Services:
    settings: Settings
    redis: ArqRedis
    jobs: JobStore
    events: EventLog
    reuse: Reuse
    storage: Storage
    limits: Limits
    admission: Admission
    transitions: Transitions
    ranges: Ranges
    owns_redis: bool = True

    async def close(self) -> None:
        await self.storage.close()
        if self.owns_redis:
            await self.redis.aclose()


async def open_services(settings: Settings, redis: ArqRedis | None = None) -> Services:
    """Open what a process needs; a `redis` passed in (arq's own) stays the caller's to close."""
    owned = redis is None
    connection = redis or await queue.connect(settings)
    jobs = JobStore(connection, retention=settings.job_retention)
    events = EventLog(connection, retention=settings.job_retention)
    reuse = Reuse(connection)
    return Services(
        settings=settings,
        redis=connection,
        jobs=jobs,
        events=events,
        reuse=reuse,
        storage=await open_storage(settings),
        limits=Limits(connection, jobs, settings),
        admission=Admission(connection, settings),
        transitions=Transitions(connection, settings),
        ranges=Ranges(connection, settings),
        owns_redis=owned,
    )
