"""One large scanned document across workers: the time to read it on one worker with the split
off and on, and on two workers with it on (each worker one pool process, as two small machines
would be). Prints the times, the ratios against the targets, and each run's pages/s.

The document is a bundle as scanners make them (1-bit CCITT G4 pages at 300 dpi, every third a
150 dpi colour JPEG, letter, A4 and legal). Each setup runs on a fresh `ocrflow web` and fresh
workers over one private redis-server. Run it through `scripts/bench fanout`.
"""

import argparse
import asyncio
import io
import tempfile
import time
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

from ocrflow.runtime.redis_server import RedisServer, free_port
from tests.fixtures.corpus import bundle_pages, write_scan_pdf
from tests.fixtures.service import Service, multipart, wait_ended, wait_healthy


async def read_once(directory: Path, redis_url: str, pdf: Path, workers: int, split: int) -> float:
    """Seconds from submission to success, on `workers` fresh single-process workers."""
    async with Redis.from_url(redis_url) as redis:
        await redis.flushdb()
    service = Service(
        directory, redis_url, OCRFLOW_FANOUT_PAGES=str(split), OCRFLOW_RESULT_CACHE_TTL="0"
    )
    try:
        for _ in range(workers):
            service.start("worker")
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, service.base)
            await _wait_workers(session, service.base, workers)
            fields = {"outputs": b"text,json,pdf"}
            body, content_type = multipart(fields, pdf.name, pdf.read_bytes())
            started = time.perf_counter()
            async with session.post(
                f"{service.base}/v1/jobs",
                data=io.BytesIO(body),
                headers={"Content-Type": content_type},
            ) as response:
                job = await response.json()
            job = await wait_ended(session, service.base, job["id"], timeout=1800)
            seconds = time.perf_counter() - started
    finally:
        service.close()
    if job["state"] != "succeeded":
        raise SystemExit(f"the job ended {job['state']}: {job['error']}")
    return seconds


async def _wait_workers(session: aiohttp.ClientSession, base: str, count: int) -> None:
    """Until every worker has started and warmed its pool (it beats once it has)."""
    async with asyncio.timeout(120):
        while True:
            async with session.get(f"{base}/v1/status") as response:
                if len((await response.json())["workers"]) >= count:
                    return
            await asyncio.sleep(0.2)


async def bench(args: argparse.Namespace, directory: Path, redis_url: str) -> None:
    pdf = write_scan_pdf(directory / "bundle.pdf", bundle_pages(args.pages))
    print(
        f"{args.pages} scanned pages, {pdf.stat().st_size / 2**20:.1f} MB; ranges of {args.split}"
    )
    setups = [
        ("1 worker, split off", 1, 0),
        ("1 worker, split on", 1, args.split),
        ("2 workers, split on", 2, args.split),
    ]
    times: dict[str, float] = {}
    for name, workers, split in setups:
        runs = []
        for attempt in range(args.repeat):
            runs.append(
                await read_once(
                    directory / f"{workers}-{split}-{attempt}", redis_url, pdf, workers, split
                )
            )
        times[name] = min(runs)
        rate = args.pages / times[name]
        each = ", ".join(f"{run:.1f}" for run in runs)
        print(f"  {name}: {times[name]:.1f} s ({rate:.2f} pages/s); runs {each}")
    one, split_on = times["1 worker, split off"], times["1 worker, split on"]
    two = times["2 workers, split on"]
    print(f"two workers against one (split on): {split_on / two:.2f}x   (target >= 1.8)")
    print(f"split on against off, one worker:   {one / split_on:.2f}x   (target >= 0.95)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=32, help="pages in the document")
    parser.add_argument(
        "--split", type=int, default=8, help="OCRFLOW_FANOUT_PAGES for the split runs"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each setup; the best is kept"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocrflow-fanout-") as tmp:
        directory = Path(tmp)
        server = RedisServer(directory / "redis", port=free_port(), persist=False)
        try:
            asyncio.run(bench(args, directory, server.start()))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
