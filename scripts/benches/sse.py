"""SSE fan-out load: N clients following running jobs through one ingress process.

Starts a private redis-server and one `ocrflow web` process, creates running jobs, connects N
SSE clients spread over them from a process of their own (so they do not compete with this one's
publishing; the ingress is a process of its own too), then publishes progress events through the
same EventLog the worker uses, and reports delivery latency p50/p99, missed events, the ingress's
memory per connected client and the CPU the ingress spent. One caller holds every stream, so the
per-caller stream limit is lifted for the run. Run it through `scripts/bench sse`.
"""

import argparse
import asyncio
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

import aiohttp
import psutil
from redis.asyncio import Redis

from ocrflow.jobs.admission import Admission
from ocrflow.jobs.events import EventKind, EventLog
from ocrflow.jobs.records import ACTIVE, Job, JobState, Source, new_job_id, now
from ocrflow.jobs.transitions import Transitions
from ocrflow.pipeline.options import OcrOptions
from ocrflow.runtime.deathsig import die_with_parent
from ocrflow.runtime.redis_server import RedisServer, free_port
from ocrflow.settings import Settings
from tests.fixtures.service import wait_healthy
from tests.fixtures.sse import read_events


class Client:
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.latencies: list[float] = []
        self.ids: list[str] = []
        self.connected = asyncio.Event()
        self.finished = False

    async def run(self, session: aiohttp.ClientSession, base: str) -> None:
        async with session.get(f"{base}/v1/jobs/{self.job_id}/events") as response:
            async for event in read_events(response):
                self.ids.append(event.id or "")
                self.latencies.append(time.time() - event.data["ts"])
                self.connected.set()
                if EventKind(event.kind).terminal:
                    self.finished = True
                    return


def raise_file_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def make_jobs(redis: Redis, settings: Settings, count: int) -> list[str]:
    """Jobs that are running, as far as their feeds can tell (no worker runs them)."""
    admission, transitions = Admission(redis, settings), Transitions(redis, settings)
    source = Source(filename="load.pdf", sha256="0" * 64, bytes=1, media_type="application/pdf")
    ids = []
    for _ in range(count):
        job = Job(id=new_job_id(), created_at=now(), source=source, options=OcrOptions())
        await admission.record(job)
        await transitions.apply(job.id, JobState.RUNNING, only_from=ACTIVE, note={"attempt": 1})
        ids.append(job.id)
    return ids


async def follow(base: str, jobs: list[str], count: int, parent: Connection) -> None:
    """The clients' process: connect them, say so, and when every feed has ended send back
    what each saw."""
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        clients = [Client(jobs[n % len(jobs)]) for n in range(count)]
        tasks = [asyncio.create_task(client.run(session, base)) for client in clients]
        async with asyncio.timeout(120):
            await asyncio.gather(*(client.connected.wait() for client in clients))
        parent.send("connected")
        async with asyncio.timeout(300):
            await asyncio.gather(*tasks, return_exceptions=True)
    parent.send([(c.latencies, c.ids, c.finished) for c in clients])


def clients_process(base: str, jobs: list[str], count: int, parent: Connection) -> None:
    raise_file_limit()
    asyncio.run(follow(base, jobs, count, parent))


async def load(
    args: argparse.Namespace, base: str, redis_url: str, ingress: psutil.Process
) -> None:
    redis = Redis.from_url(redis_url)
    settings = Settings(_env_file=None, redis_url=redis_url, queue_name="ocrflow:bench-sse")
    log = EventLog(redis, retention=3600)
    jobs = await make_jobs(redis, settings, args.jobs)
    async with aiohttp.ClientSession() as session:
        await wait_healthy(session, base)
    await asyncio.sleep(1)
    before = ingress.memory_info().rss
    mine, theirs = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=clients_process, args=(base, jobs, args.clients, theirs), daemon=True
    )
    process.start()
    if await asyncio.to_thread(mine.recv) != "connected":
        raise SystemExit("the clients did not connect")
    await asyncio.sleep(1)
    after = ingress.memory_info().rss
    cpu, started = ingress.cpu_times(), time.perf_counter()
    for round_ in range(args.events):
        for job_id in jobs:
            await log.publish(job_id, EventKind.PROGRESS, {"pages_done": round_ + 1})
        await asyncio.sleep(1 / args.rate)
    done = Transitions(redis, settings)
    for job_id in jobs:
        await done.apply(job_id, JobState.SUCCEEDED, only_from=ACTIVE)
    seen = await asyncio.to_thread(mine.recv)
    elapsed = time.perf_counter() - started
    spent = sum(ingress.cpu_times()[:2]) - sum(cpu[:2])
    process.join(30)
    await redis.aclose()
    report(args, seen, before, after, elapsed)
    print(f"ingress CPU {spent:.1f} s over {elapsed:.1f} s ({spent / elapsed:.0%} of one core)")


Seen = list[tuple[list[float], list[str], bool]]


def report(args: argparse.Namespace, seen: Seen, before: int, after: int, elapsed: float) -> None:
    expected = args.events + 3  # the replayed states, the progress events, the terminal event
    latencies = sorted(lat for c in seen for lat in c[0][1:])  # the first is a replay
    missed = sum(max(0, expected - len(c[1])) for c in seen)
    duplicated = sum(len(c[1]) - len(set(c[1])) for c in seen)
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"clients {len(seen)} on {args.jobs} jobs; {args.events} events per job at "
        f"{args.rate}/s each round; {len(latencies)} deliveries in {elapsed:.1f} s"
    )
    print(
        f"delivery latency p50 {quantiles[49] * 1000:.1f} ms, p99 {quantiles[98] * 1000:.1f} ms, "
        f"max {latencies[-1] * 1000:.1f} ms"
    )
    print(
        f"missed events {missed}, duplicates {duplicated}, "
        f"clients that saw the end {sum(c[2] for c in seen)}/{len(seen)}"
    )
    print(
        f"ingress memory {before / 2**20:.1f} MiB idle -> {after / 2**20:.1f} MiB with "
        f"{len(seen)} clients: {(after - before) / len(seen) / 1024:.1f} KiB per client"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--events", type=int, default=50, help="progress events per job")
    parser.add_argument("--rate", type=float, default=10.0, help="event rounds per second")
    args = parser.parse_args()
    raise_file_limit()
    with tempfile.TemporaryDirectory(prefix="ocrflow-sse-") as tmp:
        server = RedisServer(Path(tmp) / "redis", port=free_port(), persist=False)
        redis_url = server.start()
        port = free_port()
        env = {
            **os.environ,
            "OCRFLOW_REDIS_URL": redis_url,
            "OCRFLOW_PORT": str(port),
            "OCRFLOW_DATA_DIR": tmp,
            "OCRFLOW_LOG_LEVEL": "WARNING",
            # Thousands of streams from one caller: no per-caller rate or stream limit.
            "OCRFLOW_RATE_LIMIT": "0",
            "OCRFLOW_MAX_STREAMS_PER_CALLER": "0",
        }
        web = subprocess.Popen(
            [sys.executable, "-m", "ocrflow", "web"], env=env, preexec_fn=die_with_parent
        )
        try:
            asyncio.run(load(args, f"http://127.0.0.1:{port}", redis_url, psutil.Process(web.pid)))
        finally:
            web.terminate()
            web.wait(30)
            server.stop()


if __name__ == "__main__":
    main()
