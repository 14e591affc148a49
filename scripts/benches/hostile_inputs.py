"""Hostile inputs against a real ocrflow (redis-server, `ocrflow web`, one `ocrflow worker`):
for each, the HTTP answer and error code, how its job ended, the worker's and the ingress's
peak memory while it ran, and whether the same worker went on to read a good document
afterwards.

Run it through `scripts/bench hostile_inputs`; it prints a Markdown table.
"""

import argparse
import asyncio
import contextlib
import io
import json
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from ocrflow.runtime.redis_server import RedisServer, free_port
from tests.fixtures import hostile
from tests.fixtures.corpus import write_png
from tests.fixtures.service import Service, multipart, wait_ended, wait_healthy

MIB = 1024 * 1024
UPLOAD_LIMIT = 16 * MIB
MEMORY_LIMIT = 2048 * MIB


@dataclass
class Case:
    name: str
    send: Callable[[aiohttp.ClientSession, str, Any], Any]
    make: Callable[[Path], Path] | None = None  # the input file, made before the clock starts


@dataclass
class Outcome:
    status: int | str
    code: str = ""
    job: dict[str, Any] = field(default_factory=dict)


def upload(filename: str | None = None, **fields: str) -> Callable[..., Any]:
    async def send(session: aiohttp.ClientSession, base: str, path: Path) -> Outcome:
        # Written by hand: aiohttp's own form writer refuses control characters in names.
        body, content_type = multipart(
            {name: value.encode() for name, value in fields.items()},
            filename or path.name,
            path.read_bytes(),
        )
        headers = {"Content-Type": content_type}
        async with session.post(f"{base}/v1/jobs", data=body, headers=headers) as response:
            return await _outcome(response)

    return send


def json_body(body: str) -> Callable[..., Any]:
    async def send(session: aiohttp.ClientSession, base: str, path: None) -> Outcome:
        headers = {"Content-Type": "application/json"}
        async with session.post(f"{base}/v1/jobs", data=body, headers=headers) as response:
            return await _outcome(response)

    return send


async def _outcome(response: aiohttp.ClientResponse) -> Outcome:
    body = await response.json(content_type=None)
    if response.status == 202:
        return Outcome(response.status, job=body)
    return Outcome(response.status, body["error"]["code"])


async def oversized(session: aiohttp.ClientSession, base: str, path: None) -> Outcome:
    """64 MiB streamed without a Content-Length against a 16 MiB limit."""
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n\r\n'
        yield b"\x89PNG\r\n\x1a\n"
        chunk = b"\0" * MIB
        for _ in range(64):
            sent += len(chunk)
            yield chunk
        yield b"\r\n--b--\r\n"

    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    try:
        async with session.post(f"{base}/v1/jobs", data=body(), headers=headers) as response:
            outcome = await _outcome(response)
    except aiohttp.ClientError:
        return Outcome("closed", f"connection closed after {sent // MIB} MiB")
    outcome.code += f" (after {sent // MIB} MiB sent)"
    return outcome


async def many_fields(session: aiohttp.ClientSession, base: str, path: None) -> Outcome:
    form = aiohttp.FormData()
    for n in range(5000):
        form.add_field(f"field{n}", "x")
    form.add_field("file", io.BytesIO(b"\x89PNG\r\n\x1a\n"), filename="a.png")
    async with session.post(f"{base}/v1/jobs", data=form) as response:
        return await _outcome(response)


async def bad_last_event_id(session: aiohttp.ClientSession, base: str, path: None) -> Outcome:
    headers = {"Last-Event-ID": "not-an-id"}
    async with session.get(f"{base}/v1/events", headers=headers) as response:
        return await _outcome(response)


async def many_streams(session: aiohttp.ClientSession, base: str, path: None) -> Outcome:
    """150 feeds of all jobs held open at once by one caller (a connection each)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as own:
        opened = [await own.get(f"{base}/v1/events") for _ in range(150)]
        refused = [r for r in opened if r.status != 200]
        outcome = await _outcome(refused[0]) if refused else Outcome(200, "all 150 accepted")
        outcome.code += f" ({len(opened) - len(refused)} open, {len(refused)} refused)"
        for response in opened:
            response.close()
    return outcome


async def request_flood(session: aiohttp.ClientSession, base: str, path: None) -> Outcome:
    """600 requests at once from one caller (the service here runs without keys, so this is
    the per-caller rate limit; tests/test_slow_clients.py covers requests with wrong keys)."""

    async def one() -> int:
        async with session.get(f"{base}/v1/jobs?limit=1") as response:
            await response.read()
            return response.status

    statuses = await asyncio.gather(*(one() for _ in range(600)))
    return Outcome(429 if 429 in statuses else 200, f"{statuses.count(429)} of 600 got 429")


def url_json(url: str) -> Callable[..., Any]:
    return json_body(json.dumps({"url": url}))


def _good_png(directory: Path) -> Path:
    return write_png(directory / "good.png", ["A perfectly ordinary page"])


CASES = [
    Case("zero-byte file", upload(), hostile.zero_bytes),
    Case("unsupported type (ZIP)", upload(), hostile.zip_file),
    Case("truncated PDF", upload(), hostile.truncated_pdf),
    Case("corrupt PDF (header, then noise)", upload(), hostile.corrupt_pdf),
    Case("encrypted PDF (AES-256)", upload(), hostile.encrypted_pdf),
    Case("PDF with 5,000 pages", upload(), hostile.many_pages_pdf),
    Case("TIFF with 2,000 frames", upload(), hostile.many_frames_tiff),
    Case("PNG bomb: 100,000 x 100,000 (1.4 MB)", upload(), hostile.png_bomb),
    Case("PDF with a 200,000 x 200,000 CCITT image", upload(), hostile.ccitt_giant_pdf),
    Case("PDF page 200 x 200 inches", upload(), hostile.huge_page_pdf),
    Case("PDF page tree that loops", upload(), hostile.looping_page_tree_pdf),
    Case("PDF MediaBox [0 0 -14400 -14400]", upload(), hostile.negative_mediabox_pdf),
    Case("glyph bomb: 1 page of 1,000,000 words", upload(), hostile.glyph_bomb_pdf),
    Case(
        "glyph bomb: 100 pages sharing one content stream",
        upload(),
        lambda d: hostile.glyph_bomb_pdf(d, pages=100),
    ),
    Case(
        "text layers: 60 pages x 8,800 words (over the document's 500,000)",
        upload(outputs="text,json,hocr,csv,pdf"),
        lambda d: hostile.glyph_bomb_pdf(d, pages=60, words_per_page=9_000),
    ),
    Case(
        "text layers: 50 pages x 8,800 words (under every limit)",
        upload(outputs="text,json,hocr,csv,pdf"),
        lambda d: hostile.glyph_bomb_pdf(d, pages=50, words_per_page=9_000),
    ),
    Case("polyglot: PNG + appended PDF", upload(), hostile.polyglot_png_pdf),
    Case("polyglot: HTML with %PDF- header", upload(), hostile.html_with_pdf_header),
    Case("filename ../../../etc/passwd", upload("../../../etc/passwd"), _good_png),
    Case("filename with ESC and TAB", upload("evil\x1b[31m\tname.png"), _good_png),
    Case("filename with NUL", upload("evil\x00.png"), _good_png),
    Case("upload over the limit (64 MiB)", oversized),
    Case("5,000 form fields", many_fields),
    Case('JSON wrong types {"url": 5, "dpi": "x"}', json_body('{"url": 5, "dpi": "x"}')),
    Case("dpi 10, psm 99", upload(dpi="10", psm="99"), _good_png),
    Case("languages ../../x", upload(languages="../../x"), _good_png),
    Case("JSON nested 100,000 deep", json_body('{"url":' + "[" * 100_000 + "]" * 100_000 + "}")),
    Case(
        "JSON metadata of 900 KB",
        json_body(
            json.dumps({"url": "https://example.com/a.pdf", "metadata": {"x": "y" * 900_000}})
        ),
    ),
    Case(
        "filename with U+2028, NEL and RTL override",
        upload("in\u2028vo\u0085ice\u202egpj.exe.png"),
        _good_png,
    ),
    Case("URL http://[::127.0.0.1]/", url_json("http://[::127.0.0.1]/a.pdf")),
    Case(
        "URL http://[64:ff9b::a9fe:a9fe]/ (NAT64 metadata)",
        url_json("http://[64:ff9b::a9fe:a9fe]/"),
    ),
    Case("URL http://[2002:a9fe:a9fe::]/ (6to4 metadata)", url_json("http://[2002:a9fe:a9fe::]/")),
    Case("URL http://0177.0.0.1/ (octal loopback)", url_json("http://0177.0.0.1/a.pdf")),
    Case("URL http://2130706433/ (decimal loopback)", url_json("http://2130706433/a.pdf")),
    Case("Last-Event-ID not-an-id", bad_last_event_id),
    Case("150 event streams from one caller", many_streams),
    Case("600 requests at once", request_flood),
]


class MemoryWatch:
    """Samples the resident memory of the worker and its pool processes (and their children),
    summed; shared pages count once per process, so the figure errs high."""

    def __init__(self, pid: int) -> None:
        self._root = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "MemoryWatch":
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._sample()

    def _sample(self) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            total = 0
            for process in [self._root, *self._root.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += process.memory_info().rss
            self.peak = max(self.peak, total)


async def run(directory: Path, service: Service, worker_pid: int, web_pid: int) -> list[list[str]]:
    rows: list[list[str]] = []
    async with aiohttp.ClientSession() as session:
        await wait_healthy(session, service.base)
        for case in CASES:
            workdir = directory / f"case-{len(rows)}"
            workdir.mkdir()
            path = case.make(workdir) if case.make else None
            started = time.perf_counter()
            with MemoryWatch(worker_pid) as watch, MemoryWatch(web_pid) as ingress:
                outcome = await case.send(session, service.base, path)
                ended = ""
                if outcome.job:
                    job = await wait_ended(session, service.base, outcome.job["id"])
                    error = job.get("error") or {}
                    ended = job["state"] + (f" `{error['code']}`" if error else "")
                    if job["state"] == "succeeded":
                        ended += f", shown as `{job['source']['filename']!r}`"
            seconds = time.perf_counter() - started
            serving = await _still_serving(session, service.base, workdir, worker_pid)
            code = f"`{outcome.code}`" if outcome.code else ""
            rows.append(
                [
                    case.name,
                    f"{outcome.status} {code}".strip(),
                    ended or "(not accepted)",
                    f"{watch.peak / MIB:.0f}",
                    f"{ingress.peak / MIB:.0f}",
                    f"{seconds:.1f}",
                    serving,
                ]
            )
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    return rows


async def _still_serving(
    session: aiohttp.ClientSession, base: str, directory: Path, worker_pid: int
) -> str:
    good = write_png(directory / "after.png", [f"Still serving {time.time()}"])
    while True:  # after a flood, the rate limit may ask us to wait first
        form = aiohttp.FormData()
        form.add_field("file", io.BytesIO(good.read_bytes()), filename="after.png")
        async with session.post(f"{base}/v1/jobs", data=form) as response:
            job = await response.json()
            if response.status != 429:
                break
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
    done = await wait_ended(session, base, job["id"])
    same = psutil.pid_exists(worker_pid)
    return "yes" if done["state"] == "succeeded" and same else f"NO ({done['state']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the rows here as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocrflow-hostile-") as tmp:
        directory = Path(tmp)
        server = RedisServer(directory / "redis", port=free_port(), persist=False)
        service = Service(
            directory / "data",
            server.start(),
            OCRFLOW_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT),
            OCRFLOW_POOL_PROCESSES="2",
            OCRFLOW_POOL_MEMORY_LIMIT=str(MEMORY_LIMIT),
            OCRFLOW_PAGE_TIMEOUT="60",
            OCRFLOW_JOB_TIMEOUT="300",
            OCRFLOW_RATE_LIMIT="50",
        )
        worker = service.start("worker")
        try:
            rows = asyncio.run(run(directory, service, worker.pid, service.web.pid))
        finally:
            service.close()
            server.stop()
    print(
        f"Limits: upload {UPLOAD_LIMIT // MIB} MiB, pool process address space "
        f"{MEMORY_LIMIT // MIB} MiB, 500 pages, 80,000,000 pixels a page; 2 pool processes.\n"
    )
    print(
        "| input | HTTP answer | job ended | worker peak RSS (MiB) | ingress peak RSS (MiB) "
        "| s | serving after |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
