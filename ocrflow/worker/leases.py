"""Runs hold short leases: a run whose worker died is handed back within seconds, not after
arq's in-progress key (the whole job timeout) runs out; a cancelled run is stopped at once."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import ClassVar

from redis.exceptions import RedisError

from ocrflow.jobs import queue, redis_keys
from ocrflow.jobs.records import Job, JobState
from ocrflow.jobs.services import Services
from ocrflow.runtime.pool import OcrPool
from ocrflow.worker import heartbeat

log = logging.getLogger(__name__)

LEASE_TTL = 15  # seconds a run stays claimed after its worker last spoke
WATCH_INTERVAL = 0.5  # how often a run renews its lease and looks for a cancel
REAP_INTERVAL = 5.0
REQUEUE_EVERY = 6  # reaper rounds between looks for queued jobs that lost their queue entry
RUNNING_ONLY = frozenset({JobState.RUNNING})
QUEUED_ONLY = frozenset({JobState.QUEUED})


class Watch:
    """For the length of one run (or one unit of it: a range, a merge): keep its lease, and
    stop its work if the job is cancelled or (for a unit) a newer run has begun."""

    active: ClassVar[set[str]] = set()  # units running in this process

    def __init__(
        self,
        services: Services,
        job_id: str,
        arq_job_id: str,
        pool: OcrPool,
        *,
        unit: str | None = None,
        run: int | None = None,
    ) -> None:
        self.services, self.job_id, self.arq_job_id, self.pool = services, job_id, arq_job_id, pool
        self.unit, self.run = unit or job_id, run
        self.stopped = False
        self._runner: asyncio.Task[object] | None = None
        self._watcher: asyncio.Task[None] | None = None

    @staticmethod
    async def claim(services: Services, unit: str, arq_job_id: str) -> None:
        """List a run (or unit) with its lease. Done before the job is marked running: a worker
        killed between the two would otherwise leave a running job that no reaper can see."""
        async with services.redis.pipeline(transaction=True) as pipe:
            pipe.hset(redis_keys.RUNNING, unit, arq_job_id)
            pipe.set(redis_keys.lease_key(unit), arq_job_id, ex=LEASE_TTL)
            await pipe.execute()

    @staticmethod
    async def release(services: Services, unit: str) -> None:
        async with services.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(redis_keys.RUNNING, unit)
            pipe.delete(redis_keys.lease_key(unit))
            await asyncio.shield(pipe.execute())

    async def __aenter__(self) -> "Watch":
        # The run is already listed with its lease (`claim`, before the job was marked running).
        self._runner = asyncio.current_task()
        Watch.active.add(self.unit)
        heartbeat.poke()
        self._watcher = asyncio.create_task(self._watch())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        Watch.active.discard(self.unit)
        heartbeat.poke()
        if self._watcher:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        await Watch.release(self.services, self.unit)

    async def _watch(self) -> None:
        redis = self.services.redis
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            with contextlib.suppress(RedisError, OSError):
                async with redis.pipeline(transaction=False) as pipe:
                    pipe.set(redis_keys.lease_key(self.unit), self.arq_job_id, ex=LEASE_TTL)
                    pipe.hmget(redis_keys.job_key(self.job_id), ["state", "run"])
                    _, (state, run) = await pipe.execute()
                if state is not None and self._moved_on(state, run):
                    self.stop()
                    return

    def _moved_on(self, state: bytes, run: bytes | None) -> bool:
        if state.decode() != f'"{JobState.RUNNING}"':
            return True
        return self.run is not None and run is not None and int(run) != self.run

    def stop(self) -> None:
        """The job left the running state (cancelled): kill its work and end the run."""
        log.info("job %s was cancelled; stopping its work", self.job_id)
        self.stopped = True
        self.pool.kill()
        if self._runner:
            self._runner.cancel()


async def reap(services: Services) -> list[str]:
    """Hand back every run whose lease ran out: its worker is gone. Returns those job ids."""
    return await _recover(services, redis_keys.RUNNING, _reap_one)


async def _reap_one(services: Services, unit: str, arq_job_id: str) -> bool:
    redis = services.redis
    if await redis.exists(redis_keys.lease_key(unit)):
        return False
    # Several workers reap; one claim per run decides who hands it back.
    if not await redis.set(redis_keys.REAP_PREFIX + unit, 1, nx=True, ex=LEASE_TTL):
        return False
    if "#" in unit:
        return await _hand_back_unit(services, unit, arq_job_id)
    return await _hand_back(services, unit, arq_job_id)


async def _hand_back_unit(services: Services, unit: str, arq_job_id: str) -> bool:
    """A range (or merge) whose worker died: only it runs again. arq still holds it (it
    leaves the queue only when it ends), so freeing its in-progress key is enough; if arq lost
    it, it is queued anew. The job stays running throughout."""
    redis = services.redis
    job_id, name = unit.split("#", 1)
    log.warning("job %s: the worker of its %s stopped answering; handing it back", job_id, name)
    await redis.delete(redis_keys.ARQ_IN_PROGRESS + arq_job_id)
    await redis.hdel(redis_keys.RUNNING, unit)  # type: ignore[misc]
    if await redis.exists(redis_keys.ARQ_JOB + arq_job_id):
        return True
    job = await services.jobs.get(job_id)
    return (
        job is not None
        and job.state is JobState.RUNNING
        and await services.ranges.requeue(job, name)
    )


async def _recover(
    services: Services, listing: str, recover: Callable[[Services, str, str], Awaitable[bool]]
) -> list[str]:
    """`recover` each run listed in `listing` (job id -> arq job id); the ids it recovered."""
    listed = await services.redis.hgetall(listing)  # type: ignore[misc]
    recovered = []
    for raw_job_id, raw_arq_id in listed.items():
        job_id = raw_job_id.decode()
        with _each_run(job_id):
            if await recover(services, job_id, raw_arq_id.decode()):
                recovered.append(job_id)
    return recovered


@contextlib.contextmanager
def _each_run(job_id: str) -> Iterator[None]:
    """One run that cannot be handled (a damaged record, say) is logged and passed over: it
    never stops the others from being recovered. Redis failing is the round's to handle."""
    try:
        yield
    except (RedisError, OSError):
        raise
    except Exception:
        log.exception("job %s: could not be recovered this round; passing over it", job_id)


async def _hand_back(services: Services, job_id: str, arq_job_id: str) -> bool:
    """Queue the run again; False when its job has moved on, or its record cannot be read
    (reported as it is read): either way the run is no longer listed as under way."""
    redis = services.redis
    log.warning("job %s: its worker stopped answering; handing the run back", job_id)
    note = {"message": "its worker stopped; the job will rerun"}
    if await redis.exists(redis_keys.ARQ_JOB + arq_job_id):
        handed = await services.transitions.apply(
            job_id, JobState.QUEUED, only_from=RUNNING_ONLY, note=note, queued_as=arq_job_id
        )
    else:  # arq no longer holds the run (it expired): queue a fresh one.
        job = await services.jobs.get(job_id)
        handed = job is not None and await _queue_next_run(services, job, RUNNING_ONLY, note)
    # Only now may arq start the run again: the record no longer says running.
    await redis.delete(redis_keys.ARQ_IN_PROGRESS + arq_job_id)
    await redis.hdel(redis_keys.RUNNING, job_id)  # type: ignore[misc]
    return handed


async def requeue_lost(services: Services) -> list[str]:
    """Queue again every queued job whose arq entry is gone (expired while it waited, or lost
    with a Redis that was not persisting): a queued job must never wait for nothing. Returns
    those job ids."""
    return await _recover(services, redis_keys.QUEUED, _requeue_if_lost)


async def _requeue_if_lost(services: Services, job_id: str, arq_job_id: str) -> bool:
    redis = services.redis
    async with redis.pipeline(transaction=False) as pipe:
        pipe.exists(redis_keys.ARQ_JOB + arq_job_id, redis_keys.ARQ_IN_PROGRESS + arq_job_id)
        pipe.hget(redis_keys.QUEUED, job_id)
        held, current = await pipe.execute()
    if held or current is None or current.decode() != arq_job_id:
        return False  # arq has it, or it has moved on since the listing
    job = await services.jobs.get(job_id)
    if job is None or job.state is not JobState.QUEUED:
        await redis.hdel(redis_keys.QUEUED, job_id)  # type: ignore[misc]
        return False
    if not await redis.set(redis_keys.REAP_PREFIX + "queued:" + job_id, 1, nx=True, ex=LEASE_TTL):
        return False  # another worker is on it
    log.warning("job %s: its queue entry was lost; queueing it again", job_id)
    lost = {"message": "its queue entry was lost; queued again"}
    return await _queue_next_run(services, job, QUEUED_ONLY, lost)


async def _queue_next_run(
    services: Services, job: Job, only_from: frozenset[JobState], note: dict[str, str]
) -> bool:
    """A new run of a job whose arq entry is gone; False if it has moved on meanwhile."""
    run = job.run + 1
    keep = services.settings.job_retention
    entry = queue.run_entry(job.id, run=run, priority=job.priority, keep=keep)
    return await services.transitions.apply(
        job.id, JobState.QUEUED, only_from=only_from, note=note, enqueue=entry, run=run
    )


async def reap_forever(services: Services) -> None:
    """Reap at once (workers that restart often must still reap), then every few seconds;
    look for queued jobs that lost their queue entry every few rounds. Runs supervised
    (`runtime.tasks`): anything but Redis being away restarts it, with backoff."""
    rounds = 0
    while True:
        try:
            await reap(services)
            if rounds % REQUEUE_EVERY == 0:
                await requeue_lost(services)
        except (RedisError, OSError) as exc:
            log.warning("reaper could not reach Redis: %s", exc)
        rounds += 1
        await asyncio.sleep(REAP_INTERVAL)
