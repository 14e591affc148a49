"""Service benchmark over HTTP: ingress submit rate and latency, submit-to-first-event latency,
and end-to-end pages/s with one and with two worker processes (one pool process each).

Starts its own redis-server and `ocrflow web`, and workers as each part needs them. Run it
through `scripts/bench service`.
"""

import argparse
import asyncio
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

from ocrflow.runtime.redis_server import RedisServer, free_port
from tests.fixtures.corpus import page_image, write_png
from tests.fixtures.service import Service, multipart, wait_healthy
from tests.fixtures.sse import read_events


def form(body: bytes, name: str) -> tuple[bytes, dict[str, str]]:
    """A ready multipart request: built before the clock starts, so the load generator (on the
    same cores as the service) spends its time sending, not encoding."""
    data, content_type = multipart({"outputs": b"text"}, name, body)
    return data, {"Content-Type": content_type}


async def submit(session: aiohttp.ClientSession, base: str, body: bytes, name: str) -> str:
    return await post(session, base, form(body, name))


async def post(
    session: aiohttp.ClientSession, base: str, request: tuple[bytes, dict[str, str]]
) -> str:
    data, headers = request
    async with session.post(f"{base}/v1/jobs", data=data, headers=headers) as response:
        assert response.status == 202, await response.text()
        return str((await response.json())["id"])


class Connection:
    """One keep-alive HTTP/1.1 connection sending pre-encoded requests, as wrk does: the load
    generator shares the two cores with the service, and aiohttp's client spends ~4x the CPU
    per request. Every answer is still read whole, checked for 202 and its job id parsed."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> "Connection":
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def submit(self, request: bytes) -> str:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)[1])  # type: ignore[index]
        body = await self.reader.readexactly(length)
        assert status == b"202", head + body
        return str(json.loads(body)["id"])

    def close(self) -> None:
        self.writer.close()


def raw_request(port: int, body: bytes, name: str) -> bytes:
    data, content_type = multipart({"outputs": b"text"}, name, body)
    head = (
        f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def ingress(port: int, png: bytes, args: argparse.Namespace, tag: str) -> None:
    """Submits as fast as `concurrency` connections allow, then at a fixed rate: jobs/s and
    latency. Requests are built before the clock starts."""
    count = args.submits
    requests = [raw_request(port, png + n.to_bytes(8, "big"), f"{n}.png") for n in range(count)]
    timed_requests = [
        raw_request(port, png + (10**9 + n).to_bytes(8, "big"), f"r{n}.png")
        for n in range(int(args.rate * args.seconds))
    ]
    connections = [await Connection.open(port) for _ in range(args.concurrency)]
    pending = iter(requests)

    async def drive(connection: Connection) -> None:
        for request in pending:
            await connection.submit(request)

    started = time.perf_counter()
    await asyncio.gather(*(drive(c) for c in connections))
    rate = count / (time.perf_counter() - started)
    latencies: list[float] = []
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for connection in connections:
        idle.put_nowait(connection)

    async def timed(n: int) -> None:
        connection = await idle.get()
        began = time.perf_counter()
        await connection.submit(timed_requests[n])
        latencies.append(time.perf_counter() - began)
        idle.put_nowait(connection)

    tasks, interval = [], 1 / args.rate
    begin = time.perf_counter()
    for n in range(int(args.rate * args.seconds)):
        await asyncio.sleep(max(0.0, begin + n * interval - time.perf_counter()))
        tasks.append(asyncio.create_task(timed(n)))
    await asyncio.gather(*tasks)
    for connection in connections:
        connection.close()
    q = statistics.quantiles(latencies, n=100)
    print(
        f"ingress ({tag}): {rate:.0f} submits/s at concurrency {args.concurrency} ({count} jobs); "
        f"at {args.rate:.0f}/s: p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms"
    )


async def first_event(session: aiohttp.ClientSession, base: str, png: bytes, samples: int) -> None:
    """From POST to the first progress event, with a worker idle and waiting."""
    latencies = []
    for n in range(samples):
        began = time.perf_counter()
        job_id = await submit(session, base, png + (2 * 10**9 + n).to_bytes(8, "big"), "f.png")
        async with session.get(f"{base}/v1/jobs/{job_id}/events") as response:
            async for event in read_events(response):
                if event.kind == "progress":
                    latencies.append(time.perf_counter() - began)
                    break
        await asyncio.sleep(1.5)  # let the job finish: the next one meets an idle worker
    q = statistics.quantiles(latencies, n=100)
    print(
        f"submit to first progress event (idle worker): p50 {q[49] * 1000:.0f} ms, "
        f"p99 {q[98] * 1000:.0f} ms over {samples} jobs"
    )


async def throughput(
    session: aiohttp.ClientSession, base: str, pages: list[bytes], tag: str
) -> float:
    started = time.perf_counter()
    ids = await asyncio.gather(
        *(submit(session, base, p + tag.encode(), f"{n}.png") for n, p in enumerate(pages))
    )
    for job_id in ids:
        while True:
            async with session.get(f"{base}/v1/jobs/{job_id}") as response:
                job = await response.json()
            if job["state"] == "succeeded":
                break
            if job["state"] in ("failed", "cancelled"):
                error = job.get("error")
                sys.exit(f"job {job_id} {job['state']} ({error}): no figure from this run")
            await asyncio.sleep(0.1)
    return len(pages) / (time.perf_counter() - started)


async def run(args: argparse.Namespace, service: Service, directory: Path) -> None:
    png = write_png(directory / "small.png", ["A small page for the ingress"]).read_bytes()
    lines = [f"Line {n} of a page of ordinary length for the worker benchmark" for n in range(30)]
    page = directory / "page.png"
    page_image(lines, font_size=34, width=2400).save(page, dpi=(300, 300))
    pages = [page.read_bytes() + n.to_bytes(8, "big") for n in range(args.pages)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await wait_healthy(session, service.base)
        async with Redis.from_url(service.env["OCRFLOW_REDIS_URL"]) as redis:
            for processes in args.web_processes:
                if processes != int(service.env.get("OCRFLOW_WEB_PROCESSES", "1")):
                    service.stop(service.web)
                    service.env["OCRFLOW_WEB_PROCESSES"] = str(processes)
                    service.web = service.start("web")
                    await wait_healthy(session, service.base)
                await ingress(service.port, png, args, f"{processes} web process(es)")
                # Thousands of jobs are left queued: each phase starts on an empty queue.
                await redis.flushdb()
        if args.skip_workers:
            return
        worker = service.start("worker")
        await asyncio.sleep(3)
        await first_event(session, service.base, png, args.samples)
        one = await throughput(session, service.base, pages, "one")
        second = service.start("worker")
        await asyncio.sleep(3)
        shots = None
        if args.screenshots:  # the dashboard while the two workers are busy, and after
            shots = asyncio.create_task(dashboard(service.base, args.screenshots / "dashboard.png"))
        two = await throughput(session, service.base, pages, "two")
        if shots is not None:
            await shots
            await dashboard(service.base, args.screenshots / "dashboard-after.png", delay=2.5)
        print(
            f"end to end: 1 worker {one:.2f} pages/s, 2 workers {two:.2f} pages/s, "
            f"ratio {two / one:.2f} ({args.pages} one-page jobs each)"
        )
        for process in (second, worker):
            service.stop(process)


async def dashboard(base: str, path: Path, delay: float = 4.0) -> None:
    """A picture of /dashboard `delay` seconds after it is live (headless Chromium)."""
    from playwright.async_api import async_playwright  # a dev dependency, as for the tests

    path.parent.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})
            await page.goto(f"{base}/dashboard")
            await page.locator("#live.on").wait_for(timeout=30_000)
            await asyncio.sleep(delay)
            await page.screenshot(path=str(path), full_page=True)
        finally:
            await browser.close()
    print(f"dashboard: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=" ".join(__doc__.split("\n\n")[0].split()),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--submits",
        type=int,
        default=8000,
        help="jobs submitted flat out (with the fixed-rate ones, at most the backlog "
        "limit of 20000)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=64, help="connections submitting flat out"
    )
    parser.add_argument("--rate", type=float, default=150.0, help="fixed submit rate per second")
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="how long to submit at the fixed rate"
    )
    parser.add_argument(
        "--samples", type=int, default=20, help="jobs timed from submit to first event"
    )
    parser.add_argument("--pages", type=int, default=24, help="one-page jobs per end-to-end run")
    parser.add_argument(
        "--skip-workers",
        action="store_true",
        help="measure the ingress only: no first-event or end-to-end phases",
    )
    parser.add_argument(
        "--web-processes",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[2, 1],
        help="ingress process counts to measure, comma-separated; the worker phases run "
        "beside the last",
    )
    parser.add_argument(
        "--screenshots",
        type=Path,
        metavar="DIR",
        help="save pictures of /dashboard during and after the two-worker run here",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocrflow-service-") as tmp:
        directory = Path(tmp)
        server = RedisServer(directory / "redis", port=free_port(), persist=False)
        service = Service(directory, server.start())
        try:
            asyncio.run(run(args, service, directory))
        finally:
            service.close()
            server.stop()


if __name__ == "__main__":
    main()
