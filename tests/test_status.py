"""/v1/status and /metrics after real jobs: counts, workers alive, the page-time histogram."""

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from arq.worker import Worker

from ocrflow.http.app import create_app
from ocrflow.settings import Settings
from tests.support import form, running_worker, submit, wait_for_job, write_png


async def test_status_and_metrics_count_real_work(
    client: TestClient[Any, Any], worker: Worker, tmp_path: Path
) -> None:
    for n in range(2):
        job = await (await submit(client, write_png(tmp_path / f"{n}.png", [f"page {n}"]))).json()
        assert (await wait_for_job(client, job["id"]))["state"] == "succeeded"
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nbroken\n")
    job = await (await submit(client, broken)).json()
    assert (await wait_for_job(client, job["id"]))["state"] == "failed"

    # A run leaves the running set just after its job's record ends: allow it a moment.
    async with asyncio.timeout(10):
        while (status := await (await client.get("/v1/status")).json())["running"]:
            await asyncio.sleep(0.05)
    assert status["jobs"] == {"accepted": 3, "succeeded": 2, "failed": 1}
    assert status["pages"] == {"ocr": 2}
    assert status["queue"] == {"high": 0, "normal": 0, "low": 0}
    assert status["running"] == 0 and status["units"] == {"queued": 0, "running": 0}
    assert len(status["workers"]) == 1 and status["workers"][0]["pool_processes"] == 2
    loops = status["workers"][0]["tasks"]
    assert set(loops) == {"reaper", "sweeper", "heartbeat"}
    assert all(loop["state"] == "running" and loop["restarts"] == 0 for loop in loops.values())
    assert status["ingress"]["listener"]["state"] == "running"
    histogram = status["page_seconds"]
    assert histogram["pages"] == 2 and histogram["seconds"] > 0
    bounds = [bucket["le"] for bucket in histogram["buckets"]]
    assert bounds[-1] == "+Inf" and bounds[:-1] == sorted(bounds[:-1])
    assert histogram["buckets"][-1]["pages"] == 2

    metrics = await (await client.get("/metrics")).text()
    assert 'ocrflow_jobs_total{state="succeeded"} 2' in metrics
    assert 'ocrflow_pages_total{method="ocr"} 2' in metrics
    assert 'ocrflow_page_seconds_bucket{le="+Inf"} 2' in metrics
    assert "ocrflow_page_seconds_count 2" in metrics
    assert "ocrflow_workers 1" in metrics
    assert "ocrflow_sse_clients 0" in metrics
    # Every metric says what it is.
    kinds = {line.split()[2] for line in metrics.splitlines() if line.startswith("# TYPE")}
    helped = {line.split()[2] for line in metrics.splitlines() if line.startswith("# HELP")}
    assert kinds == helped and len(kinds) == 10
    assert "ocrflow_units_queued 0" in metrics and "ocrflow_units_running 0" in metrics


async def test_queue_depth_by_priority(client: TestClient[Any, Any], tmp_path: Path) -> None:
    for n, priority in enumerate(["high", "low", "low", "normal"]):
        png = write_png(tmp_path / f"{n}.png", [f"queued {n}"])
        assert (await client.post("/v1/jobs", data=form(png, priority=priority))).status == 202
    status = await (await client.get("/v1/status")).json()
    assert status["queue"] == {"high": 1, "normal": 1, "low": 2}


async def test_waiting_and_running_units_are_counted_apart(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    """What autoscaling reads: a unit a worker runs is running, not also waiting."""
    own = settings.model_copy(
        update={"handlers": ("fields", "validate", "lingers"), "worker_max_jobs": 2}
    )
    client: TestClient[Any, Any] = await aiohttp_client(create_app(own))
    lingering = json.dumps({"lingers": {"seconds": 60}})
    ids = []
    async with running_worker(own):
        for n in range(2):
            png = write_png(tmp_path / f"{n}.png", [f"held {n}"])
            reply = await client.post("/v1/jobs", data=form(png, handlers=lingering))
            ids.append((await reply.json())["id"])
        await _until(client, lambda units: units["running"] == 2)
        status = await (await client.get("/v1/status")).json()
        assert status["units"] == {"queued": 0, "running": 2}
        assert status["queue"] == {"high": 0, "normal": 0, "low": 0}
        metrics = await (await client.get("/metrics")).text()
        assert "ocrflow_units_queued 0" in metrics and "ocrflow_units_running 2" in metrics

        png = write_png(tmp_path / "waits.png", ["waits its turn"])
        ids.append((await (await client.post("/v1/jobs", data=form(png))).json())["id"])
        status = await (await client.get("/v1/status")).json()
        assert status["units"] == {"queued": 1, "running": 2}
        assert status["queue"] == {"high": 0, "normal": 1, "low": 0}
        metrics = await (await client.get("/metrics")).text()
        assert "ocrflow_units_queued 1" in metrics and "ocrflow_units_running 2" in metrics
        for job_id in ids:
            await client.post(f"/v1/jobs/{job_id}/cancel")


async def _until(client: TestClient[Any, Any], done: Callable[[dict[str, int]], bool]) -> None:
    async with asyncio.timeout(60):
        while not done((await (await client.get("/v1/status")).json())["units"]):
            await asyncio.sleep(0.05)
