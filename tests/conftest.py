import os
import shutil
import sys
import tempfile
import tomllib
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

MISBEHAVING = Path(__file__).parent / "plugins"  # handlers that fail on purpose


def pytest_configure(config: pytest.Config) -> None:
    """Register the misbehaving handlers for this session only, by their entry points, for the
    tests and every process they start (workers, handler processes): never installed, so they
    never appear in the environment `scripts/run` serves from."""
    project = tomllib.loads((MISBEHAVING / "pyproject.toml").read_text())["project"]
    site = Path(tempfile.mkdtemp(prefix="ocrflow-test-handlers-"))
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    points = project["entry-points"]["ocrflow.handlers"]
    lines = [f"{name} = {target}" for name, target in points.items()]
    (info / "entry_points.txt").write_text("[ocrflow.handlers]\n" + "\n".join(lines) + "\n")
    paths = [str(site), str(MISBEHAVING)]
    sys.path[:0] = paths
    os.environ["PYTHONPATH"] = os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])
    config.stash[_SITE] = site


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(config.stash.get(_SITE, ""), ignore_errors=True)


_SITE = pytest.StashKey[Path]()


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
