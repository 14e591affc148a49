"""Signed callbacks to a real HTTP receiver: retried until it answers, refused where it must be."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ocrflow.http.app import create_app
from ocrflow.settings import Settings
from ocrflow.worker.callbacks import SIGNATURE_HEADER, signature_header, verify
from tests.support import form, running_worker, wait_for_job, write_png

SECRET = "callback-secret"


class Receiver:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[tuple[bytes, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((await request.read(), request.headers.get(SIGNATURE_HEADER, "")))
        if len(self.received) <= self.failures:
            return web.Response(status=500)
        return web.Response(status=204)


@pytest.fixture
async def receiver(aiohttp_server: Any) -> AsyncIterator[tuple[Receiver, TestServer]]:
    hook = Receiver(failures=2)
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    server: TestServer = await aiohttp_server(app, host="127.0.0.1")
    yield hook, server


async def test_a_signed_callback_arrives_on_the_third_try(
    aiohttp_client: Any, settings: Settings, receiver: tuple[Receiver, TestServer], tmp_path: Path
) -> None:
    hook, server = receiver
    own = settings.model_copy(
        update={"webhook_secret": SECRET, "allow_private_urls": True, "callback_backoff": 0.05}
    )
    client: TestClient[Any, Any] = await aiohttp_client(create_app(own))
    async with running_worker(own):
        url = str(server.make_url("/hook"))
        png = write_png(tmp_path / "p.png", ["call me back"])
        spec = json.dumps(
            {
                "fields": {"fields": [{"name": "who", "pattern": "call (\\w+)"}]},
                "validate": {"rules": [{"check": "one_of", "field": "who", "values": ["you"]}]},
            }
        )
        sent = form(png, callback_url=url, handlers=spec)
        job = await (await client.post("/v1/jobs", data=sent)).json()
        assert (await wait_for_job(client, job["id"]))["state"] == "succeeded"
        async with asyncio.timeout(30):
            while len(hook.received) < 3:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        final = await (await client.get(f"/v1/jobs/{job['id']}")).json()

    assert len(hook.received) == 3
    body, signature = hook.received[-1]
    assert verify(SECRET, signature, body)
    assert not verify("not-the-secret", signature, body)
    assert not verify(SECRET, signature, body.replace(b"succeeded", b"failed"))
    document = json.loads(body)
    assert document["id"] == job["id"] and document["state"] == "succeeded"
    assert document["outputs"]["text"].endswith(f"/v1/jobs/{job['id']}/outputs/text")
    # The handlers' summaries come with it, and their outputs' links.
    assert document["handlers"]["fields"]["summary"] == {"found": 1, "missing": []}
    assert document["outputs"]["fields.json"].endswith(f"/v1/jobs/{job['id']}/outputs/fields.json")
    # And the verdict: read, but its check failed, in words.
    assert document["verdict"] == {
        "passed": False,
        "failed": [{"rule": "who:one_of", "reason": "who: 'me' is not one of you"}],
    }
    assert [a["error"] for a in final["callbacks"]] == ["HTTP 500", "HTTP 500", None]


async def test_callbacks_to_private_addresses_are_refused_by_default(
    aiohttp_client: Any, settings: Settings, receiver: tuple[Receiver, TestServer], tmp_path: Path
) -> None:
    hook, server = receiver
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    png = write_png(tmp_path / "p.png", ["no callback"])
    literal = await client.post("/v1/jobs", data=form(png, callback_url=str(server.make_url("/"))))
    assert literal.status == 422
    assert (await literal.json())["error"]["code"] == "url_not_allowed"
    refused = await client.post("/v1/jobs", data=form(png, callback_url="file:///etc/passwd"))
    assert refused.status == 422

    async with running_worker(settings):
        by_name = f"http://localhost:{server.port}/hook"  # a name that resolves to loopback
        job = await (await client.post("/v1/jobs", data=form(png, callback_url=by_name))).json()
        await wait_for_job(client, job["id"])
        async with asyncio.timeout(20):
            while not (await (await client.get(f"/v1/jobs/{job['id']}")).json())["callbacks"]:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        final = await (await client.get(f"/v1/jobs/{job['id']}")).json()
    assert hook.received == []
    (attempt,) = final["callbacks"]  # refused at once, never retried
    assert "not a public address" in attempt["error"]


def test_signatures_expire() -> None:
    body = b'{"id": "j_1"}'
    old = signature_header(SECRET, body, timestamp=int(time.time()) - 3600)
    assert not verify(SECRET, old, body)
    assert verify(SECRET, signature_header(SECRET, body), body)
    assert not verify(SECRET, "garbage", body)


async def test_every_job_that_asked_for_a_callback_gets_one_whatever_answered_it(
    aiohttp_client: Any, settings: Settings, receiver: tuple[Receiver, TestServer], tmp_path: Path
) -> None:
    """The same document sent again with a callback was once answered by the job in flight (or
    from the cache) and its callback never sent."""
    hook, server = receiver
    hook.failures = 0
    own = settings.model_copy(update={"allow_private_urls": True, "callback_backoff": 0.05})
    client: TestClient[Any, Any] = await aiohttp_client(create_app(own))
    png = write_png(tmp_path / "p.png", ["tell us all"])

    async def post(tag: str) -> Any:
        url = str(server.make_url(f"/hook?tag={tag}"))
        return await (await client.post("/v1/jobs", data=form(png, callback_url=url))).json()

    first, in_flight = await post("first"), await post("in-flight")
    assert in_flight["id"] != first["id"]
    async with running_worker(own):
        for job in (first, in_flight):
            assert (await wait_for_job(client, job["id"]))["state"] == "succeeded"
        cached = await post("cached")
        assert cached["cached"] is True
        async with asyncio.timeout(30):
            while len(hook.received) < 3:
                await asyncio.sleep(0.05)
    told = sorted(json.loads(body)["id"] for body, _ in hook.received)
    assert told == sorted([first["id"], in_flight["id"], cached["id"]])
