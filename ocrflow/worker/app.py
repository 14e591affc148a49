"""The arq worker: what it runs (a job's run, callbacks, e-mail), what it opens at startup (the
services, the OCR pool) and the loops it keeps alive beside the runs (reaper, sweeper,
heartbeat); and running it until told to stop."""

import asyncio
import contextlib
import errno
import logging
import signal
import socket
import tempfile
import time
from typing import Any

from arq.worker import Worker, func
from redis.exceptions import RedisError

from ocrflow.handlers import registry
from ocrflow.jobs import queue, redis_keys
from ocrflow.jobs.services import open_services
from ocrflow.pipeline.page import warm_up
from ocrflow.runtime.pool import OcrPool
from ocrflow.runtime.tasks import Supervised, health_of
from ocrflow.settings import Settings
from ocrflow.worker.callbacks import send_callback
from ocrflow.worker.context import POOL, SERVICES, SETTINGS, TASKS
from ocrflow.worker.fanout import merge_job, process_range
from ocrflow.worker.heartbeat import beat_forever
from ocrflow.worker.job import process_job
from ocrflow.worker.leases import Watch, reap_forever
from ocrflow.worker.mail import send_email
from ocrflow.worker.retention import sweep_forever

log = logging.getLogger(__name__)

# arq gives up on its own after this many extra tries; ocrflow's own limit ends the job first,
# so a record is never left queued by arq dropping the run.
ARQ_SPARE_TRIES = 5
ARQ_TIMEOUT_GRACE = 60.0


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx[SETTINGS]
    ctx[SERVICES] = services = await open_services(settings, redis=ctx["redis"])
    tasks: dict[str, Supervised] = {}
    ctx[TASKS] = tasks
    tasks["reaper"] = Supervised("reaper", lambda: reap_forever(services)).start()
    ctx[POOL] = pool = OcrPool(settings.pool_processes, memory_limit=settings.pool_memory_limit)
    await _warm(pool, settings)
    allowed = registry.allowed(settings.handlers)
    log.info("handlers jobs may name: %s", ", ".join(allowed) or "none")
    tasks["sweeper"] = Supervised("sweeper", lambda: sweep_forever(services)).start()

    def beat() -> Any:
        return beat_forever(
            services.redis,
            running=Watch.active,
            pool_processes=settings.pool_processes,
            tasks=lambda: health_of(tasks),
        )

    tasks["heartbeat"] = Supervised("heartbeat", beat).start()


async def _warm(pool: OcrPool, settings: Settings) -> None:
    """Start every pool process and load its models now: the first job after a (re)start would
    otherwise wait ~0.5 s for them."""
    lang = "+".join(settings.ocr_languages)
    try:
        await asyncio.gather(
            *(pool.run(warm_up, settings.ocr_engine, lang) for _ in range(pool.processes))
        )
    except Exception as exc:  # a broken engine shows in the first job, with its error
        log.warning("the OCR pool could not warm up: %r", exc)


async def shutdown(ctx: dict[str, Any]) -> None:
    for task in ctx.pop(TASKS, {}).values():
        await task.stop()
    if POOL in ctx:
        # Jobs still running were handed back when arq cancelled them: stop their pages now.
        pool = ctx.pop(POOL)
        pool.kill()
        await asyncio.to_thread(pool.close)
    if SERVICES in ctx:
        await ctx.pop(SERVICES).close()


def worker_settings(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """arq Worker keyword arguments (what arq calls WorkerSettings) built from ocrflow settings."""
    # A run of a job, and the units of a run read in ranges: the same time and tries.
    runs = [
        func(
            function,
            name=name,
            timeout=settings.job_timeout + ARQ_TIMEOUT_GRACE,
            max_tries=settings.job_max_tries + ARQ_SPARE_TRIES,
        )
        for function, name in (
            (process_job, redis_keys.PROCESS_JOB),
            (process_range, redis_keys.PROCESS_RANGE),
            (merge_job, redis_keys.MERGE_JOB),
        )
    ]
    callback = func(
        send_callback, name=redis_keys.SEND_CALLBACK, max_tries=settings.callback_max_tries
    )
    mail = func(send_email, name=redis_keys.SEND_EMAIL, max_tries=settings.mail_max_tries)
    return {
        "functions": [*runs, callback, mail],
        "queue_name": settings.queue_name,
        "redis_settings": queue.redis_settings(settings, patient=True),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "max_jobs": settings.max_jobs,
        "job_serializer": queue.serialize,
        "job_deserializer": queue.deserialize,
        "keep_result": 60,
        "poll_delay": 0.05,  # a worker idle on an empty queue costs Redis 20 cheap reads a second
        "health_check_interval": 30,
        # On SIGTERM, running jobs may finish for this long; the rest are handed back.
        "job_completion_wait": settings.shutdown_grace,
        "ctx": {SETTINGS: settings},
        **overrides,
    }


# What a lost connection raises besides redis-py's own errors: only these are worth a restart.
NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ETIMEDOUT,
        errno.EPIPE,
    }
)
CANNOT_RUN = 2  # the worker's configuration or machine will not let it run: no restart helps


def run_until_stopped(settings: Settings, *, burst: bool = False) -> int:
    """Run the arq worker (in `burst`, until the queue is empty); when Redis goes away under
    it, wait and start again. A data directory it cannot write, or any other fault that is
    not a lost connection, ends it with the reason, non-zero."""
    if (problem := unwritable(settings)) is not None:
        log.error("worker cannot run: %s", problem)
        return CANNOT_RUN
    delay = 1.0
    while True:
        asyncio.set_event_loop(asyncio.new_event_loop())
        worker = Worker(**worker_settings(settings, burst=burst))
        signalled: list[object] = []
        worker.on_stop = signalled.append  # arq calls it on SIGINT/SIGTERM
        started = time.monotonic()
        try:
            worker.run()
            return 0  # stopped by a signal, or (burst) the queue is empty
        except (RedisError, OSError) as exc:
            # arq's own close gave up at its first Redis call: stop the pool and the loops here.
            with contextlib.suppress(Exception):
                asyncio.get_event_loop().run_until_complete(shutdown(worker.ctx))
            if signalled:  # told to stop (perhaps its parent died): no restart
                return 0
            if not lost_connection(exc):
                log.error("worker cannot run: %s: %s", type(exc).__name__, exc)
                return CANNOT_RUN
            delay = 1.0 if time.monotonic() - started > 60 else min(delay * 2, 30.0)
            log.warning("worker lost Redis (%s); starting again in %.0f s", exc, delay)
            if _stopped_during(delay):
                return 0


def lost_connection(exc: BaseException) -> bool:
    if isinstance(exc, RedisError | ConnectionError | TimeoutError | socket.gaierror):
        return True
    return isinstance(exc, OSError) and exc.errno in NETWORK_ERRNOS


def unwritable(settings: Settings) -> str | None:
    """Why the worker could not write where it keeps files (scratch, and local storage)."""
    places = [settings.work_dir]
    if settings.storage_backend == "local":
        places.append(settings.storage_dir)
    for place in places:
        try:
            place.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=place).close()
        except OSError as exc:
            return (
                f"{place} cannot be written ({exc.strerror or exc}): give OCRFLOW_DATA_DIR "
                "a directory this user may write"
            )
    return None


class _Stop(Exception):
    pass


def _stopped_during(delay: float) -> bool:
    """Wait `delay` seconds; True (at once) if SIGTERM or SIGINT comes first: a platform stopping
    the worker gives it a short grace, and a restart backoff must not use it up."""

    def stop(signum: int, frame: object) -> None:
        raise _Stop

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        time.sleep(delay)
    except _Stop:
        log.info("worker told to stop while waiting to start again")
        return True
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return False
