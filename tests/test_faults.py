"""Real faults with real processes: workers killed or stopped mid-job, Redis restarted."""

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from ocrflow.http.app import create_app
from ocrflow.http.state import SERVICES
from ocrflow.jobs import redis_keys
from ocrflow.runtime.pool import kill_tree
from ocrflow.runtime.redis_server import RedisServer, free_port
from ocrflow.settings import Settings
from ocrflow.worker.leases import requeue_lost
from tests.support import (
    form,
    long_pdf,
    running_worker,
    submit,
    wait_for_job,
    wait_until,
    write_png,
)

SpawnWorker = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def spawn_worker(settings: Settings, tmp_path: Path) -> Iterator[SpawnWorker]:
    """Start `ocrflow worker` processes on the test's Redis, queue and data directory."""
    started: list[subprocess.Popen[bytes]] = []
    log = (tmp_path / "workers.log").open("ab")

    def start(redis_url: str | None = None, **extra: str) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCRFLOW_")}
        env.pop("REDIS_URL", None)
        env.update(
            OCRFLOW_REDIS_URL=redis_url or str(settings.redis_url),
            OCRFLOW_DATA_DIR=str(settings.data_dir),
            OCRFLOW_QUEUE_NAME=settings.queue_name,
            OCRFLOW_POOL_PROCESSES="1",
            **extra,
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "ocrflow", "worker"], env=env, stdout=log, stderr=log
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            kill_tree(process.pid)
            process.wait()
    log.close()


def outputs_stored(settings: Settings, job_id: str) -> list[str]:
    folder = settings.storage_dir / "jobs" / job_id / "outputs"
    return sorted(path.name for path in folder.iterdir())


async def test_a_worker_killed_mid_job_is_replaced_within_seconds(
    client: TestClient[Any, Any], spawn_worker: SpawnWorker, settings: Settings, tmp_path: Path
) -> None:
    first = spawn_worker()
    job = await (await submit(client, long_pdf(tmp_path / "long.pdf", pages=6))).json()
    await wait_until(client, job["id"], lambda j: j["progress"]["pages_done"] >= 1)
    os.kill(first.pid, signal.SIGKILL)
    killed_at = datetime.now(UTC)
    first.wait()
    spawn_worker()
    final = await wait_for_job(client, job["id"], timeout=120)

    assert final["state"] == "succeeded", final["error"]
    assert final["attempt"] == 2
    picked_up = datetime.fromisoformat(final["started_at"]) - killed_at
    assert picked_up.total_seconds() < 30
    assert outputs_stored(settings, job["id"]) == ["result.json", "text.txt"]
    result = await (await client.get(f"/v1/jobs/{job['id']}/result")).json()
    assert [page["number"] for page in result["pages"]] == [1, 2, 3, 4, 5, 6]


async def test_sigterm_hands_running_jobs_back_within_the_grace_period(
    client: TestClient[Any, Any], spawn_worker: SpawnWorker, tmp_path: Path
) -> None:
    worker = spawn_worker(OCRFLOW_SHUTDOWN_GRACE="1")
    job = await (await submit(client, long_pdf(tmp_path / "long.pdf", pages=8))).json()
    await wait_until(client, job["id"], lambda j: j["state"] == "running")
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.wait, 20) == 0
    handed_back = await (await client.get(f"/v1/jobs/{job['id']}")).json()
    assert handed_back["state"] == "queued"
    spawn_worker()
    final = await wait_for_job(client, job["id"], timeout=120)
    assert final["state"] == "succeeded"
    assert final["attempt"] == 2


@pytest.mark.slow
async def test_redis_restarted_under_load_loses_no_accepted_job(
    aiohttp_client: Any, spawn_worker: SpawnWorker, settings: Settings, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path / "aof-redis", port=free_port(), persist=True)
    url = server.start()
    try:
        own = settings.model_copy(update={"redis_url": url})
        client = await aiohttp_client(create_app(own))
        spawn_worker(redis_url=url)
        pdfs = [long_pdf(tmp_path / f"long{n}.pdf", pages=2, tag=str(n)) for n in range(6)]
        accepted = [(await (await submit(client, pdf)).json())["id"] for pdf in pdfs[:4]]
        await asyncio.sleep(1)

        server.stop()
        down = await client.post("/v1/jobs", data=form(pdfs[4]))
        assert down.status == 503
        assert down.headers["Retry-After"]
        assert (await down.json())["error"]["code"] == "service_unavailable"
        assert (await client.get(f"/v1/jobs/{accepted[0]}")).status == 503
        await asyncio.sleep(3)
        server.start()

        accepted.append((await (await submit(client, pdfs[5])).json())["id"])
        for job_id in accepted:
            final = await wait_for_job(client, job_id, timeout=180)
            assert final["state"] == "succeeded", (job_id, final["error"])
    finally:
        server.stop()


async def test_health_endpoints_report_redis_down(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path / "short-redis", port=free_port(), persist=False)
    url = server.start()
    client = await aiohttp_client(create_app(settings.model_copy(update={"redis_url": url})))
    assert (await client.get("/readyz")).status == 200
    server.stop()
    try:
        response = await client.get("/readyz")
        assert response.status == 503
        assert (await client.get("/healthz")).status == 200
    except aiohttp.ClientError:
        pytest.fail("the ingress must answer while Redis is down")


async def test_a_queued_job_whose_queue_entry_was_lost_is_queued_again(
    client: TestClient[Any, Any], settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    lost = await (await submit(client, write_png(tmp_path / "a.png", ["Lost and found"]))).json()
    kept = await (await submit(client, write_png(tmp_path / "b.png", ["Never lost"]))).json()
    # What an expired or evicted arq entry looks like: the record says queued, arq has nothing.
    await redis.delete(redis_keys.ARQ_JOB + redis_keys.arq_job_id(lost["id"], 1))
    await redis.zrem(settings.queue_name, redis_keys.arq_job_id(lost["id"], 1))
    services = client.app[SERVICES]
    assert await requeue_lost(services) == [lost["id"]]
    assert await requeue_lost(services) == []  # once is enough
    assert await redis.exists(redis_keys.ARQ_JOB + redis_keys.arq_job_id(lost["id"], 2))
    async with running_worker(settings):
        found = await wait_for_job(client, lost["id"])
        other = await wait_for_job(client, kept["id"])
    assert found["state"] == "succeeded" and found["run"] == 2
    assert other["state"] == "succeeded" and other["run"] == 1
    assert not await redis.hlen(redis_keys.QUEUED)  # type: ignore[misc]
