"""Callers: API keys and JWTs, each caller alone with its jobs, and the limits that keep one
caller from crowding out the rest."""

import asyncio
import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from arq.worker import Worker
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ocrflow.http.app import create_app
from ocrflow.http.auth import exposure_problem, new_api_key
from ocrflow.settings import Settings
from tests.support import (
    Service,
    form,
    read_events,
    running_worker,
    wait_for_job,
    wait_healthy,
    write_png,
)

ALICE_KEY, ALICE = new_api_key("alice")
BOB_KEY, BOB = new_api_key("bob")
SECRET = "a-test-secret-of-decent-length-0123456789"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token(sub: str, *, key: Any = SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    body = {"sub": sub, "exp": int(time.time()) + 300, **claims}
    return jwt.encode(body, key, algorithm=algorithm)


def hs256_by_hand(claims: dict[str, Any], key: bytes) -> str:
    """The algorithm-confusion forgery (HMAC keyed with the public key), which PyJWT will not
    even produce."""

    def part(value: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


@pytest.fixture
def secured(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_keys": (ALICE, BOB), "jwt_secret": SECRET})


@pytest.fixture
async def server(aiohttp_server: Any, secured: Settings) -> TestServer:
    test_server: TestServer = await aiohttp_server(create_app(secured))
    return test_server


@pytest.fixture
async def nobody(aiohttp_client: Any, server: TestServer) -> TestClient[Any, Any]:
    caller: TestClient[Any, Any] = await aiohttp_client(server)
    return caller


@pytest.fixture
async def alice(aiohttp_client: Any, server: TestServer) -> TestClient[Any, Any]:
    caller: TestClient[Any, Any] = await aiohttp_client(server, headers=bearer(ALICE_KEY))
    return caller


@pytest.fixture
async def bob(aiohttp_client: Any, server: TestServer) -> TestClient[Any, Any]:
    caller: TestClient[Any, Any] = await aiohttp_client(server, headers={"X-API-Key": BOB_KEY})
    return caller


async def accepted(client: TestClient[Any, Any], path: Path, **fields: str) -> Any:
    response = await client.post("/v1/jobs", data=form(path, **fields))
    assert response.status == 202, await response.text()
    return await response.json()


async def test_requests_without_a_known_key_are_refused(
    nobody: TestClient[Any, Any], tmp_path: Path
) -> None:
    png = write_png(tmp_path / "a.png", ["hello"])
    for headers in ({}, bearer("ofk_not-a-key"), {"X-API-Key": ALICE_KEY + "x"}, bearer("")):
        response = await nobody.post("/v1/jobs", data=form(png), headers=headers)
        assert response.status == 401, headers
        assert (await response.json())["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # The page and the health checks stay open; unknown routes are still plain 404s.
    for path, status in (("/", 200), ("/healthz", 200), ("/readyz", 200), ("/nope", 404)):
        response = await nobody.get(path)
        assert response.status == status, path


async def test_keys_are_kept_only_as_hashes(secured: Settings) -> None:
    assert ALICE_KEY not in "".join(secured.api_keys)
    assert ALICE.startswith("alice:") and len(ALICE.split(":")[1]) == 64
    with pytest.raises(ValueError, match="name:sha256"):
        Settings(_env_file=None, api_keys=("alice:" + ALICE_KEY,))


async def test_a_caller_sees_only_its_own_jobs(
    alice: TestClient[Any, Any], bob: TestClient[Any, Any], secured: Settings, tmp_path: Path
) -> None:
    png = write_png(tmp_path / "mine.png", ["Only Alice may read this"])
    async with running_worker(secured):
        job = await accepted(alice, png, outputs="text,json")
        done = await wait_for_job(alice, job["id"])
    assert done["state"] == "succeeded" and done["owner"] == "key:alice"
    job_path = f"/v1/jobs/{job['id']}"
    attempts = [
        ("GET", job_path),
        ("GET", job_path + "/result"),
        ("GET", job_path + "/outputs/text"),
        ("GET", job_path + "/events"),
        ("POST", job_path + "/cancel"),
        ("POST", job_path + "/retry"),
    ]
    for method, path in attempts:
        response = await bob.request(method, path)
        assert response.status == 404, (method, path)
        assert (await response.json())["error"]["code"] == "job_not_found"
    assert (await (await bob.get("/v1/jobs")).json())["jobs"] == []
    # Alice herself gets all of it.
    assert (await alice.get(job_path + "/outputs/text")).status == 200
    listed = (await (await alice.get("/v1/jobs")).json())["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]


async def test_identical_submissions_never_share_across_callers(
    alice: TestClient[Any, Any], bob: TestClient[Any, Any], tmp_path: Path
) -> None:
    png = write_png(tmp_path / "same.png", ["the same bytes"])
    headers = {"Idempotency-Key": "same-key"}
    first = await (await alice.post("/v1/jobs", data=form(png), headers=headers)).json()
    again = await alice.post("/v1/jobs", data=form(png), headers=headers)
    assert (await again.json())["id"] == first["id"]  # same caller, same key: same job
    theirs = await bob.post("/v1/jobs", data=form(png), headers=headers)
    assert theirs.status == 202 and "Ocrflow-Reused" not in theirs.headers
    assert (await theirs.json())["id"] != first["id"]


async def test_the_all_jobs_feed_carries_only_the_callers_jobs(
    alice: TestClient[Any, Any], bob: TestClient[Any, Any], tmp_path: Path
) -> None:
    feed = await bob.get("/v1/events")
    assert feed.status == 200
    theirs = await accepted(alice, write_png(tmp_path / "a.png", ["Alice"]))
    mine = await accepted(bob, write_png(tmp_path / "b.png", ["Bob"]))
    seen: list[str] = []
    async with asyncio.timeout(10):
        async for event in read_events(feed):
            seen.append(event.data["job_id"])
            if event.data["job_id"] == mine["id"]:
                break
    feed.close()
    assert theirs["id"] not in seen
    # A late reader replaying the stream gets the same view.
    replay = await bob.get("/v1/events")
    async with asyncio.timeout(10):
        async for event in read_events(replay):
            assert event.data["job_id"] == mine["id"]
            break
    replay.close()


async def test_event_feeds_take_the_key_as_a_query_parameter_and_nothing_else_does(
    nobody: TestClient[Any, Any], alice: TestClient[Any, Any], tmp_path: Path
) -> None:
    job = await accepted(alice, write_png(tmp_path / "a.png", ["feed"]))
    query = {"access_token": ALICE_KEY}
    feed = await nobody.get(f"/v1/jobs/{job['id']}/events", params=query)
    assert feed.status == 200
    feed.close()
    assert (await nobody.get(f"/v1/jobs/{job['id']}", params=query)).status == 401


async def test_jwt_callers_hs256_and_rs256(
    aiohttp_client: Any, settings: Settings, secured: Settings, tmp_path: Path
) -> None:
    png = write_png(tmp_path / "t.png", ["token"])
    client = await aiohttp_client(create_app(secured))
    ok = await client.post(
        "/v1/jobs", data=form(png, notify="true"), headers=bearer(token("u-1", email="u1@x.org"))
    )
    assert ok.status == 202, await ok.text()
    job = await ok.json()
    assert job["owner"] == "jwt:u-1" and job["notify_email"] == "u1@x.org"
    refused = [
        token("u-1", exp=int(time.time()) - 3600),  # expired
        token("u-1", key="another-secret-of-decent-length-0123"),  # wrong signature
        jwt.encode({"sub": "u-1"}, SECRET, algorithm="HS256"),  # no expiry
        token("u-1", key="", algorithm="none"),  # unsigned
    ]
    for bad in refused:
        response = await client.get(f"/v1/jobs/{job['id']}", headers=bearer(bad))
        assert response.status == 401, bad

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem_file = tmp_path / "public.pem"
    pem_file.write_bytes(public_pem)
    rs = settings.model_copy(update={"jwt_public_key": str(pem_file), "jwt_audience": "ocrflow"})
    rs_client = await aiohttp_client(create_app(rs))
    good = token("svc", key=private, algorithm="RS256", aud="ocrflow")
    response = await rs_client.post("/v1/jobs", data=form(png), headers=bearer(good))
    assert response.status == 202 and (await response.json())["owner"] == "jwt:svc"
    wrong_audience = token("svc", key=private, algorithm="RS256", aud="other")
    forged = hs256_by_hand(
        {"sub": "svc", "aud": "ocrflow", "exp": int(time.time()) + 300}, public_pem
    )
    for bad in (wrong_audience, forged):
        response = await rs_client.post("/v1/jobs", data=form(png), headers=bearer(bad))
        assert response.status == 401


async def test_request_rate_is_limited_per_caller(
    aiohttp_client: Any, secured: Settings, aiohttp_server: Any
) -> None:
    limited = secured.model_copy(update={"rate_limit": 1.0, "rate_burst": 3})
    server = await aiohttp_server(create_app(limited))
    alice = await aiohttp_client(server, headers=bearer(ALICE_KEY))
    bob = await aiohttp_client(server, headers=bearer(BOB_KEY))
    statuses = [(await alice.get("/v1/jobs")).status for _ in range(3)]
    refused = await alice.get("/v1/jobs")
    assert statuses == [200, 200, 200] and refused.status == 429
    assert (await refused.json())["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 2
    assert (await bob.get("/v1/jobs")).status == 200  # another caller has its own allowance
    await asyncio.sleep(1.1)
    assert (await alice.get("/v1/jobs")).status == 200


async def test_active_jobs_per_caller_and_the_backlog_are_limited(
    aiohttp_client: Any, secured: Settings, aiohttp_server: Any, tmp_path: Path
) -> None:
    limited = secured.model_copy(update={"max_active_jobs_per_caller": 2, "max_backlog": 4})
    server = await aiohttp_server(create_app(limited))
    alice = await aiohttp_client(server, headers=bearer(ALICE_KEY))
    bob = await aiohttp_client(server, headers=bearer(BOB_KEY))
    pngs = [write_png(tmp_path / f"{n}.png", [f"page {n}"]) for n in range(5)]
    jobs = [await accepted(alice, pngs[n]) for n in range(2)]
    over = await alice.post("/v1/jobs", data=form(pngs[2]))
    assert over.status == 429 and over.headers["Retry-After"]
    assert (await over.json())["error"]["code"] == "too_many_active_jobs"
    # A job that ends frees its place.
    assert (await alice.post(f"/v1/jobs/{jobs[0]['id']}/cancel")).status == 200
    await accepted(alice, pngs[2])
    # Four in the queue (the cancelled one stays until a worker skips it): full for everyone.
    await accepted(bob, pngs[3])
    full = await bob.post("/v1/jobs", data=form(pngs[4]))
    assert full.status == 503 and full.headers["Retry-After"]
    assert (await full.json())["error"]["code"] == "backlog_full"
    listed = (await (await bob.get("/v1/jobs")).json())["jobs"]
    assert len(listed) == 1  # nothing half-accepted was left behind


async def test_monitoring_needs_its_token_or_a_monitoring_network(
    aiohttp_client: Any, secured: Settings
) -> None:
    closed = secured.model_copy(
        update={"monitoring_networks": ("10.0.0.0/8",), "monitoring_token": "watch-it"}
    )
    client = await aiohttp_client(create_app(closed))
    for path in ("/v1/status", "/metrics"):
        response = await client.get(path, headers=bearer(ALICE_KEY))  # a caller's key is not it
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "forbidden"
        assert (await client.get(path, headers=bearer("watch-it"))).status == 200
    local = await aiohttp_client(create_app(secured))  # tests connect from 127.0.0.1
    assert (await local.get("/metrics")).status == 200


async def test_ocrflow_web_refuses_a_public_address_without_authentication(
    settings: Settings, tmp_path: Path
) -> None:
    public = settings.model_copy(update={"host": "0.0.0.0"})
    assert exposure_problem(public) is not None
    assert exposure_problem(settings) is None  # loopback
    assert exposure_problem(public.model_copy(update={"api_keys": (ALICE,)})) is None
    assert exposure_problem(public.model_copy(update={"allow_unauthenticated": True})) is None
    for command in ("web", "up"):
        done = subprocess.run(
            [sys.executable, "-m", "ocrflow", command, "--host", "0.0.0.0"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "OCRFLOW_REDIS_URL": settings.redis_url or ""},
        )
        assert done.returncode == 2
        assert "without authentication" in done.stderr


async def test_an_anonymous_service_still_works_for_everyone_on_loopback(
    client: TestClient[Any, Any], worker: Worker, tmp_path: Path
) -> None:
    job = await accepted(client, write_png(tmp_path / "a.png", ["anonymous"]))
    assert job["owner"] == "anonymous"
    assert (await wait_for_job(client, job["id"]))["state"] == "succeeded"


def test_a_bad_setting_is_one_clear_line_not_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ocrflow", "web"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "OCRFLOW_API_KEYS": "alice:" + ALICE_KEY},
    )
    assert done.returncode == 2
    assert done.stderr.startswith("ocrflow web: OCRFLOW_API_KEYS: ")
    assert "Traceback" not in done.stderr and ALICE_KEY not in done.stderr


async def test_keys_never_reach_the_access_log(redis_url: str, tmp_path: Path) -> None:
    """The event feeds take `?access_token=` (a browser's EventSource cannot send headers):
    `ocrflow web` logs every request without it, and without any key header."""
    key, entry = new_api_key("alice")
    service = Service(
        tmp_path / "service", redis_url, OCRFLOW_API_KEYS=entry, OCRFLOW_LOG_LEVEL="INFO"
    )
    try:
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, service.base)
            async with session.get(f"{service.base}/v1/jobs?access_token={key}") as denied:
                assert denied.status == 401  # only the feeds take the key in the query
            feed = f"/v1/jobs/j_01m8zbq5p7bvm9an3vk3v7/events?access_token={key}&x=1"
            async with session.get(service.base + feed) as response:
                assert response.status == 404  # the key was taken: there is no such job
            headers = {"Authorization": f"Bearer {key}", "X-API-Key": key}
            async with session.get(f"{service.base}/v1/jobs", headers=headers) as listed:
                assert listed.status == 200
    finally:
        service.close()
    log = (tmp_path / "service" / "service.log").read_text()
    assert "/v1/jobs/j_01m8zbq5p7bvm9an3vk3v7/events?access_token=redacted&x=1" in log
    assert key not in log and key.removeprefix("ofk_") not in log
