"""Hostile documents through the real ingress and worker: each refused or failed with its own
code, none takes the worker down. The full table, with memory, is scripts/hostile_inputs."""

import asyncio
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from aiohttp.test_utils import TestClient
from arq.worker import Worker
from PIL import Image

from ocrflow.http.auth import new_api_key
from ocrflow.nesting import json_depth
from ocrflow.pipeline.errors import PipelineError
from ocrflow.pipeline.media import MediaType
from ocrflow.pipeline.options import OcrOptions, Runtime
from ocrflow.pipeline.pages import in_pages, parse_pages
from ocrflow.pipeline.resolution import MAX_SIDE, capped_dpi
from ocrflow.runtime.pool import OcrPool
from ocrflow.settings import Settings
from ocrflow.worker.recognition import run_document
from tests.support import (
    Service,
    form,
    hostile,
    multipart,
    wait_for_job,
    wait_healthy,
    write_png,
)

MIB = 1024 * 1024


async def post(client: TestClient[Any, Any], path: Path, filename: str | None = None) -> Any:
    body, content_type = multipart({}, filename or path.name, path.read_bytes())
    return await client.post("/v1/jobs", data=body, headers={"Content-Type": content_type})


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (hostile.truncated_pdf, "invalid_pdf"),
        (hostile.corrupt_pdf, "invalid_pdf"),
        (hostile.encrypted_pdf, "encrypted_pdf"),
        (lambda d: hostile.many_pages_pdf(d, 600), "too_many_pages"),
        (lambda d: hostile.png_bomb(d, 20_000), "page_too_large"),
        (hostile.ccitt_giant_pdf, "page_too_large"),
        (hostile.html_with_pdf_header, "invalid_pdf"),
        (hostile.looping_page_tree_pdf, "invalid_pdf"),
        (hostile.glyph_bomb_pdf, "text_layer_too_large"),
        (lambda d: hostile.glyph_bomb_pdf(d, pages=25), "text_layer_too_large"),
    ],
    ids=[
        "truncated",
        "corrupt",
        "encrypted",
        "pages",
        "png-bomb",
        "ccitt-bomb",
        "html-pdf",
        "page-tree-loop",
        "glyph-bomb",
        "glyph-bomb-25",
    ],
)
async def test_a_hostile_document_fails_with_its_code_and_the_worker_serves_on(
    client: TestClient[Any, Any],
    worker: Worker,
    tmp_path: Path,
    make: Callable[[Path], Path],
    code: str,
) -> None:
    response = await post(client, make(tmp_path))
    assert response.status == 202, await response.text()
    job = await wait_for_job(client, (await response.json())["id"])
    assert job["state"] == "failed" and job["error"]["code"] == code, job["error"]
    assert not job["error"]["retryable"]
    good = await post(client, write_png(tmp_path / "good.png", ["Business as usual"]))
    assert (await wait_for_job(client, (await good.json())["id"]))["state"] == "succeeded"


async def test_files_that_are_no_document_are_refused_at_the_door(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    for path in (hostile.zero_bytes(tmp_path), hostile.zip_file(tmp_path)):
        response = await post(client, path)
        assert response.status == 415
        assert (await response.json())["error"]["code"] == "unsupported_media_type"


async def test_a_filename_is_shown_cleaned_and_never_used_as_a_path(
    client: TestClient[Any, Any], worker: Worker, tmp_path: Path
) -> None:
    png = write_png(tmp_path / "good.png", ["Where does this go"])
    for name, shown in (("../../../etc/passwd", "passwd"), ("a\tb.png", "ab.png")):
        response = await post(client, png, name)
        assert response.status == 202
        job = await wait_for_job(client, (await response.json())["id"])
        assert job["state"] == "succeeded" and job["source"]["filename"] == shown
    stored = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert stored and all("passwd" not in str(p) for p in stored)


async def test_a_page_over_the_pool_memory_limit_fails_alone(tmp_path: Path) -> None:
    """The pool's address-space limit turns a page too big for it into a page error; the
    process survives and reads the next document."""
    pool = OcrPool(1, memory_limit=300 * MIB)
    options = OcrOptions(outputs=("text",))

    async def ignore(*_: object) -> None:
        pass

    try:
        with pytest.raises(PipelineError) as failure:
            await run_document(
                pool,
                hostile.huge_page_pdf(tmp_path),
                MediaType.PDF,
                tmp_path,
                options,
                Runtime(),
                ignore,
            )
        assert failure.value.code in ("page_out_of_memory", "ocr_engine_error")
        png = write_png(tmp_path / "small.png", ["Small enough"])
        pages = await asyncio.wait_for(
            run_document(pool, png, MediaType.PNG, tmp_path, options, Runtime(), ignore), 60
        )
        assert pages[0].error is None and "Small" in pages[0].text
    finally:
        pool.close()


async def test_a_glyph_bomb_fails_fast_naming_its_page_and_a_wordy_document_is_refused(
    tmp_path: Path,
) -> None:
    """A page drawing 16,000 tiny words (pdftotext's own ceiling for short words) stops the
    text layer's reading at that page; pages under the page limit whose words together pass
    the document's limit stop the run as soon as they do."""
    pool = OcrPool(1)

    async def ignore(*_: object) -> None:
        pass

    async def run(path: Path, runtime: Runtime) -> None:
        options = OcrOptions(outputs=("text",))
        await run_document(pool, path, MediaType.PDF, tmp_path, options, runtime, ignore)

    try:
        bomb = hostile.glyph_bomb_pdf(tmp_path, pages=25)
        with pytest.raises(PipelineError) as failure:
            async with asyncio.timeout(10):
                await run(bomb, Runtime())
        assert failure.value.code == "text_layer_too_large"
        assert failure.value.message.startswith("page 1's text layer")
        wordy = hostile.glyph_bomb_pdf(tmp_path, pages=4, words_per_page=8_000)
        with pytest.raises(PipelineError) as failure:
            await run(wordy, Runtime(max_document_words=20_000))
        assert failure.value.code == "result_too_large"
        await run(wordy, Runtime())  # within both limits
    finally:
        pool.close()


@pytest.mark.slow
async def test_the_ingress_stays_small_under_heavy_readers(redis_url: str, tmp_path: Path) -> None:
    """20 slow readers of a large result once took the ingress to 3.58 GB (it read the whole
    file into memory for each); 20 feeds of all jobs, to 1.59 GB."""
    service = Service(tmp_path / "service", redis_url, OCRFLOW_MAX_ACTIVE_JOBS_PER_CALLER="0")
    service.start("worker")
    try:
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, service.base)
            pdf = hostile.glyph_bomb_pdf(tmp_path, pages=30, words_per_page=9_000)
            body, content_type = multipart({}, pdf.name, pdf.read_bytes())
            headers = {"Content-Type": content_type}
            async with session.post(f"{service.base}/v1/jobs", data=body, headers=headers) as r:
                job = await r.json()
            async with asyncio.timeout(120):
                while job["state"] not in ("succeeded", "failed"):
                    await asyncio.sleep(0.5)
                    async with session.get(f"{service.base}/v1/jobs/{job['id']}") as r:
                        job = await r.json()
            assert job["state"] == "succeeded", job["error"]
            ingress = psutil.Process(service.web.pid)
            before = ingress.memory_info().rss
            result = f"{service.base}/v1/jobs/{job['id']}/result"
            peak = await _peak_while(ingress, _slow_readers(session, result, 20), before)
            feeds = await _peak_while(
                ingress, _feeds(session, f"{service.base}/v1/events", 20), before
            )
    finally:
        service.close()
    assert (peak - before) / MIB < 64, f"readers: {(peak - before) / MIB:.0f} MiB"
    assert (feeds - before) / MIB < 64, f"feeds: {(feeds - before) / MIB:.0f} MiB"


async def _slow_readers(session: aiohttp.ClientSession, url: str, count: int) -> None:
    async def one() -> int:
        size = 0
        async with session.get(url) as response:
            assert response.status == 200
            while chunk := await response.content.read(64 * 1024):
                size += len(chunk)
                await asyncio.sleep(0.01)
        return size

    sizes = await asyncio.gather(*(one() for _ in range(count)))
    assert min(sizes) > 10 * MIB


async def _feeds(session: aiohttp.ClientSession, url: str, count: int) -> None:
    responses = [await session.get(url) for _ in range(count)]
    await asyncio.sleep(2)
    for response in responses:
        response.close()


async def _peak_while(process: psutil.Process, work: Any, floor: int) -> int:
    peak = floor
    task = asyncio.ensure_future(work)
    while not task.done():
        peak = max(peak, process.memory_info().rss)
        await asyncio.sleep(0.05)
    await task
    return peak


async def test_a_page_list_built_to_backtrack_is_refused_at_once(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    """Every 6-character group once cost a backtracking pattern ~4.5x more: 20 never returned,
    and the event loop (every request of the process) waited with it."""
    pages = "1" + ",1-    " * 20 + "x"
    handlers = json.dumps({"fields": {"fields": [{"name": "n", "label": "No", "pages": pages}]}})
    png = write_png(tmp_path / "p.png", ["No 1"])
    async with asyncio.timeout(5):
        reply = await client.post("/v1/jobs", data=form(png, handlers=handlers))
        health = await client.get("/healthz")
    assert reply.status == 422 and health.status == 200
    error = (await reply.json())["error"]
    assert error["code"] == "invalid_handler_params" and "is not a page or a range" in str(error)


def test_page_lists_read_as_people_write_them() -> None:
    assert parse_pages(" 1 - 3 , 7,10-") == ((1, 3), (7, 7), (10, None))
    assert in_pages(parse_pages("2-"), 900) and not in_pages(parse_pages("1-3,7"), 5)
    for bad in ("", "0", "3-1", "1,,2", "1-2-3", "a", "²", "1" * 10, "1," * 600):
        with pytest.raises(ValueError):
            parse_pages(bad)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("metadata", "[" * 900 + "]" * 900),
        ("metadata", '{"a":' * 40 + "1" + "}" * 40),
        ("handlers", '{"fields": ' + "[" * 30_000 + "]" * 30_000 + "}"),
        ("handlers", '{"fields": {"fields": ' + "[" * 3_000 + "]" * 3_000 + "}}"),
    ],
)
async def test_deeply_nested_fields_are_refused_before_anything_is_stored(
    client: TestClient[Any, Any], settings: Settings, tmp_path: Path, field: str, value: str
) -> None:
    png = write_png(tmp_path / "p.png", ["nested"])
    reply = await client.post("/v1/jobs", data=form(png, **{field: value}))
    assert reply.status == 422
    error = (await reply.json())["error"]
    assert error["code"] == "invalid_options" and f"`{field}` nests deeper" in error["message"]
    stored = settings.storage_dir
    assert not stored.exists() or not any(path.is_file() for path in stored.rglob("*"))


async def test_deep_metadata_in_a_json_body_is_refused_too(client: TestClient[Any, Any]) -> None:
    deep = '{"a": ' * 500 + "1" + "}" * 500
    body = '{"url": "https://example.com/a.pdf", "metadata": ' + deep + "}"
    reply = await client.post("/v1/jobs", data=body, headers={"Content-Type": "application/json"})
    assert reply.status == 422, await reply.text()
    assert "`metadata` nests deeper" in (await reply.json())["error"]["message"]


def test_json_depth_skips_brackets_in_strings() -> None:
    assert json_depth('{"a": "[[[[{{{{", "b": [1, [2]]}') == 3
    assert json_depth('["\\"[[[", {"k": "]]]"}]') == 2
    assert json_depth("[" * 100_000, most=32) == 33


def test_a_page_taller_than_tesseract_reads_is_rendered_to_fit() -> None:
    strip = (38.0, 14_400.0)  # points: a 200-inch receipt roll
    dpi = capped_dpi(strip, 300, 80_000_000)
    assert max(math.ceil(side / 72 * dpi) for side in strip) <= MAX_SIDE
    assert dpi >= 150  # still readable
    assert capped_dpi((612.0, 792.0), 300, 80_000_000) == 300  # a letter page is untouched


async def test_an_image_taller_than_tesseract_reads_fails_as_too_large(tmp_path: Path) -> None:
    tall = tmp_path / "tall.png"
    Image.new("L", (60, MAX_SIDE + 500), 255).save(tall)

    async def ignore(*_: object) -> None:
        return None

    pool = OcrPool(1)
    options = OcrOptions(rotate=False, deskew=False, rescale=False)
    try:
        with pytest.raises(PipelineError) as failure:
            await run_document(pool, tall, MediaType.PNG, tmp_path, options, Runtime(), ignore)
        assert failure.value.code == "page_too_large"
        assert "32767 pixels a side" in failure.value.message
    finally:
        pool.close()


async def test_page_pictures_never_grow_the_ingress_nor_hold_other_callers(
    redis_url: str, tmp_path: Path
) -> None:
    """Three drawings at once of a 200-inch strip and of an 8,900 px PNG: each refused or
    drawn small outside the ingress, and another caller's picture meanwhile within a second."""
    alice_key, alice = new_api_key("alice")
    bob_key, bob = new_api_key("bob")
    service = Service(tmp_path / "service", redis_url, OCRFLOW_API_KEYS=f"{alice},{bob}")
    try:
        ingress = psutil.Process(service.web.pid)
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, service.base)
            jobs = {}
            for who, key, path in (
                ("strip", alice_key, hostile.tall_strip_pdf(tmp_path)),
                ("wide", alice_key, hostile.wide_png(tmp_path)),
                ("bob", bob_key, write_png(tmp_path / "bob.png", ["Bob's page"])),
            ):
                body, content_type = multipart({}, path.name, path.read_bytes())
                headers = {"Content-Type": content_type, "Authorization": f"Bearer {key}"}
                async with session.post(f"{service.base}/v1/jobs", data=body, headers=headers) as r:
                    jobs[who] = (await r.json())["id"]
            before = ingress.memory_info().rss
            as_alice = {"Authorization": f"Bearer {alice_key}"}

            async def picture(job: str, width: int, headers: dict[str, str]) -> int:
                url = f"{service.base}/v1/jobs/{job}/pages/1/image?width={width}"
                async with session.get(url, headers=headers) as reply:
                    await reply.read()
                    return reply.status

            peak = before
            heavy = [
                asyncio.create_task(picture(jobs[name], 2000, as_alice))
                for name in ("strip", "strip", "strip", "wide", "wide", "wide")
            ]
            await asyncio.sleep(0.2)
            started = time.monotonic()
            bobs = await picture(jobs["bob"], 300, {"Authorization": f"Bearer {bob_key}"})
            waited = time.monotonic() - started
            while not all(task.done() for task in heavy):
                peak = max(peak, ingress.memory_info().rss)
                await asyncio.sleep(0.05)
            statuses = [task.result() for task in heavy]
    finally:
        service.close()
    assert bobs == 200 and waited < 1.0, waited
    assert all(status in (200, 404) for status in statuses), statuses
    assert peak < 256 * MIB, peak / MIB
