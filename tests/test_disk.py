"""A full disk is said as such: 507 with its code at the door, not ready, and a job's run
retried with the reason recorded. The fault is the operating system's answer, injected where
ocrflow meets it."""

import errno
import os
import shutil
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from ocrflow.http.app import create_app
from ocrflow.jobs import redis_keys
from ocrflow.settings import Settings
from tests.support import form, running_worker, wait_for_job, write_png

Usage = namedtuple("Usage", "total used free")


def no_space(*_: Any, **__: Any) -> Any:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


async def test_a_full_disk_at_the_door_is_a_507_and_leaves_nothing(
    client: TestClient[Any, Any],
    settings: Settings,
    redis: Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once a 500 `internal_error`."""
    monkeypatch.setattr(Path, "write_bytes", no_space)
    png = write_png(tmp_path / "p.png", ["no room"])
    response = await client.post("/v1/jobs", data=form(png))
    assert response.status == 507
    body = await response.json()
    assert body["error"]["code"] == "insufficient_storage" and response.headers["Retry-After"]
    assert await redis.zcard(settings.queue_name) == 0
    assert not await redis.smembers(redis_keys.active_key("anonymous"))  # type: ignore[misc]


async def test_readiness_says_when_the_disk_is_nearly_full(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once 200 with a full disk."""
    assert (await client.get("/readyz")).status == 200
    monkeypatch.setattr(shutil, "disk_usage", lambda _: Usage(10**9, 10**9 - 10**6, 10**6))
    response = await client.get("/readyz")
    assert response.status == 507
    assert (await response.json())["error"]["code"] == "insufficient_storage"


async def test_a_worker_out_of_scratch_space_records_why(
    aiohttp_client: Any, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once an `internal_error`: the reason is recorded, and the run is tried again later."""
    once = settings.model_copy(update={"job_max_tries": 1})
    client: TestClient[Any, Any] = await aiohttp_client(create_app(once))
    job = await (
        await client.post("/v1/jobs", data=form(write_png(tmp_path / "p.png", ["x"])))
    ).json()
    monkeypatch.setattr(shutil, "copyfile", no_space)  # the source into the scratch space
    async with running_worker(once):
        failed = await wait_for_job(client, job["id"])
    assert failed["error"]["code"] == "insufficient_storage"
    assert failed["error"]["retryable"] is True
    assert "scratch space" in failed["error"]["message"]
