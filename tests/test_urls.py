"""Documents fetched by URL: public addresses only by default; limits enforced while fetching."""

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from arq.worker import Worker

from ocrflow.http.app import create_app
from ocrflow.runtime.addresses import is_public
from ocrflow.settings import Settings
from tests.support import running_worker, wait_for_job, write_png


@pytest.fixture
async def documents(aiohttp_server: Any, tmp_path: Path) -> TestServer:
    png = write_png(tmp_path / "doc.png", ["Fetched from the web"]).read_bytes()

    async def doc(_: web.Request) -> web.Response:
        return web.Response(body=png, content_type="image/png")

    async def moved(_: web.Request) -> web.Response:
        raise web.HTTPFound("/doc.png")

    async def loop(_: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def big(_: web.Request) -> web.Response:
        return web.Response(body=png + b"\0" * 50_000)

    app = web.Application()
    for path, handler in (("/doc.png", doc), ("/moved", moved), ("/loop", loop), ("/big", big)):
        app.router.add_get(path, handler)
    server: TestServer = await aiohttp_server(app, host="127.0.0.1")
    return server


async def test_private_addresses_are_refused_by_default(
    client: TestClient[Any, Any], worker: Worker, documents: TestServer
) -> None:
    for url in (str(documents.make_url("/doc.png")), "ftp://example.com/a.pdf", "http://[::1]/"):
        refused = await client.post("/v1/jobs", json={"url": url})
        assert refused.status == 422
        assert (await refused.json())["error"]["code"] == "url_not_allowed"
    by_name = f"http://localhost:{documents.port}/doc.png"
    job = await (await client.post("/v1/jobs", json={"url": by_name})).json()
    final = await wait_for_job(client, job["id"])
    assert final["state"] == "failed"
    assert final["error"]["code"] == "url_not_allowed"
    assert final["attempt"] == 1


async def test_fetching_follows_redirects_and_enforces_limits(
    aiohttp_client: Any, settings: Settings, documents: TestServer
) -> None:
    own = settings.model_copy(update={"allow_private_urls": True, "max_upload_bytes": 30_000})
    client: TestClient[Any, Any] = await aiohttp_client(create_app(own))
    async with running_worker(own):
        outcome = {}
        for path in ("/moved", "/big", "/missing", "/loop"):
            body = {"url": str(documents.make_url(path)), "outputs": ["text"]}
            job = await (await client.post("/v1/jobs", json=body)).json()
            assert job["source"]["kind"] == "url" and job["source"]["sha256"] is None
            outcome[path] = await wait_for_job(client, job["id"])

    fetched = outcome["/moved"]
    assert fetched["state"] == "succeeded", fetched["error"]
    assert fetched["source"]["media_type"] == "image/png"
    assert fetched["source"]["filename"] == "doc.png" and len(fetched["source"]["sha256"]) == 64
    text = await client.get(f"/v1/jobs/{fetched['id']}/outputs/text")
    assert (await text.text()).split() == ["Fetched", "from", "the", "web"]
    assert outcome["/big"]["error"]["code"] == "payload_too_large"
    assert outcome["/missing"]["error"]["code"] == "url_fetch_failed"
    assert outcome["/loop"]["error"]["code"] == "url_fetch_failed"
    assert all(outcome[p]["attempt"] == 1 for p in ("/big", "/missing", "/loop"))


@pytest.mark.parametrize(
    "address",
    [
        "::127.0.0.1",  # IPv4-compatible loopback
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b:1::a9fe:a9fe",  # local-use NAT64
        "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
        "::ffff:0:a9fe:a9fe",  # IPv4-translated
        "::ffff:10.0.0.1",  # IPv4-mapped private
        "fec0::1",  # site-local
        "fc00::1",  # unique local
        "2001:db8::1",  # documentation
        "169.254.169.254",
        "100.64.0.1",
    ],
)
def test_addresses_that_reach_private_networks_are_not_public(address: str) -> None:
    assert not is_public(address)


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"]
)
def test_public_addresses_are(address: str) -> None:
    assert is_public(address)


async def test_an_ip_literal_not_in_dotted_decimal_is_refused_at_the_door(
    client: TestClient[Any, Any],
) -> None:
    """Octal, hex and short forms once slipped past the literal check, were fetched, failed to
    resolve and were retried as `url_unreachable`."""
    for host in (
        "0177.0.0.1",
        "2130706433",
        "0x7f.1",
        "127.1",
        "[::127.0.0.1]",
        "[64:ff9b::a9fe:a9fe]",
    ):
        refused = await client.post("/v1/jobs", json={"url": f"http://{host}/doc.pdf"})
        assert refused.status == 422, host
        assert (await refused.json())["error"]["code"] == "url_not_allowed"
    assert (await client.post("/v1/jobs", json={"url": "http://cafe.de/a.pdf"})).status == 202
