import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from arq.worker import Worker
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from ocrflow.http.app import create_app
from ocrflow.runtime.redis_server import RedisServer, free_port
from ocrflow.settings import Settings
from tests.support import running_worker


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


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[Worker]:
    async with running_worker(settings) as arq_worker:
        yield arq_worker
