"""One document across many workers: its pages in ranges, any worker running any range, the
outputs merged into one job's, as if read in one go."""

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from ocrflow.http.app import create_app
from ocrflow.jobs import redis_keys
from ocrflow.settings import Settings
from tests.support import (
    Service,
    long_pdf,
    multipart,
    read_events,
    running_worker,
    submit,
    wait_for_job,
    wait_healthy,
    wait_until,
    write_image_pdf,
    write_png,
)

PAGES = [[f"Page {n} of the bundle", f"Exhibit {n * 7} filed"] for n in range(1, 7)]


def split_settings(settings: Settings, pages: int) -> Settings:
    return settings.model_copy(update={"fanout_pages": pages, "result_cache_ttl": 0})


def pdf_pages(path: Path) -> list[str]:
    count = int(
        next(
            line.split()[-1]
            for line in subprocess.run(
                ["pdfinfo", str(path)], capture_output=True, text=True
            ).stdout.splitlines()
            if line.startswith("Pages:")
        )
    )
    return [
        subprocess.run(
            ["pdftotext", "-f", str(n), "-l", str(n), str(path), "-"],
            capture_output=True,
            text=True,
        ).stdout.split()
        for n in range(1, count + 1)
    ]


async def outputs_of(
    client: TestClient[Any, Any], job: Any, tmp_path: Path, tag: str
) -> dict[str, Any]:
    text = await (await client.get(f"/v1/jobs/{job['id']}/outputs/text")).text()
    result = await (await client.get(f"/v1/jobs/{job['id']}/result")).json()
    pdf = tmp_path / f"{tag}.pdf"
    pdf.write_bytes(await (await client.get(f"/v1/jobs/{job['id']}/outputs/pdf")).read())
    csv = await (await client.get(f"/v1/jobs/{job['id']}/outputs/csv")).text()
    return {"text": text, "result": result, "pdf": pdf_pages(pdf), "csv": csv}


async def test_a_document_read_in_three_ranges_is_one_job_with_the_unsplit_outputs(
    aiohttp_client: Any, settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    pdf = write_image_pdf(tmp_path / "bundle.pdf", PAGES)
    found: dict[str, Any] = {}
    for tag, pages in (("split", 2), ("whole", 0)):
        own = split_settings(settings, pages)
        client: TestClient[Any, Any] = await aiohttp_client(create_app(own))
        # The handlers run once, on the merged result, wherever its ranges were read.
        spec = {"fields": [{"name": "exhibit", "label": "Exhibit", "pages": "5"}]}
        asked = json.dumps({"fields": spec})
        job = await (await submit(client, pdf, outputs="text,json,csv,pdf", handlers=asked)).json()
        events = client.get(f"/v1/jobs/{job['id']}/events")
        async with running_worker(own):
            final = await wait_for_job(client, job["id"])
            seen = [event async for event in read_events(await events)]
        assert final["state"] == "succeeded", final["error"]
        assert final["progress"]["pages_done"] == 6 and final["attempt"] == 1
        assert final["handlers"]["fields"]["summary"] == {"found": 1, "missing": []}
        fields = await client.get(f"/v1/jobs/{job['id']}/outputs/fields.json")
        assert (await fields.json())["fields"]["exhibit"]["value"] == "35 filed"
        found[tag] = await outputs_of(client, final, tmp_path, tag), seen
        if tag == "split":  # three ranges and a merge ran, each its own arq job
            units = ["1-2", "3-4", "5-6", "merge"]
            results = [f"arq:result:{redis_keys.range_arq_id(job['id'], 1, u)}" for u in units]
            assert await redis.exists(*results) == 4
            assert await redis.hgetall(redis_keys.ranges_key(job["id"])) == {}
            assert not list((own.storage_dir / "jobs" / job["id"]).glob("parts/**/*.json"))
    (split, split_events), (whole, _) = found["split"], found["whole"]
    assert split["text"] == whole["text"]
    assert split["pdf"] == whole["pdf"] and len(split["pdf"]) == 6
    pages = lambda result: [(p["number"], p["text"], p["words"]) for p in result["pages"]]  # noqa: E731
    assert pages(split["result"]) == pages(whole["result"])
    assert split["csv"].splitlines()[0] == whole["csv"].splitlines()[0]
    page_events = [event.data["number"] for event in split_events if event.kind == "page"]
    assert sorted(page_events) == [1, 2, 3, 4, 5, 6]
    assert split_events[-1].kind == "done"
    progress = [event.data["pages_done"] for event in split_events if event.kind == "progress"]
    assert progress[-1] == 6 and progress == sorted(progress)


async def test_a_burst_worker_drains_the_queue_and_exits(
    client: TestClient[Any, Any], settings: Settings, tmp_path: Path
) -> None:
    """`ocrflow worker --burst`: for platforms that start workers per backlog."""
    split = split_settings(settings, 2)
    pdf = write_image_pdf(tmp_path / "bundle.pdf", PAGES[:4])
    jobs = [
        await (await submit(client, path)).json()
        for path in (pdf, write_png(tmp_path / "one.png", ["one page"]))
    ]
    env = {
        "PATH": "/usr/bin:/bin",
        "OCRFLOW_REDIS_URL": str(split.redis_url),
        "OCRFLOW_QUEUE_NAME": split.queue_name,
        "OCRFLOW_DATA_DIR": str(split.data_dir),
        "OCRFLOW_FANOUT_PAGES": "2",
        "OCRFLOW_POOL_PROCESSES": "1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ocrflow",
        "worker",
        "--burst",
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()[-2000:]
    for job in jobs:
        assert (await wait_for_job(client, job["id"], timeout=5))["state"] == "succeeded"


async def test_cancel_stops_every_range_within_two_seconds(
    aiohttp_client: Any, settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    split = split_settings(settings, 2)
    client: TestClient[Any, Any] = await aiohttp_client(create_app(split))
    job = await (await submit(client, long_pdf(tmp_path / "long.pdf", pages=8))).json()
    async with running_worker(split):
        await wait_until(client, job["id"], lambda j: j["progress"]["pages_done"] >= 1)
        assert [u for u in await redis.hkeys(redis_keys.RUNNING) if b"#" in u]  # type: ignore[misc]
        started = asyncio.get_running_loop().time()
        assert (await client.post(f"/v1/jobs/{job['id']}/cancel")).status == 200
        async with asyncio.timeout(2):
            while await redis.hlen(redis_keys.RUNNING):  # type: ignore[misc]
                await asyncio.sleep(0.05)
        stopped = asyncio.get_running_loop().time() - started
        done_then = (await (await client.get(f"/v1/jobs/{job['id']}")).json())["progress"]
        await asyncio.sleep(1)
        final = await (await client.get(f"/v1/jobs/{job['id']}")).json()
    assert stopped < 2
    assert final["state"] == "cancelled" and final["progress"] == done_then
    assert final["progress"]["pages_done"] < 8


async def test_bad_input_in_a_range_fails_the_job_naming_its_pages(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    """A range that cannot be read (here: past the document's word limit) ends the job, its
    error naming the range's pages; it is not tried again."""
    split = split_settings(settings, 2).model_copy(update={"max_document_words": 5})
    client: TestClient[Any, Any] = await aiohttp_client(create_app(split))
    job = await (await submit(client, write_image_pdf(tmp_path / "b.pdf", PAGES[:4]))).json()
    async with running_worker(split):
        final = await wait_for_job(client, job["id"])
    assert final["state"] == "failed"
    error = final["error"]
    assert error["code"] == "result_too_large" and not error["retryable"]
    assert error["message"].startswith(("pages 1-2: ", "pages 3-4: "))


@pytest.mark.slow
async def test_a_worker_killed_mid_range_costs_only_that_range(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    """Two workers, one document in four ranges; one worker is SIGKILLed while it reads a
    range: the job still succeeds, and that range alone ran twice."""
    service = Service(
        tmp_path / "service",
        redis_url,
        OCRFLOW_FANOUT_PAGES="2",
        OCRFLOW_WORKER_MAX_JOBS="1",
        OCRFLOW_QUEUE_NAME="ocrflow:test:kill",
    )
    workers = [service.start("worker"), service.start("worker")]
    try:
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, service.base)
            pdf = long_pdf(tmp_path / "long.pdf", pages=8)
            body, content_type = multipart({}, pdf.name, pdf.read_bytes())
            headers = {"Content-Type": content_type}
            url, data = f"{service.base}/v1/jobs", io.BytesIO(body)
            async with session.post(url, data=data, headers=headers) as r:
                job = await r.json()
            async with asyncio.timeout(60):
                while not [u for u in await redis.hkeys(redis_keys.RUNNING) if b"#" in u]:  # type: ignore[misc]
                    await asyncio.sleep(0.05)
            # Killed once its range has announced a page: the range read again must not
            # announce that page a second time.
            victim = await _range_with_a_page_told(redis, job["id"], workers[0].pid)
            assert victim is not None
            workers[0].kill()
            workers[0].wait()
            async with asyncio.timeout(120):
                while job["state"] not in ("succeeded", "failed", "cancelled"):
                    await asyncio.sleep(0.5)
                    async with session.get(f"{service.base}/v1/jobs/{job['id']}") as r:
                        job = await r.json()
    finally:
        service.close()
    assert job["state"] == "succeeded", job["error"]
    tries = {}
    for unit in ("1-2", "3-4", "5-6", "7-8", "merge"):
        raw = await redis.get("arq:result:" + redis_keys.range_arq_id(job["id"], 1, unit))
        tries[unit] = json.loads(raw)["t"] if raw else None
    assert sorted(tries.values(), key=str) == [1, 1, 1, 1, 2], tries
    assert tries["merge"] == 1
    # The range read twice announced each of its pages once, and the count says 8 of 8.
    stream = await redis.xrange(redis_keys.events_key(job["id"]))
    history = [json.loads(fields[b"event"]) for _, fields in stream]
    told = [event["data"]["number"] for event in history if event["kind"] == "page"]
    assert sorted(told) == list(range(1, 9)), told
    assert job["progress"]["pages_done"] == 8


async def _range_with_a_page_told(redis: Redis, job_id: str, pid: int) -> str | None:
    """Wait until the worker `pid` runs a range one of whose pages has been announced."""
    async with asyncio.timeout(60):
        while True:
            beats = [
                json.loads(raw) for raw in await redis.mget(await redis.keys("ocrflow:worker:*"))
            ]
            mine = [unit for beat in beats if beat and beat["pid"] == pid for unit in beat["jobs"]]
            stream = await redis.xrange(redis_keys.events_key(job_id))
            told = {
                event["data"]["number"]
                for event in (json.loads(fields[b"event"]) for _, fields in stream)
                if event["kind"] == "page"
            }
            for unit in mine:
                first, _, last = unit.partition("#")[2].partition("-")
                if (
                    first.isdigit()
                    and last.isdigit()
                    and told & set(range(int(first), int(last) + 1))
                ):
                    return unit
            await asyncio.sleep(0.05)
