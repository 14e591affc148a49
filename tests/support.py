"""What the tests share, in one place: real workers started and stopped, jobs submitted and
waited for, and (from `tests/fixtures`, which the benchmarks use too) generated documents,
hostile files, ocrflow as processes and an SSE reader. Tests import helpers from here only."""

import asyncio
import contextlib
import io
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
from arq.worker import Worker

from ocrflow.settings import Settings
from ocrflow.worker.app import worker_settings
from tests.fixtures import hostile
from tests.fixtures.corpus import (
    FormEntry,
    Style,
    available_fonts,
    form_page,
    page_image,
    pdf_of,
    scan_page,
    stream_of,
    write_image_pdf,
    write_png,
    write_searchable_pdf,
)
from tests.fixtures.service import TERMINAL, Service, multipart, wait_healthy
from tests.fixtures.sse import Received, read_events

__all__ = [
    "TERMINAL",
    "FormEntry",
    "Received",
    "Service",
    "Style",
    "available_fonts",
    "form",
    "form_page",
    "hostile",
    "long_pdf",
    "multipart",
    "page_image",
    "pdf_of",
    "read_events",
    "run_ocrflow",
    "running_worker",
    "scan_page",
    "start_worker",
    "stop_worker",
    "stream_of",
    "submit",
    "wait_for_job",
    "wait_healthy",
    "wait_until",
    "words",
    "write_image_pdf",
    "write_png",
    "write_searchable_pdf",
]

LINES = [f"Line {n} of a page that takes Tesseract a little while" for n in range(40)]


async def start_worker(settings: Settings, **overrides: Any) -> tuple[Worker, asyncio.Task[None]]:
    """A real arq worker with a real process pool, running in the test's event loop."""
    arq_worker = Worker(
        **worker_settings(settings, handle_signals=False, poll_delay=0.05, **overrides)
    )
    return arq_worker, asyncio.create_task(arq_worker.async_run())


async def stop_worker(arq_worker: Worker, task: asyncio.Task[None]) -> None:
    # Let runs that are finishing record their end, so closing cancels nothing half-written.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10):
            while any(not t.done() for t in arq_worker.tasks.values()):
                await asyncio.sleep(0.02)
    with contextlib.suppress(asyncio.CancelledError):
        await arq_worker.close()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def running_worker(settings: Settings, **overrides: Any) -> AsyncIterator[Worker]:
    """A real worker for the length of the block."""
    arq_worker, task = await start_worker(settings, **overrides)
    try:
        yield arq_worker
    finally:
        await stop_worker(arq_worker, task)


async def wait_for_job(
    client: TestClient[Any, Any],
    job_id: str,
    timeout: float = 60,
    headers: dict[str, str] | None = None,
) -> Any:
    """Poll the job document until it reaches a terminal state."""
    async with asyncio.timeout(timeout):
        while True:
            response = await client.get(f"/v1/jobs/{job_id}", headers=headers)
            assert response.status == 200
            job = await response.json()
            if job["state"] in TERMINAL:
                return job
            await asyncio.sleep(0.05)


def form(path: Path, **fields: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for name, value in fields.items():
        data.add_field(name, value)
    # A file object rather than bytes: aiohttp warns that large raw bytes block the loop.
    data.add_field("file", io.BytesIO(path.read_bytes()), filename=path.name)
    return data


def words(text: str) -> list[str]:
    return text.lower().replace(":", " ").split()


async def submit(client: TestClient[Any, Any], path: Path, **fields: str) -> Any:
    response = await client.post("/v1/jobs", data=form(path, **fields))
    assert response.status == 202, await response.text()
    return response


def long_pdf(path: Path, pages: int = 8, tag: str = "") -> Path:
    """A document that keeps the pool busy for several seconds (`tag` makes it unique)."""
    image = page_image([f"{tag} {line}" for line in LINES], font_size=36, width=2400)
    image.save(path, save_all=True, append_images=[image] * (pages - 1), resolution=300)
    return path


async def wait_until(
    client: TestClient[Any, Any], job_id: str, check: Any, timeout: float = 60
) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            job = await (await client.get(f"/v1/jobs/{job_id}")).json()
            if check(job):
                return job
            await asyncio.sleep(0.05)


async def run_ocrflow(
    command: str, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """`ocrflow COMMAND ARGS` as a user runs it, with no OCRFLOW_* setting but `env`'s:
    its exit code, standard output and standard error."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OCRFLOW_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ocrflow",
        command,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean | (env or {}),
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
