"""E-mail on completion through a real SMTP server (aiosmtpd); a dead server fails nothing."""

import asyncio
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiosmtpd.controller import Controller

from ocrflow.handlers.http.app import create_app
from ocrflow.handlers.runtime.redis_server import free_port
from ocrflow.handlers.settings import Settings
from tests.support import form, running_worker, wait_for_job, write_png


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Any:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


async def test_an_email_arrives_when_the_job_is_done(
    aiohttp_client: Any, settings: Settings, smtp: Any, tmp_path: Path
) -> None:
    inbox, port = smtp
    own = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_starttls": False,
            "public_url": "https://ocr.example",
        }
    )
    client: TestClient[Any, Any] = await aiohttp_client(create_app(own))
    async with running_worker(own):
        png = write_png(tmp_path / "letter.png", ["mail me"])
        job = await (
            await client.post("/v1/jobs", data=form(png, notify_email="ana@example.org"))
        ).json()
        assert (await wait_for_job(client, job["id"]))["state"] == "succeeded"
        async with asyncio.timeout(20):
            while not inbox.messages:
                await asyncio.sleep(0.05)
    (message,) = inbox.messages
    assert message["To"] == "ana@example.org"
    assert "letter.png succeeded" in message["Subject"]
    parts = {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in message.walk()
        if not part.is_multipart()
    }
    assert f"https://ocr.example/v1/jobs/{job['id']}" in parts["text/plain"]
    assert f'href="https://ocr.example/v1/jobs/{job["id"]}/outputs/text"' in parts["text/html"]


async def test_a_mail_server_that_is_down_does_not_fail_the_job(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    own = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": free_port(),
            "smtp_starttls": False,
            "callback_backoff": 0.05,
        }
    )
    client: TestClient[Any, Any] = await aiohttp_client(create_app(own))
    async with running_worker(own):
        png = write_png(tmp_path / "p.png", ["nobody listens"])
        job = await (
            await client.post("/v1/jobs", data=form(png, notify_email="bo@example.org"))
        ).json()
        async with asyncio.timeout(30):
            while (
                len((await (await client.get(f"/v1/jobs/{job['id']}")).json())["notifications"]) < 3
            ):
                await asyncio.sleep(0.05)
        final = await (await client.get(f"/v1/jobs/{job['id']}")).json()
    assert final["state"] == "succeeded"
    assert all(n["error"] for n in final["notifications"])


async def test_a_bad_address_is_refused(client: TestClient[Any, Any], tmp_path: Path) -> None:
    png = write_png(tmp_path / "p.png", ["x"])
    response = await client.post("/v1/jobs", data=form(png, notify_email="not an address"))
    assert response.status == 422
