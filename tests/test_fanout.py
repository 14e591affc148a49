"""One document across many workers: its pages in ranges, any worker running any range, the
outputs merged into one job's, as if read in one go."""

import subprocess
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from ocrflow.handlers.http.app import create_app
from ocrflow.handlers.jobs import redis_keys
from ocrflow.handlers.settings import Settings
from tests.support import read_events, running_worker, submit, wait_for_job, write_image_pdf

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
        job = await (await submit(client, pdf, outputs="text,json,csv,pdf")).json()
        events = client.get(f"/v1/jobs/{job['id']}/events")
        async with running_worker(own):
            final = await wait_for_job(client, job["id"])
            seen = [event async for event in read_events(await events)]
        assert final["state"] == "succeeded", final["error"]
        assert final["progress"]["pages_done"] == 6 and final["attempt"] == 1
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
