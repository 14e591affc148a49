"""Clients that hold the ingress without finishing a request: slow headers, a dripping body,
and a flood of requests without a valid key."""

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ocrflow.http.app import create_app
from ocrflow.http.auth import new_api_key
from ocrflow.http.multipart import Pace
from ocrflow.settings import Settings
from tests.support import Service, wait_healthy


async def drip(
    host: str, port: int, head: bytes, piece: bytes, every: float, most: float
) -> tuple[bytes, float]:
    """Send `head`, then `piece` every `every` seconds until the server answers or closes (or
    `most` seconds pass); what it answered, and when."""
    reader, writer = await asyncio.open_connection(host, port)
    started = time.monotonic()
    writer.write(head)
    answer = b""
    try:
        while time.monotonic() - started < most:
            try:
                answer = await asyncio.wait_for(reader.read(4096), every)
                break
            except TimeoutError:
                writer.write(piece)
                await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
    return answer, time.monotonic() - started


async def test_a_dripping_body_is_cut_off(
    aiohttp_server: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 50 MB body sent at 100 B/s was never cut off."""
    monkeypatch.setattr(Pace, "GRACE", 1.0)
    server: TestServer = await aiohttp_server(create_app(settings), host="127.0.0.1")
    head = (
        b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 52428800\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n\r\n"
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        b"\x89PNG\r\n\x1a\n"
    )
    answer, seconds = await drip("127.0.0.1", server.port, head, b"\0" * 10, 0.1, 10)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"request_timeout"' in answer and seconds < 5


async def test_slow_headers_are_cut_off(redis_url: str, tmp_path: Path) -> None:
    """Slowloris once held 100 connections for a minute."""
    service = Service(tmp_path / "service", redis_url, OCRFLOW_IDLE_TIMEOUT="1")
    try:
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, service.base)
        head = b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\n"
        answer, seconds = await drip("127.0.0.1", service.port, head, b"X-Slow: 1\r\n", 0.3, 10)
    finally:
        service.close()
    assert answer == b"" and seconds < 4  # closed, with nothing to say


async def test_requests_without_a_valid_key_are_rate_limited(
    aiohttp_client: Any, settings: Settings
) -> None:
    """7,500 requests refused a key in 2 s once got 7,500 401s."""
    _, entry = new_api_key("alice")
    keyed = settings.model_copy(update={"api_keys": (entry,), "refused_rate_limit": 5.0})
    client: TestClient[Any, Any] = await aiohttp_client(create_app(keyed))
    headers = {"Authorization": "Bearer ofk_guessed"}
    statuses = [(await client.get("/v1/jobs", headers=headers)).status for _ in range(30)]
    assert statuses[:10] == [401] * 10  # the burst: twice the rate
    assert statuses.count(429) >= 15
    limited = await client.get("/v1/jobs", headers=headers)
    assert (await limited.json())["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
