import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from arq.worker import Worker
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from ocrflow.handlers.http.app import create_app
from ocrflow.handlers.runtime.redis_server import RedisServer, free_port
from ocrflow.handlers.settings import Settings
from ocrflow.handlers.worker.app import worker_settings

TERMINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real redis-server for the whole test session, on a free loopback port."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), port=free_port(), persist=False)
    yield server.start()
    server.stop()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    with SyncRedis.from_url(redis_url) as fresh:
        fresh.flushdb()  # every test starts from an empty Redis
    return Settings(
        _env_file=None,
        redis_url=redis_url,
        data_dir=tmp_path / "data",
        pool_processes=2,
        # A queue of its own per test: a worker never sees another test's jobs.
        queue_name=f"ocrflow:test:{uuid.uuid4().hex[:8]}",
        page_timeout=60,
        job_timeout=120,
    )


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> TestClient[Any, Any]:
    test_client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    return test_client


async def start_worker(settings: Settings, **overrides: Any) -> tuple[Worker, asyncio.Task[None]]:
    """A real arq worker with a real process pool, running in the test's event loop."""
    arq_worker = Worker(
        **worker_settings(settings, handle_signals=False, poll_delay=0.05, **overrides)
    )
    return arq_worker, asyncio.create_task(arq_worker.async_run())


async def stop_worker(arq_worker: Worker, task: asyncio.Task[None]) -> None:
    # Let runs that are finishing record their end, so closing cancels nothing half-written.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10):
            while any(not t.done() for t in arq_worker.tasks.values()):
                await asyncio.sleep(0.02)
    with contextlib.suppress(asyncio.CancelledError):
        await arq_worker.close()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def running_worker(settings: Settings, **overrides: Any) -> AsyncIterator[Worker]:
    """A real worker for the length of the block."""
    arq_worker, task = await start_worker(settings, **overrides)
    try:
        yield arq_worker
    finally:
        await stop_worker(arq_worker, task)


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[Worker]:
    async with running_worker(settings) as arq_worker:
        yield arq_worker


async def wait_for_job(client: TestClient[Any, Any], job_id: str, timeout: float = 60) -> Any:
    """Poll the job document until it reaches a terminal state."""
    async with asyncio.timeout(timeout):
        while True:
            response = await client.get(f"/v1/jobs/{job_id}")
            assert response.status == 200
            job = await response.json()
            if job["state"] in TERMINAL:
                return job
            await asyncio.sleep(0.05)
