"""Live progress: every event in order, resumable without gaps or duplicates, cheap to fan out."""

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from arq.worker import Worker
from redis.asyncio import Redis

from ocrflow.http.app import create_app
from ocrflow.http.auth import new_api_key
from ocrflow.http.pubsub import QUEUE_LIMIT, Subscription
from ocrflow.http.state import HUB
from ocrflow.jobs.events import Event
from ocrflow.settings import Settings
from tests.support import Received, form, read_events, submit, write_image_pdf, write_png

PAGES = [["First page of three"], ["Second page of three"], ["Third page of three"]]
TERMINAL = {"done", "failed", "cancelled"}


async def collect(
    client: TestClient[Any, Any], path: str, last_id: str | None = None, stop_after: int = 0
) -> list[Received]:
    headers = {"Last-Event-ID": last_id} if last_id else {}
    received: list[Received] = []
    async with asyncio.timeout(60):
        response = await client.get(path, headers=headers)
        assert response.status == 200, await response.text()
        async for event in read_events(response):
            received.append(event)
            if len(received) == stop_after:
                response.close()  # the client goes away mid-job
                break
    return received


def ordered(ids: list[str | None]) -> bool:
    keys = [tuple(int(part) for part in str(i).split("-")) for i in ids]
    return keys == sorted(keys) and len(set(keys)) == len(keys)


async def test_a_job_streams_every_event_in_order(
    client: TestClient[Any, Any], worker: Worker, tmp_path: Path
) -> None:
    job = await (await submit(client, write_image_pdf(tmp_path / "three.pdf", PAGES))).json()
    events = await collect(client, f"/v1/jobs/{job['id']}/events")

    kinds = [event.kind for event in events]
    assert kinds[:2] == ["state", "state"]
    assert [e.data["state"] for e in events[:2]] == ["queued", "running"]
    assert kinds.count("page") == 3
    assert kinds[-1] == "done"
    progress = [e.data for e in events if e.kind == "progress"]
    assert [p["pages_done"] for p in progress] == [0, 1, 2, 3]
    assert progress[-1]["fraction"] == 1.0 and progress[-1]["pages_total"] == 3
    assert sorted(e.data["number"] for e in events if e.kind == "page") == [1, 2, 3]
    assert all(e.data["words"] == 4 for e in events if e.kind == "page")
    final = events[-1].data["job"]
    assert final["state"] == "succeeded"
    assert final["outputs"]["text"].startswith("http://")
    assert ordered([event.id for event in events])


async def test_reconnecting_with_last_event_id_loses_and_repeats_nothing(
    client: TestClient[Any, Any], worker: Worker, tmp_path: Path
) -> None:
    job = await (await submit(client, write_image_pdf(tmp_path / "three.pdf", PAGES))).json()
    path = f"/v1/jobs/{job['id']}/events"
    first = await collect(client, path, stop_after=3)
    rest = await collect(client, path, last_id=first[-1].id)
    everything = await collect(client, path)  # after the end: the whole history, then close

    assert everything[-1].kind == "done"
    assert [e.id for e in first + rest] == [e.id for e in everything]
    assert [e.data for e in first + rest] == [e.data for e in everything]


async def test_a_finished_job_replays_and_closes(
    client: TestClient[Any, Any], worker: Worker, tmp_path: Path
) -> None:
    job = await (await submit(client, write_image_pdf(tmp_path / "one.pdf", PAGES[:1]))).json()
    await collect(client, f"/v1/jobs/{job['id']}/events")
    again = await collect(client, f"/v1/jobs/{job['id']}/events")
    assert again[-1].kind == "done"
    assert client.app[HUB].clients == 0


async def test_stream_headers_keep_proxies_from_buffering(
    client: TestClient[Any, Any], worker: Worker, tmp_path: Path
) -> None:
    job = await (await submit(client, write_image_pdf(tmp_path / "one.pdf", PAGES[:1]))).json()
    response = await client.get(f"/v1/jobs/{job['id']}/events")
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    response.close()


async def test_unknown_job_stream_is_404_json(client: TestClient[Any, Any]) -> None:
    response = await client.get("/v1/jobs/j_nope/events")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "job_not_found"


async def test_a_vanished_client_is_forgotten_at_once(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    job = await (await submit(client, write_image_pdf(tmp_path / "one.pdf", PAGES[:1]))).json()
    hub = client.app[HUB]
    response = await client.get(f"/v1/jobs/{job['id']}/events")
    async with asyncio.timeout(10):
        while hub.clients != 1:
            await asyncio.sleep(0.01)
    response.close()
    async with asyncio.timeout(10):
        while hub.clients != 0:
            await asyncio.sleep(0.01)


async def test_the_all_jobs_feed_carries_every_job(
    client: TestClient[Any, Any], worker: Worker, tmp_path: Path
) -> None:
    session = aiohttp.ClientSession()
    try:
        response = await session.get(client.make_url("/v1/events"))
        pdfs = [write_image_pdf(tmp_path / f"{n}.pdf", [[f"Job {n}"]]) for n in range(2)]
        ids = {(await (await submit(client, pdf)).json())["id"] for pdf in pdfs}
        finished: set[str] = set()
        async with asyncio.timeout(60):
            async for event in read_events(response):
                if event.kind in TERMINAL:
                    finished.add(event.data["job_id"])
                if finished >= ids:
                    break
        response.close()
    finally:
        await session.close()
    assert finished >= ids


async def test_a_client_that_falls_behind_is_told_to_replay_not_dropped_silently() -> None:
    subscription = Subscription("j_x")
    events = [
        Event(id=f"1-{n}", job_id="j_x", kind="progress", data={}, ts=0.0)
        for n in range(QUEUE_LIMIT + 10)
    ]
    for event in events:
        subscription.offer(event)
    received = [await subscription.next() for _ in range(QUEUE_LIMIT)]
    assert received == events[:QUEUE_LIMIT]
    assert await subscription.next() == "resync"
    subscription.offer("closed")
    assert await subscription.next() == "closed"


async def test_a_caller_holds_a_bounded_number_of_streams(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    """2,000 streams of one caller were once all accepted by one ingress."""
    client: TestClient[Any, Any] = await aiohttp_client(
        create_app(settings.model_copy(update={"max_streams_per_caller": 2}))
    )
    job = await (await submit(client, write_png(tmp_path / "p.png", ["streams"]))).json()
    first = await client.get("/v1/events")
    second = await client.get(f"/v1/jobs/{job['id']}/events")
    assert first.status == second.status == 200
    refused = await client.get("/v1/events")
    assert refused.status == 429 and refused.headers["Retry-After"]
    assert (await refused.json())["error"]["code"] == "too_many_streams"
    first.close()
    async with asyncio.timeout(5):  # its place is freed as soon as the server sees it go
        while (again := await client.get("/v1/events")).status == 429:
            await asyncio.sleep(0.05)
    assert again.status == 200
    again.close()
    second.close()


async def test_the_feed_of_all_jobs_reads_only_the_callers_own_events(
    aiohttp_client: Any, settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    alice_key, alice = new_api_key("alice")
    bob_key, bob = new_api_key("bob")
    client: TestClient[Any, Any] = await aiohttp_client(
        create_app(settings.model_copy(update={"api_keys": (alice, bob)}))
    )
    for n in range(3):
        png = write_png(tmp_path / f"{n}.png", [f"alice {n}"])
        headers = {"Authorization": f"Bearer {alice_key}"}
        assert (await client.post("/v1/jobs", data=form(png), headers=headers)).status == 202
    assert await redis.xlen("ocrflow:owner-events:key:alice") == 3
    assert not await redis.exists("ocrflow:owner-events:key:bob", "ocrflow:events")
    feed = await client.get("/v1/events", headers={"Authorization": f"Bearer {bob_key}"})
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(0.5):
            async for event in read_events(feed):
                raise AssertionError(f"bob saw {event}")
    feed.close()
