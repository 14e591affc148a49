"""The web page in a real headless Chromium: upload a document, watch it, get the links."""

import json
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from arq.worker import Worker
from playwright.async_api import async_playwright

from ocrflow.http.app import create_app
from ocrflow.http.auth import new_api_key
from ocrflow.settings import Settings
from tests.support import (
    running_worker,
    start_worker,
    stop_worker,
    write_image_pdf,
    write_png,
)

CHROMIUM = shutil.which("chromium")
# As root, in a machine with no network: no sandbox, and none of Chromium's own traffic.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/setup")
async def test_upload_through_the_page_and_get_the_outputs(
    client: TestClient[Any, Any], worker: Worker, tmp_path: Path
) -> None:
    pdf = write_image_pdf(tmp_path / "letter.pdf", [["Dear reader"], ["Kind regards"]])
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page()
            await page.goto(str(client.make_url("/")))
            await page.set_input_files("#pick", str(pdf))
            card = page.locator(".job.succeeded")
            await card.wait_for(timeout=60_000)
            names = await card.locator(".links a").all_inner_texts()
            assert sorted(names) == ["json", "pdf", "text"]
            text_url = await card.locator(".links a", has_text="text").get_attribute("href")
            assert text_url is not None
            text = await (await client.session.get(text_url)).text()
            assert text.split() == ["Dear", "reader", "Kind", "regards"]
            recent = page.locator("#recent tr", has_text="letter.pdf")
            await recent.wait_for(timeout=10_000)
            assert "succeeded" in await recent.inner_text()
        finally:
            await browser.close()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/setup")
async def test_handlers_asked_on_the_page_show_their_state_and_outputs(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    own = settings.model_copy(update={"handlers": ("fields", "validate", "raises")})
    client = await aiohttp_client(create_app(own))
    png = write_png(tmp_path / "invoice.png", ["Invoice number: 4417", "Total due: 12.50"])
    handlers = {
        "fields": {"fields": [{"name": "invoice", "label": "Invoice number"}]},
        "validate": {"rules": [{"check": "range", "field": "invoice", "max": 1000}]},
        "raises": {},
    }
    async with async_playwright() as playwright, running_worker(own):
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page()
            await page.goto(str(client.make_url("/")))
            await page.click("summary")
            await page.locator("#available", has_text="fields, raises, validate").wait_for()
            await page.fill("#handlers", json.dumps(handlers))
            await page.set_input_files("#pick", str(png))
            card = page.locator(".job.succeeded")
            await card.wait_for(timeout=60_000)
            steps = await card.locator(".steps li").all_inner_texts()
            assert steps[0] == 'fields: succeeded — {"found":1,"missing":[]}'
            assert steps[2].startswith("raises: failed — handler_failed: ValueError: invoice.png")
            # The job read its text, but a check failed and a handler did not do its part: the
            # card says both, in words.
            ending = await card.locator(".reason").inner_text()
            assert ending == (
                "succeeded, but failed 1 check: invoice: 4417 is more than 1000; and raises "
                "(handler_failed) did not finish"
            )
            names = await card.locator(".links a").all_inner_texts()
            reports = ["report.csv", "report.html", "report.json"]
            assert sorted(names) == ["fields.csv", "fields.json", "json", "pdf", *reports, "text"]
            recent = page.locator("#recent tr", has_text="invoice.png")
            await recent.locator(".steps li.failed", has_text="raises: failed").wait_for()
        finally:
            await browser.close()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/setup")
async def test_the_page_works_with_an_api_key(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    key, entry = new_api_key("browser")
    secured = settings.model_copy(update={"api_keys": (entry,)})
    client = await aiohttp_client(create_app(secured))
    arq_worker, task = await start_worker(secured)
    png = write_png(tmp_path / "keyed.png", ["Opened with a key"])
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page(accept_downloads=True)
            await page.goto(str(client.make_url("/")))
            await page.fill("#key", key)
            await page.dispatch_event("#key", "change")
            await page.set_input_files("#pick", str(png))
            card = page.locator(".job.succeeded")
            await card.wait_for(timeout=60_000)  # submitted and followed over SSE with the key
            async with page.expect_download() as download:
                await card.locator(".links a", has_text="text").click()
            saved = await (await download.value).path()
            assert Path(saved).read_text().split() == ["Opened", "with", "a", "key"]
            recent = page.locator("#recent tr", has_text="keyed.png")
            await recent.wait_for(timeout=10_000)
        finally:
            await browser.close()
            await stop_worker(arq_worker, task)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/setup")
async def test_the_page_fits_a_phone_screen(client: TestClient[Any, Any], tmp_path: Path) -> None:
    """At 390 px the jobs table once ran off the right edge."""
    for n, name in enumerate(
        ("a-rather-long-file-name-from-a-scanner-2026-12-04-01.png", "short.png")
    ):
        png = write_png(tmp_path / f"{n}.png", [f"narrow {n}"])
        data = aiohttp.FormData()
        data.add_field("file", png.read_bytes(), filename=name)
        assert (await client.post("/v1/jobs", data=data)).status == 202
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844})
            await page.goto(str(client.make_url("/")))
            await page.locator("#recent tr", has_text="short.png").wait_for(timeout=10_000)
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390
        finally:
            await browser.close()
