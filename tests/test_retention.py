"""Files of expired jobs, and scratch space left by killed workers, are swept away."""

import os
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from arq.worker import Worker
from redis.asyncio import Redis

from ocrflow.http.state import SERVICES
from ocrflow.settings import Settings
from ocrflow.worker.retention import sweep
from tests.support import submit, wait_for_job, write_png


def age(path: Path, seconds: float) -> None:
    for item in [path, *path.rglob("*")]:
        then = time.time() - seconds
        os.utime(item, (then, then))


async def test_expired_jobs_lose_their_files_and_live_ones_keep_them(
    client: TestClient[Any, Any], worker: Worker, settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    expired, live = [
        await (await submit(client, write_png(tmp_path / f"{n}.png", [f"page {n}"]))).json()
        for n in range(2)
    ]
    for job in (expired, live):
        assert (await wait_for_job(client, job["id"]))["state"] == "succeeded"
    jobs_dir = settings.storage_dir / "jobs"
    age(jobs_dir, 2 * 3600)
    await redis.delete(f"ocrflow:job:{expired['id']}")  # its retention ran out
    stale = settings.work_dir / "j_dead" / "run"
    stale.mkdir(parents=True)
    age(settings.work_dir / "j_dead", 2 * 24 * 3600)

    assert await sweep(client.app[SERVICES]) == 1
    assert sorted(p.name for p in jobs_dir.iterdir()) == [live["id"]]
    assert not (settings.work_dir / "j_dead").exists()
    text = await client.get(f"/v1/jobs/{live['id']}/outputs/text")
    assert (await text.text()).split() == ["page", "1"]


async def test_files_of_a_job_being_accepted_are_left_alone(
    client: TestClient[Any, Any], settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    job = await (await submit(client, write_png(tmp_path / "p.png", ["young"]))).json()
    await redis.delete(f"ocrflow:job:{job['id']}")  # as if the record were not written yet
    assert await sweep(client.app[SERVICES]) == 0
    assert (settings.storage_dir / "jobs" / job["id"] / "source").exists()
