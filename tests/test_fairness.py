"""Sharing the service between callers: workers take turns between callers, high priority is
for the callers an operator names, and the backlog limit holds under concurrent submissions."""

import asyncio
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from arq.worker import Worker
from redis.asyncio import Redis

from ocrflow.http.app import create_app
from ocrflow.http.auth import new_api_key
from ocrflow.jobs import redis_keys
from ocrflow.settings import Settings
from tests.support import form, running_worker, wait_for_job, write_png

ALICE_KEY, ALICE = new_api_key("alice")
BOB_KEY, BOB = new_api_key("bob")
OPS_KEY, OPS = new_api_key("ops")


def as_caller(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_callers_flood_does_not_hold_back_another_caller(
    aiohttp_client: Any, settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    """One caller's 400 jobs once made another's single job wait 23.7 s instead of 0.3 s."""
    shared = settings.model_copy(update={"api_keys": (ALICE, BOB), "rate_limit": 0})
    client: TestClient[Any, Any] = await aiohttp_client(create_app(shared))

    async def post(key: str, n: int) -> str:
        png = write_png(tmp_path / f"{key[-6:]}-{n}.png", [f"fair {n}"])
        response = await client.post("/v1/jobs", data=form(png), headers=as_caller(key))
        return str((await response.json())["id"])

    flood = [await post(ALICE_KEY, n) for n in range(12)]
    single = await post(BOB_KEY, 0)
    order = [member.decode() for member in await redis.zrange(shared.queue_name, 0, -1)]
    position = order.index(redis_keys.arq_job_id(single, 1))
    assert position <= 1, f"bob's job is {position + 1}th of {len(order)}"
    # A worker running one job at a time takes it first or second.
    serial = shared.model_copy(update={"worker_max_jobs": 1, "pool_processes": 1})
    async with running_worker(serial):
        done = await wait_for_job(client, single, headers=as_caller(BOB_KEY))
    assert done["state"] == "succeeded"
    jobs = [await get(client, i, ALICE_KEY) for i in flood]
    before = [job for job in jobs if job["started_at"] and job["started_at"] < done["started_at"]]
    assert len(before) <= 1


async def get(client: TestClient[Any, Any], job_id: str, key: str) -> Any:
    return await (await client.get(f"/v1/jobs/{job_id}", headers=as_caller(key))).json()


async def test_low_priority_jobs_are_not_deferred(
    client: TestClient[Any, Any], worker: Worker, tmp_path: Path
) -> None:
    """Scores stay in the past however many jobs a caller has queued: arq takes them at once."""
    ids = []
    for n in range(3):
        png = write_png(tmp_path / f"low{n}.png", [f"low {n}"])
        ids.append(
            (await (await client.post("/v1/jobs", data=form(png, priority="low"))).json())["id"]
        )
    for job_id in ids:
        assert (await wait_for_job(client, job_id, timeout=30))["state"] == "succeeded"


async def test_high_priority_is_for_the_callers_named(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    named = settings.model_copy(
        update={"api_keys": (ALICE, OPS), "high_priority_callers": ("key:ops",)}
    )
    client: TestClient[Any, Any] = await aiohttp_client(create_app(named))
    png = write_png(tmp_path / "p.png", ["in a hurry"])
    refused = await client.post(
        "/v1/jobs", data=form(png, priority="high"), headers=as_caller(ALICE_KEY)
    )
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "priority_not_allowed"
    allowed = await client.post(
        "/v1/jobs", data=form(png, priority="high"), headers=as_caller(OPS_KEY)
    )
    assert allowed.status == 202


async def test_the_backlog_limit_holds_under_concurrent_submissions(
    aiohttp_client: Any, settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    """80 submissions at once against a backlog of 150 (with 140 queued) once left 181."""
    limited = settings.model_copy(update={"max_backlog": 20, "rate_limit": 0})
    client: TestClient[Any, Any] = await aiohttp_client(create_app(limited))
    pngs = [write_png(tmp_path / f"b{n}.png", [f"backlog {n}"]) for n in range(50)]
    answers = await asyncio.gather(*(client.post("/v1/jobs", data=form(png)) for png in pngs))
    statuses = sorted(response.status for response in answers)
    assert statuses.count(202) == 20 and statuses.count(503) == 30
    assert await redis.zcard(limited.queue_name) == 20
