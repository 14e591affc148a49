"""The operators' dashboard in a real headless Chromium, over `ocrflow web` and two `ocrflow
worker` processes: workers come and go, jobs appear and move live, cancel works, and a caller
who is not an operator sees neither the dashboard nor anyone else's jobs."""

import asyncio
import io
import json
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from PIL import Image
from playwright.async_api import Page, async_playwright

from ocrflow.http.app import create_app
from ocrflow.http.auth import new_api_key
from ocrflow.settings import Settings
from tests.support import (
    Service,
    form,
    long_pdf,
    run_ocrflow,
    running_worker,
    wait_for_job,
    wait_healthy,
    write_png,
)

CHROMIUM = shutil.which("chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
WAIT = 60_000  # ms
IMAGE_WIDTH = "document.getElementById('page-image').naturalWidth"


async def submit(
    session: aiohttp.ClientSession, base: str, key: str, path: Path, **fields: str
) -> Any:
    data = aiohttp.FormData()
    for name, value in fields.items():
        data.add_field(name, value)
    data.add_field("file", io.BytesIO(path.read_bytes()), filename=path.name)
    async with session.post(
        f"{base}/v1/jobs", data=data, headers={"Authorization": f"Bearer {key}"}
    ) as response:
        assert response.status == 202, await response.text()
        return await response.json()


# Each visible table cell's words, measured alone in the cell's font, against the cell's width.
BROKEN_WORDS = """() => {
  const broken = [];
  for (const cell of document.querySelectorAll("td, th")) {
    if (!cell.offsetParent) continue;
    const style = getComputedStyle(cell);
    const room = cell.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    for (const word of cell.textContent.split(/\\s+/).filter(Boolean)) {
      const probe = document.createElement("span");
      probe.style.cssText = "position:absolute;visibility:hidden;white-space:nowrap";
      for (const name of ["fontFamily", "fontSize", "fontWeight", "fontStyle", "letterSpacing"]) {
        probe.style[name] = style[name];
      }
      probe.textContent = word;
      document.body.append(probe);
      const needs = probe.getBoundingClientRect().width;
      probe.remove();
      if (needs > room + 1) {
        const where = `${cell.closest("table").id} ${cell.tagName.toLowerCase()}`;
        broken.push(`${where}: ${word} (${needs.toFixed(0)} px in ${room.toFixed(0)})`);
      }
    }
  }
  return broken;
}"""


async def broken_words(page: Page) -> list[str]:
    """Words that a table cell is too narrow for: the browser would break them letter by letter."""
    found: list[str] = await page.evaluate(BROKEN_WORDS)
    return found


async def job_state(session: aiohttp.ClientSession, base: str, key: str, job_id: str) -> str:
    async with session.get(
        f"{base}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"}
    ) as response:
        return str((await response.json())["state"])


async def open_with_key(page: Page, url: str, key: str) -> None:
    await page.goto(url)
    await page.fill("#key", key)
    await page.dispatch_event("#key", "change")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/setup")
async def test_the_dashboard_follows_workers_and_jobs_live(redis_url: str, tmp_path: Path) -> None:
    ops_key, ops = new_api_key("ops")
    alice_key, alice = new_api_key("alice")
    service = Service(
        tmp_path / "service",
        redis_url,
        OCRFLOW_API_KEYS=f"{ops},{alice}",
        OCRFLOW_ADMIN_CALLERS="key:ops",
        OCRFLOW_HANDLERS="fields,validate,raises",
    )
    workers = [service.start("worker"), service.start("worker")]
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nnot a pdf at all\n")
    try:
        async with aiohttp.ClientSession() as session, async_playwright() as playwright:
            await wait_healthy(session, service.base)
            for path in ("/v1/admin/overview", "/v1/admin/jobs", "/v1/admin/events"):
                headers = {"Authorization": f"Bearer {alice_key}"}
                async with session.get(service.base + path, headers=headers) as refused:
                    assert refused.status == 403, path
                    assert (await refused.json())["error"]["code"] == "forbidden"
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                page = await browser.new_page(
                    viewport={"width": 1280, "height": 1000}, accept_downloads=True
                )
                page.set_default_timeout(WAIT)
                refused: list[str] = []  # what the page's Content-Security-Policy blocked
                page.on("console", lambda m: refused.append(m.text) if "Policy" in m.text else None)
                await open_with_key(page, f"{service.base}/dashboard", ops_key)
                workers_table = page.locator("#workers tbody tr")
                await page.locator("#workers td.alive").nth(1).wait_for()  # both workers
                assert await workers_table.count() == 2
                await page.locator("#live.on").wait_for()

                # Jobs submitted while the page is open appear and end without a reload.
                done = await submit(
                    session, service.base, alice_key, long_pdf(tmp_path / "a.pdf", 3)
                )
                row = page.locator(f'#jobs tr[data-job="{done["id"]}"]')
                await row.locator("td.running").wait_for()
                await row.locator("td.succeeded").wait_for()
                assert "key:alice" in await row.inner_text()
                assert "3/3" in await row.inner_text()
                failed = await submit(session, service.base, alice_key, broken)
                bad = page.locator(f'#jobs tr[data-job="{failed["id"]}"]')
                await bad.locator("td.failed").wait_for()
                assert "invalid_pdf" in await bad.inner_text()
                # A job that read its text but whose handler failed says which, in its row.
                note = write_png(tmp_path / "note.png", ["A note"])
                half = await submit(
                    session, service.base, alice_key, note, handlers='{"raises": {}}'
                )
                partly = page.locator(f'#jobs tr[data-job="{half["id"]}"]')
                await partly.locator("td.succeeded").wait_for()
                await partly.locator("td.bad", has_text="raises: handler_failed").wait_for()

                # A job's detail: its timeline, its pages, a page beside its text.
                await row.click()
                await page.locator("#timeline", has_text="done").wait_for()
                assert await page.locator("#pages tbody tr").count() == 3
                await page.locator("#page-text", has_text="Line 1 of a page").wait_for()
                # (polled from outside: the page's CSP lets it evaluate no string of script)
                async with asyncio.timeout(WAIT / 1000):
                    while await page.evaluate(IMAGE_WIDTH) != 900:
                        await asyncio.sleep(0.1)
                async with page.expect_download() as download:  # with the operator's key
                    await page.locator("#detail-links a", has_text="text").click()
                saved = Path(await (await download.value).path())
                assert saved.read_text().startswith("Line 0 of a page")
                assert await broken_words(page) == []
                assert refused == []

                # On a phone: every word whole, every label readable, nothing wider than it.
                phone = await browser.new_page(viewport={"width": 390, "height": 844})
                phone.set_default_timeout(WAIT)
                await open_with_key(phone, f"{service.base}/dashboard", ops_key)
                await phone.locator(f'#jobs tr[data-job="{done["id"]}"] td.succeeded').wait_for()
                await phone.locator("#jobs-top", has_text="/min").wait_for()
                await phone.locator(f'#jobs tr[data-job="{done["id"]}"]').click()
                await phone.locator("#pages tbody tr").nth(2).wait_for()
                assert await broken_words(phone) == []
                assert await phone.evaluate("document.documentElement.scrollWidth") <= 390
                scale = await phone.locator(".chart-scale").inner_text()
                assert "jobs/min" in scale or "job/min" in scale
                assert "pages/min" in scale or "page/min" in scale
                assert " 1 jobs" not in await phone.locator("#rate").inner_text()
                await phone.close()

                # Cancel from the dashboard ends a running job cancelled.
                slow = await submit(
                    session, service.base, alice_key, long_pdf(tmp_path / "b.pdf", 8, tag="b")
                )
                slow_row = page.locator(f'#jobs tr[data-job="{slow["id"]}"]')
                await slow_row.locator("td.running").wait_for()
                await slow_row.click()
                await page.click("#cancel")
                await slow_row.locator("td.cancelled").wait_for()
                assert await job_state(session, service.base, alice_key, slow["id"]) == "cancelled"

                # A worker that stops is shown gone; the other stays alive.
                service.stop(workers.pop())
                await page.locator("#workers td.gone").wait_for()
                assert await page.locator("#workers td.alive").count() == 1
                await page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

                # Alice is no operator: the dashboard says so; her upload page lists only hers.
                theirs = await submit(
                    session, service.base, ops_key, write_png(tmp_path / "ops.png", ["ops"])
                )
                other = await browser.new_page(viewport={"width": 390, "height": 844})
                await open_with_key(other, f"{service.base}/dashboard", alice_key)
                await other.locator("#banner", has_text="403 forbidden").wait_for()
                await open_with_key(other, f"{service.base}/", alice_key)
                await other.locator("#recent tr", has_text="a.pdf").wait_for()
                listed = await other.locator("#recent").inner_text()
                assert "ops.png" not in listed and theirs["id"] not in listed
                assert "invalid_pdf" in listed  # her failed job shows its reason
                width = await other.evaluate("document.documentElement.scrollWidth")
                assert width <= 390
            finally:
                await browser.close()
    finally:
        service.close()


async def test_operators_see_every_callers_jobs_and_the_last_hour(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    ops_key, ops = new_api_key("ops")
    alice_key, alice = new_api_key("alice")
    bob_key, bob = new_api_key("bob")
    own = settings.model_copy(update={"api_keys": (ops, alice, bob), "admin_callers": ("key:ops",)})
    client: TestClient[Any, Any] = await aiohttp_client(create_app(own))
    as_ops, as_alice, as_bob = (
        {"Authorization": f"Bearer {key}"} for key in (ops_key, alice_key, bob_key)
    )
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nnot a pdf at all\n")
    queued = await client.post(
        "/v1/jobs", data=form(write_png(tmp_path / "q.png", ["waiting"])), headers=as_bob
    )
    waiting = (await queued.json())["id"]
    await asyncio.sleep(1.1)
    overview = await (await client.get("/v1/admin/overview", headers=as_ops)).json()
    assert overview["oldest_waiting_seconds"] >= 1.0  # no worker yet: bob's job waits

    async with running_worker(own):
        ids = []
        for name, path in (("alice", tmp_path / "a.png"), ("alice", broken), ("bob", None)):
            document = (
                path
                if path and path.suffix == ".pdf"
                else write_png(tmp_path / f"{name}-{len(ids)}.png", [f"page of {name}"])
            )
            headers = as_alice if name == "alice" else as_bob
            # Bob's job checks for a word its page does not hold: read, but its checks fail.
            rule = {"check": "pattern", "pattern": "invoice"}
            checks = (
                {"handlers": json.dumps({"validate": {"rules": [rule]}})} if path is None else {}
            )
            response = await client.post("/v1/jobs", data=form(document, **checks), headers=headers)
            assert response.status == 202
            ids.append((await response.json())["id"])
        for job_id in [waiting, *ids]:
            await wait_for_job(client, job_id, headers=as_ops)  # an operator sees every job

    listing = await (await client.get("/v1/admin/jobs", headers=as_ops)).json()
    assert [job["id"] for job in listing["jobs"]] == [*reversed(ids), waiting]
    failed = await (await client.get("/v1/admin/jobs?state=failed", headers=as_ops)).json()
    assert [(j["owner"], j["error"]["code"]) for j in failed["jobs"]] == [
        ("key:alice", "invalid_pdf")
    ]
    bobs = await (await client.get("/v1/admin/jobs?caller=key:bob", headers=as_ops)).json()
    assert [job["id"] for job in bobs["jobs"]] == [ids[2], waiting]
    checked = await (await client.get("/v1/admin/jobs?verdict=failed", headers=as_ops)).json()
    assert [job["id"] for job in checked["jobs"]] == [ids[2]]
    assert checked["jobs"][0]["state"] == "succeeded"
    passed = await (await client.get("/v1/admin/jobs?verdict=passed", headers=as_ops)).json()
    assert passed["jobs"] == []
    assert (await client.get("/v1/admin/jobs?verdict=maybe", headers=as_ops)).status == 400
    # Counted: since the start, and in this minute's figures (the dashboard's last hour).
    overview = await (await client.get("/v1/admin/overview", headers=as_ops)).json()
    assert overview["checks"] == {"failed": 1}
    assert sum(minute.get("checks_failed", 0) for minute in overview["throughput"]) == 1
    metrics = await (await client.get("/metrics")).text()
    assert 'ocrflow_checks_total{verdict="failed"} 1' in metrics
    first = await (await client.get("/v1/admin/jobs?limit=2", headers=as_ops)).json()
    rest = await (
        await client.get(f"/v1/admin/jobs?before={first['next_cursor']}", headers=as_ops)
    ).json()
    assert [j["id"] for j in first["jobs"] + rest["jobs"]] == [*reversed(ids), waiting]

    # The last hour, a minute at a time: what ended, and the pages read.
    overview = await (await client.get("/v1/admin/overview", headers=as_ops)).json()
    minutes = overview["throughput"]
    assert len(minutes) == 60 and minutes[-1]["minute"] <= time.time()
    ended = {state: sum(m.get(state, 0) for m in minutes) for state in ("succeeded", "failed")}
    assert ended == {"succeeded": 3, "failed": 1}
    assert sum(m.get("pages", 0) for m in minutes) == 3
    assert overview["oldest_waiting_seconds"] is None

    # The same overview in a terminal.
    base = str(client.make_url("/")).rstrip("/")
    code, out, err = await run_ocrflow("status", "--server", base, "--api-key", ops_key)
    assert code == 0, err
    assert (
        "jobs since the counters began: 4 accepted, 3 succeeded, 1 failed, 0 cancelled; "
        "checks 0 passed, 1 failed"
    ) in out
    assert "1 failed their checks" in out
    assert "queue: 0 high, 0 normal, 0 low waiting; 0 running; oldest wait -" in out
    code, out, err = await run_ocrflow("status", "--server", base, "--api-key", alice_key)
    assert code == 2 and "answered 403 (forbidden: key:alice is not an operator" in err
    code, _, err = await run_ocrflow("status", "--server", "http://127.0.0.1:9")
    assert code == 3 and "cannot reach http://127.0.0.1:9" in err

    # Not an operator: 403 on the operators' API, and another caller's job does not exist.
    assert (await client.get("/v1/admin/jobs", headers=as_alice)).status == 403
    assert (await client.get(f"/v1/jobs/{waiting}", headers=as_alice)).status == 404
    assert (await client.get(f"/v1/jobs/{ids[0]}", headers=as_alice)).status == 200
    # A page to look at, as large as asked: the worker's picture (shrunk), or one drawn.
    picture = await client.get(f"/v1/jobs/{ids[0]}/pages/1/image?width=300", headers=as_ops)
    assert picture.status == 200 and picture.content_type == "image/jpeg"
    assert Image.open(io.BytesIO(await picture.read())).width == 300
    drawn = await client.get(f"/v1/jobs/{ids[0]}/pages/1/image?width=1200", headers=as_ops)
    assert drawn.status == 200 and drawn.content_type == "image/png"
    assert Image.open(io.BytesIO(await drawn.read())).width == 1200
    assert (await client.get(f"/v1/jobs/{ids[0]}/pages/2/image", headers=as_ops)).status == 404
