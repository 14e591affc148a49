"""Background loops and what they read survive faults: a malformed pub/sub message, a damaged
job record, one job's files that cannot be swept, a loop that raises. Each fault is injected
into a real Redis, a real app and real storage."""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from ocrflow.http.state import SERVICES
from ocrflow.jobs import redis_keys
from ocrflow.jobs.records import JobState
from ocrflow.runtime import tasks
from ocrflow.runtime.redis_server import free_port
from ocrflow.runtime.tasks import Supervised
from ocrflow.settings import Settings
from ocrflow.worker.leases import Watch, reap
from ocrflow.worker.retention import sweep
from tests.support import read_events, submit, write_png


async def test_a_malformed_pubsub_message_does_not_stop_live_delivery(
    client: TestClient[Any, Any], redis: Redis, tmp_path: Path
) -> None:
    job = await (await submit(client, write_png(tmp_path / "p.png", ["listen on"]))).json()
    response = await client.get(f"/v1/jobs/{job['id']}/events")
    events = read_events(response)
    assert (await anext(events)).data["state"] == "queued"
    for garbage in (b"garbage", b'1-0 2-0\n"x"\n{not json', b"\xff\xfe"):
        await redis.publish(redis_keys.EVENTS_CHANNEL, garbage)
    assert (await client.post(f"/v1/jobs/{job['id']}/cancel")).status == 200
    async with asyncio.timeout(5):  # live, not from a periodic look at the record
        ending = await anext(events)
    assert ending.kind == "cancelled" and ending.data["job"]["state"] == "cancelled"
    status = await (await client.get("/v1/status")).json()
    assert status["ingress"]["dropped_messages"] == 3
    assert status["ingress"]["listener"] == {
        "state": "running",
        "restarts": 0,
        "last_error": None,
        "last_error_at": None,
    }


async def test_a_damaged_record_neither_stops_the_reaper_nor_breaks_the_listing(
    client: TestClient[Any, Any], redis: Redis, tmp_path: Path
) -> None:
    services = client.app[SERVICES]
    ids = []
    for name in ("damaged", "sound"):
        job = await (await submit(client, write_png(tmp_path / f"{name}.png", [name]))).json()
        ids.append(job["id"])
        running = frozenset({JobState.QUEUED})
        assert await services.transitions.apply(job["id"], JobState.RUNNING, only_from=running)
        # Its worker died: the run is listed, its lease has run out, and arq lost its entry.
        await Watch.claim(services, job["id"], redis_keys.arq_job_id(job["id"], 1))
        await redis.delete(redis_keys.lease_key(job["id"]))
        await redis.delete(redis_keys.ARQ_JOB + redis_keys.arq_job_id(job["id"], 1))
    damaged, sound = ids
    await redis.hset(redis_keys.job_key(damaged), "source", "not JSON")  # type: ignore[misc]

    assert await reap(services) == [sound]
    recovered = await (await client.get(f"/v1/jobs/{sound}")).json()
    assert recovered["state"] == "queued" and recovered["run"] == 2
    listing = await client.get("/v1/jobs")
    assert listing.status == 200
    assert [job["id"] for job in (await listing.json())["jobs"]] == [sound]
    assert (await client.get(f"/v1/jobs/{damaged}")).status == 404


async def test_one_jobs_files_that_cannot_be_swept_do_not_stop_the_sweep(
    client: TestClient[Any, Any], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = client.app[SERVICES]
    jobs = settings.storage_dir / "jobs"
    for job_id in ("j_aaaa", "j_bbbb"):  # files of jobs whose records have expired
        (jobs / job_id).mkdir(parents=True)
        (jobs / job_id / "source").write_bytes(b"%PDF")
        then = time.time() - 2 * 3600
        os.utime(jobs / job_id / "source", (then, then))
    modified = services.storage.modified

    async def failing(key: str) -> float | None:
        if "j_aaaa" in key:
            raise RuntimeError("a fault in one job's files")
        return await modified(key)

    monkeypatch.setattr(services.storage, "modified", failing)
    assert await sweep(services) == 1
    assert sorted(path.name for path in jobs.iterdir()) == ["j_aaaa"]


async def test_a_loop_that_fails_is_restarted_and_its_health_shows_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tasks, "FIRST_DELAY", 0.01)
    rounds: list[int] = []
    second_round = asyncio.Event()

    async def body() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("the first round fails")
        second_round.set()
        await asyncio.Event().wait()  # runs on, as a loop does

    loop = Supervised("flaky", body).start()
    async with asyncio.timeout(5):
        await second_round.wait()
    assert loop.health.state == "running" and loop.health.restarts == 1
    assert loop.health.last_error == "RuntimeError: the first round fails"
    await loop.stop()
    assert loop.health.state == "stopped"


@contextlib.contextmanager
def _killed_after(process: subprocess.Popen[str]) -> Iterator[None]:
    try:
        yield
    finally:
        process.kill()
        process.wait()


def _worker(tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    given = {k: v for k, v in os.environ.items() if not k.startswith("OCRFLOW_")}
    given.update(OCRFLOW_POOL_PROCESSES="1", OCRFLOW_LOG_LEVEL="INFO", **env)
    return subprocess.Popen(
        [sys.executable, "-m", "ocrflow", "worker"],
        env=given,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )


def test_a_worker_that_cannot_write_its_data_directory_says_so_and_exits(
    tmp_path: Path, redis_url: str
) -> None:
    occupied = tmp_path / "data"
    occupied.write_text("a file where the data directory should be")
    worker = _worker(tmp_path, OCRFLOW_REDIS_URL=redis_url, OCRFLOW_DATA_DIR=str(occupied))
    try:
        _, err = worker.communicate(timeout=30)
    finally:
        worker.kill()  # a worker that never ends (the bug) must not outlive the test
    assert worker.returncode == 2, err
    assert f"{occupied}/work cannot be written" in err and "OCRFLOW_DATA_DIR" in err
    assert "lost Redis" not in err


@pytest.mark.slow  # the worker rides out ~30 s of a missing Redis before its first restart
def test_a_worker_waiting_to_reconnect_stops_at_once_when_told(tmp_path: Path) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}"
    worker = _worker(tmp_path, OCRFLOW_REDIS_URL=nobody, OCRFLOW_DATA_DIR=str(tmp_path / "d"))
    assert worker.stderr is not None
    with worker.stderr, _killed_after(worker):
        deadline = time.monotonic() + 60
        while "starting again in" not in worker.stderr.readline():
            assert time.monotonic() < deadline and worker.poll() is None
        told = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
        assert time.monotonic() - told < 2
