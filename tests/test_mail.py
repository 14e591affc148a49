"""E-mail on completion through a real SMTP server (aiosmtpd); a dead server fails nothing."""

import asyncio
import json
from email import message_from_bytes
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiosmtpd.controller import Controller

from ocrflow.http.app import create_app
from ocrflow.runtime.redis_server import free_port
from ocrflow.settings import Settings
from ocrflow.worker import mail
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
        rules = [
            {"check": "pattern", "pattern": "mail", "name": "says mail"},
            {"check": "pattern", "pattern": "invoice", "name": "says invoice"},
        ]
        spec = json.dumps({"validate": {"rules": rules}})
        sent = form(png, notify_email="ana@example.org", handlers=spec)
        job = await (await client.post("/v1/jobs", data=sent)).json()
        done = await wait_for_job(client, job["id"])
        # The OCR succeeded; the checks did not: the job document says so in one place.
        assert done["state"] == "succeeded"
        assert done["verdict"] == {
            "passed": False,
            "failed": [{"rule": "says invoice", "reason": "the text: does not match invoice"}],
        }
        async with asyncio.timeout(20):
            while not inbox.messages:
                await asyncio.sleep(0.05)
    (message,) = inbox.messages
    assert message["To"] == "ana@example.org"
    assert message["Subject"] == "ocrflow: letter.png succeeded; failed 1 check"
    # What mail filters look for: a date, and an id of the message's own.
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert message["Message-ID"].startswith("<") and job["id"] in message["Message-ID"]
    parts = {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in message.walk()
        if not part.is_multipart()
    }
    assert f"https://ocr.example/v1/jobs/{job['id']}" in parts["text/plain"]
    assert "1 page read" in parts["text/plain"]
    assert f'href="https://ocr.example/v1/jobs/{job["id"]}/outputs/text"' in parts["text/html"]
    # The verdict first, each failed check in words; the handlers' runs; their outputs linked.
    assert (
        parts["text/plain"]
        .replace("\r\n", "\n")
        .startswith("It failed 1 check:\n- says invoice: the text: does not match invoice\n")
    )
    assert "validate: succeeded" in parts["text/plain"]
    assert "/outputs/report.html" in parts["text/html"]


async def test_a_mail_server_that_is_down_does_not_fail_the_job(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    own = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": free_port(),
            "smtp_starttls": False,
            "mail_backoff": 0.05,
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


def mail_settings(settings: Settings, port: int) -> Settings:
    update = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False}
    return settings.model_copy(update=update | {"allow_private_urls": True})


async def test_a_name_with_a_newline_from_a_url_is_made_safe_and_the_mail_is_sent(
    aiohttp_client: Any, aiohttp_server: Any, settings: Settings, smtp: Any, tmp_path: Path
) -> None:
    """A decoded %0A in a URL's last segment once reached the e-mail's Subject, where the mail
    library raised outside the error capture: no e-mail, and no record of it."""
    inbox, port = smtp
    png = write_png(tmp_path / "doc.png", ["named badly"]).read_bytes()

    async def document(_: web.Request) -> web.Response:
        return web.Response(body=png)

    documents = web.Application()
    documents.router.add_get("/{name}", document)
    server = await aiohttp_server(documents, host="127.0.0.1")
    own = mail_settings(settings, port)
    client: TestClient[Any, Any] = await aiohttp_client(create_app(own))
    url = str(server.make_url("/scan%0ABcc:%20evil@example.org%E2%80%A8%C2%85%E2%80%AE.png"))
    async with running_worker(own):
        body = {"url": url, "notify_email": "ana@example.org"}
        job = await (await client.post("/v1/jobs", json=body)).json()
        assert job["source"]["filename"] == "scanBcc: evil@example.org.png"
        final = await wait_for_job(client, job["id"])
        async with asyncio.timeout(20):
            while not inbox.messages:
                await asyncio.sleep(0.05)
        final = await (await client.get(f"/v1/jobs/{job['id']}")).json()
    assert final["source"]["filename"] == "scanBcc: evil@example.org.png"
    (message,) = inbox.messages
    assert message["Bcc"] is None and "\n" not in message["Subject"]
    assert [n["error"] for n in final["notifications"]] == [None]


async def test_a_message_that_cannot_be_made_is_recorded_once_not_lost(
    aiohttp_client: Any,
    settings: Settings,
    smtp: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, port = smtp
    own = mail_settings(settings, port)

    def broken(job: Any, settings: Settings) -> Any:
        raise ValueError("Header values may not contain linefeed or carriage return characters")

    monkeypatch.setattr(mail, "message_for", broken)
    client: TestClient[Any, Any] = await aiohttp_client(create_app(own))
    async with running_worker(own):
        png = write_png(tmp_path / "p.png", ["unsendable"])
        job = await (
            await client.post("/v1/jobs", data=form(png, notify_email="bo@example.org"))
        ).json()
        async with asyncio.timeout(20):
            while not (await (await client.get(f"/v1/jobs/{job['id']}")).json())["notifications"]:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # no retries follow a failure that cannot pass
        final = await (await client.get(f"/v1/jobs/{job['id']}")).json()
    assert final["state"] == "succeeded"
    (notification,) = final["notifications"]
    assert notification["error"].startswith("ValueError: Header values")
