"""Cancel, retry, timeout, priorities, and a pool process dying under a job."""

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from arq.worker import Worker
from redis.asyncio import Redis

from ocrflow.http.app import create_app
from ocrflow.jobs import redis_keys
from ocrflow.jobs.records import JobState
from ocrflow.jobs.transitions import Transitions
from ocrflow.settings import Settings
from ocrflow.worker.app import worker_settings
from ocrflow.worker.context import POOL
from tests.support import (
    form,
    long_pdf,
    read_events,
    running_worker,
    submit,
    wait_for_job,
    wait_until,
    write_png,
)


def pool_pids(worker: Worker) -> set[int]:
    return set(worker.ctx[POOL]._executor._processes)


async def test_a_queued_job_cancelled_never_starts(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(settings))
    job = await (await submit(client, write_png(tmp_path / "p.png", ["never read"]))).json()
    response = await client.post(f"/v1/jobs/{job['id']}/cancel")
    assert response.status == 200
    assert (await response.json())["state"] == "cancelled"
    again = await client.post(f"/v1/jobs/{job['id']}/cancel")
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "job_finished"

    worker = Worker(**worker_settings(settings, handle_signals=False, burst=True, poll_delay=0.05))
    await worker.async_run()
    await worker.close()
    final = await (await client.get(f"/v1/jobs/{job['id']}")).json()
    assert final["state"] == "cancelled"
    assert final["started_at"] is None


async def test_cancelling_a_running_job_kills_its_work_within_two_seconds(
    client: TestClient[Any, Any], worker: Worker, tmp_path: Path
) -> None:
    job = await (await submit(client, long_pdf(tmp_path / "long.pdf"))).json()
    await wait_until(client, job["id"], lambda j: j["progress"]["pages_done"] >= 1)
    busy = pool_pids(worker)
    started = asyncio.get_running_loop().time()
    response = await client.post(f"/v1/jobs/{job['id']}/cancel")
    assert response.status == 200
    async with asyncio.timeout(2):
        while any(_alive(pid) for pid in busy):
            await asyncio.sleep(0.05)
    assert asyncio.get_running_loop().time() - started < 2
    final = await wait_for_job(client, job["id"])
    assert final["state"] == "cancelled"
    assert final["progress"]["pages_done"] < 8
    # Its progress is where it stopped: the fraction agrees with the pages done.
    progress = final["progress"]
    assert progress["fraction"] == round(progress["pages_done"] / progress["pages_total"], 4)
    assert progress["fraction"] > 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child stays a zombie until reaped; that is dead enough.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


async def test_a_failed_job_can_be_retried_and_a_finished_one_cannot(
    client: TestClient[Any, Any], worker: Worker, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nnot a pdf at all\n")
    job = await (await submit(client, broken)).json()
    assert (await wait_for_job(client, job["id"]))["state"] == "failed"
    retried = await client.post(f"/v1/jobs/{job['id']}/retry")
    assert retried.status == 202
    assert (await retried.json())["run"] == 2
    again = await wait_for_job(client, job["id"])
    assert again["state"] == "failed" and again["run"] == 2
    assert again["error"]["code"] == "invalid_pdf"

    good = await (await submit(client, write_png(tmp_path / "p.png", ["fine"]))).json()
    assert (await wait_for_job(client, good["id"]))["state"] == "succeeded"
    refused = await client.post(f"/v1/jobs/{good['id']}/retry")
    assert refused.status == 409
    assert (await refused.json())["error"]["code"] == "job_not_retryable"


async def test_a_cancelled_job_retried_runs_to_the_end(
    client: TestClient[Any, Any], worker: Worker, tmp_path: Path
) -> None:
    document = long_pdf(tmp_path / "long.pdf", pages=2)
    rules = '{"validate": {"rules": [{"check": "required"}]}}'  # the document has text
    job = await (await submit(client, document, handlers=rules)).json()
    await client.post(f"/v1/jobs/{job['id']}/cancel")
    cancelled = await wait_for_job(client, job["id"])
    assert cancelled["state"] == "cancelled"
    assert (await client.post(f"/v1/jobs/{job['id']}/retry")).status == 202
    final = await wait_for_job(client, job["id"])
    assert final["state"] == "succeeded"
    assert final["progress"]["pages_done"] == 2
    assert cancelled["handlers"]["validate"]["state"] == "pending"  # cancelled before it ran
    # The retry runs the handlers too.
    summary = final["handlers"]["validate"]["summary"]
    assert summary == {"passed": True, "rules": 1, "failed": [], "reasons": {}}
    # A retry is accepted again: ended jobs never outnumber accepted ones.
    counts = (await (await client.get("/v1/status")).json())["jobs"]
    assert counts == {"accepted": 2, "cancelled": 1, "succeeded": 1}


async def test_the_event_stream_of_a_retried_job_follows_its_latest_run(
    client: TestClient[Any, Any], tmp_path: Path, settings: Settings
) -> None:
    """Cancelled, retried, then read from the start: the stream shows the latest run only and
    ends at its ending, not at the old run's `cancelled`; a client that saw the old ending
    reconnects into the new run."""
    job = await (await submit(client, long_pdf(tmp_path / "long.pdf", pages=2))).json()
    first_run = await client.get(f"/v1/jobs/{job['id']}/events")
    assert (await client.post(f"/v1/jobs/{job['id']}/cancel")).status == 200
    seen = [event async for event in read_events(first_run)]
    assert [event.kind for event in seen] == ["state", "cancelled"]
    assert (await client.post(f"/v1/jobs/{job['id']}/retry")).status == 202
    async with running_worker(settings):
        fresh = await client.get(f"/v1/jobs/{job['id']}/events")
        events = [event async for event in read_events(fresh)]
        resumed = await client.get(
            f"/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": str(seen[-1].id)}
        )
        again = [event async for event in read_events(resumed)]
    kinds = [event.kind for event in events]
    assert kinds[0] == "state" and events[0].data["run"] == 2
    assert "cancelled" not in kinds and kinds[-1] == "done"
    assert events[-1].data["job"]["state"] == "succeeded"
    assert [event.id for event in again] == [event.id for event in events]


async def test_the_job_timeout_fails_the_job_and_stops_its_work(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    short = settings.model_copy(update={"job_timeout": 1.5})
    client = await aiohttp_client(create_app(short))
    async with running_worker(short):
        job = await (await submit(client, long_pdf(tmp_path / "long.pdf"))).json()
        final = await wait_for_job(client, job["id"])
        assert final["state"] == "failed"
        assert final["error"]["code"] == "timeout"
        assert final["error"]["retryable"] is False


async def test_a_killed_pool_process_costs_a_page_retry_not_the_job(
    client: TestClient[Any, Any], worker: Worker, tmp_path: Path
) -> None:
    job = await (await submit(client, long_pdf(tmp_path / "long.pdf", pages=4))).json()
    await wait_until(client, job["id"], lambda j: j["state"] == "running")
    await asyncio.sleep(0.3)
    victim = next(iter(pool_pids(worker)))
    os.kill(victim, signal.SIGKILL)
    final = await wait_for_job(client, job["id"])
    assert final["state"] == "succeeded", final["error"]
    assert final["attempt"] == 1
    result = await (await client.get(f"/v1/jobs/{job['id']}/result")).json()
    assert [page["number"] for page in result["pages"]] == [1, 2, 3, 4]
    assert all(page["error"] is None and page["words"] > 0 for page in result["pages"])


async def test_high_priority_jumps_a_flood_of_low_priority_jobs(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(settings))
    pngs = [write_png(tmp_path / f"p{n}.png", [f"priority {n}"]) for n in range(14)]

    async def post(png: Path, priority: str) -> str:
        response = await client.post("/v1/jobs", data=form(png, priority=priority))
        return str((await response.json())["id"])

    low = [await post(png, "low") for png in pngs[:12]]
    normal = await post(pngs[12], "normal")
    high = await post(pngs[13], "high")
    serial = settings.model_copy(update={"worker_max_jobs": 1, "pool_processes": 1})
    worker = Worker(
        **worker_settings(
            serial, handle_signals=False, burst=True, poll_delay=0.05, max_burst_jobs=3
        )
    )
    await worker.async_run()
    await worker.close()
    states = {i: (await (await client.get(f"/v1/jobs/{i}")).json()) for i in [high, normal, *low]}
    assert states[high]["state"] == "succeeded"
    assert states[normal]["state"] == "succeeded"
    assert states[high]["started_at"] < states[normal]["started_at"]
    started_low = [states[i]["started_at"] for i in low if states[i]["started_at"]]
    assert len(started_low) <= 1, "the burst should have stopped after three jobs"
    assert all(states[normal]["started_at"] < started for started in started_low)


def test_a_worker_takes_one_job_more_than_its_pool_runs(settings: Settings) -> None:
    """Jobs a worker has taken wait in it even while a worker beside it is idle: by default it
    takes only one more than its pool processes can run."""
    three = settings.model_copy(update={"pool_processes": 3})
    assert worker_settings(three)["max_jobs"] == 4
    chosen = three.model_copy(update={"worker_max_jobs": 9})
    assert worker_settings(chosen)["max_jobs"] == 9


async def test_a_run_is_listed_with_its_lease_before_its_job_is_marked_running(
    aiohttp_client: Any, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed between the two steps must leave a lease to run out: a job marked
    running with no listed run is one no reaper would ever hand back."""
    seen: list[tuple[bool, bool]] = []
    apply = Transitions.apply

    async def checked(self: Transitions, job_id: str, state: JobState, **kw: Any) -> bool:
        if state is JobState.RUNNING:
            async with Redis.from_url(str(settings.redis_url)) as redis:
                listed = bool(await redis.hexists(redis_keys.RUNNING, job_id))  # type: ignore[misc]
                seen.append((listed, bool(await redis.exists(redis_keys.lease_key(job_id)))))
        return await apply(self, job_id, state, **kw)

    monkeypatch.setattr(Transitions, "apply", checked)
    client = await aiohttp_client(create_app(settings))
    job = await (await submit(client, write_png(tmp_path / "p.png", ["listed first"]))).json()
    async with running_worker(settings):
        final = await wait_for_job(client, job["id"])
    assert final["state"] == "succeeded"
    assert seen == [(True, True)]
