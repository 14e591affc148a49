"""Soak: many jobs through two workers while one of them is killed every few seconds.

Starts a private redis-server (append-only file on), one `ocrflow web` and two `ocrflow worker`
processes, submits the jobs over HTTP (every second one also running the `fields` handler, so
workers die mid-handler too), SIGKILLs a worker every --kill-every seconds and starts it
again, and waits until every job has ended. Prints how many succeeded, failed or were lost, how
many ran more than once, how the handlers ended, and the wall time. Run it through
`scripts/bench soak_workers`.
"""

import argparse
import asyncio
import collections
import json
import signal
import tempfile
import time
from pathlib import Path

import aiohttp

from ocrflow.runtime.redis_server import RedisServer, free_port
from tests.fixtures.corpus import write_png
from tests.fixtures.service import TERMINAL, Service, wait_healthy


class Cluster(Service):
    """The web ingress and two workers; one worker at a time is killed and replaced."""

    def __init__(self, directory: Path, redis_url: str) -> None:
        super().__init__(directory, redis_url)
        self.workers = [self.start("worker"), self.start("worker")]
        self.kills = 0

    def kill_one(self) -> None:
        index = self.kills % len(self.workers)
        victim = self.workers[index]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.processes.remove(victim)
        self.kills += 1
        self.workers[index] = self.start("worker")


HANDLERS = json.dumps({"fields": {"fields": [{"name": "page", "pattern": r"page (\d+)"}]}})


async def submit_all(session: aiohttp.ClientSession, base: str, files: list[Path]) -> list[str]:
    limit = asyncio.Semaphore(16)

    async def one(n: int, path: Path) -> str:
        async with limit:
            for _ in range(50):
                data = aiohttp.FormData()
                if n % 2:
                    data.add_field("handlers", HANDLERS)
                data.add_field("file", path.read_bytes(), filename=path.name)
                async with session.post(f"{base}/v1/jobs", data=data) as response:
                    if response.status == 202:
                        return str((await response.json())["id"])
                await asyncio.sleep(0.5)
            raise RuntimeError(f"could not submit {path}")

    return list(await asyncio.gather(*(one(n, path) for n, path in enumerate(files))))


async def states(session: aiohttp.ClientSession, base: str, ids: list[str]) -> dict[str, dict]:
    async def one(job_id: str) -> tuple[str, dict]:
        async with session.get(f"{base}/v1/jobs/{job_id}") as response:
            return job_id, await response.json()

    return dict(await asyncio.gather(*(one(i) for i in ids)))


async def soak(args: argparse.Namespace, directory: Path, cluster: Cluster, base: str) -> None:
    # Distinct documents: identical ones would share a job or come from the result cache.
    files = [
        write_png(directory / f"page-{n}.png", [f"Soak test page {n}", "ocrflow keeps jobs"])
        for n in range(args.jobs)
    ]
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await wait_healthy(session, base)
        ids = await submit_all(session, base, files)
        next_kill = time.perf_counter() + args.kill_every
        while True:
            docs = await states(session, base, ids)
            done = sum(doc.get("state") in TERMINAL for doc in docs.values())
            if done == len(ids) or time.perf_counter() - started > args.timeout:
                break
            if time.perf_counter() >= next_kill and done < len(ids) * 0.95:
                cluster.kill_one()
                next_kill = time.perf_counter() + args.kill_every
            await asyncio.sleep(1)
    report(docs, cluster.kills, time.perf_counter() - started)


def report(docs: dict[str, dict], kills: int, seconds: float) -> None:
    counts = collections.Counter(doc.get("state", "missing") for doc in docs.values())
    twice = sum(doc.get("attempt", 1) > 1 or doc.get("run", 1) > 1 for doc in docs.values())
    print(f"jobs {len(docs)}: " + ", ".join(f"{state} {n}" for state, n in counts.most_common()))
    print(f"ran more than once: {twice}; workers killed: {kills}; wall time {seconds:.1f} s")
    errors = collections.Counter(doc["error"]["code"] for doc in docs.values() if doc.get("error"))
    if errors:
        print("errors:", dict(errors))
    # A job that ended succeeded has run its handlers to their own end.
    handlers = collections.Counter(
        run["state"]
        for doc in docs.values()
        if doc.get("state") == "succeeded"
        for run in doc.get("handlers", {}).values()
    )
    print("handlers of succeeded jobs:", dict(handlers) or "none")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--kill-every", type=float, default=5.0, help="seconds between kills")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocrflow-soak-") as tmp:
        directory = Path(tmp)
        server = RedisServer(directory / "redis", port=free_port(), persist=True)
        cluster = Cluster(directory, server.start())
        try:
            asyncio.run(soak(args, directory, cluster, cluster.base))
        finally:
            cluster.close()
            server.stop()


if __name__ == "__main__":
    main()
