"""The ingress stays thin: what a hostile caller sends against a real ocrflow (redis-server,
`ocrflow web`, one `ocrflow worker`, two callers), and what it costs everyone else.

For each case: the answer, the time it took, the ingress's memory before and at its peak, the
longest `/healthz` wait while it ran, and how long the other caller waited for its own request.
Run it through `scripts/bench thin_ingress`; it prints a Markdown table.
"""

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from ocrflow.http.auth import new_api_key
from ocrflow.runtime.redis_server import RedisServer, free_port
from tests.fixtures import hostile
from tests.fixtures.corpus import write_png
from tests.fixtures.service import Service, multipart, wait_ended, wait_healthy

MIB = 1024 * 1024


class Ingress:
    """The service as two callers see it, and the ingress process as a watcher does."""

    def __init__(self, service: Service, session: aiohttp.ClientSession, keys: list[str]) -> None:
        self.base, self.session = service.base, session
        self.process = psutil.Process(service.web.pid)
        self.mallory = {"Authorization": f"Bearer {keys[0]}"}
        self.bob = {"Authorization": f"Bearer {keys[1]}"}

    async def submit(self, path: Path, headers: dict[str, str], **fields: str) -> Any:
        body, content_type = multipart(
            {k: v.encode() for k, v in fields.items()}, path.name, path.read_bytes()
        )
        async with self.session.post(
            f"{self.base}/v1/jobs", data=body, headers={**headers, "Content-Type": content_type}
        ) as reply:
            return reply.status, await reply.json()

    async def get(self, path: str, headers: dict[str, str]) -> int:
        async with self.session.get(self.base + path, headers=headers) as reply:
            await reply.read()
            return reply.status


async def watch(ingress: Ingress, case: Callable[[], Awaitable[str]]) -> list[str]:
    """Run `case`; meanwhile poll /healthz every 20 ms and the ingress's memory."""
    before = ingress.process.memory_info().rss
    peak, worst, done = before, 0.0, asyncio.Event()

    async def poll() -> None:
        nonlocal peak, worst
        while not done.is_set():
            started = time.monotonic()
            await ingress.get("/healthz", {})
            worst = max(worst, time.monotonic() - started)
            peak = max(peak, ingress.process.memory_info().rss)
            await asyncio.sleep(0.02)

    poller = asyncio.create_task(poll())
    started = time.monotonic()
    said = await case()
    took = time.monotonic() - started
    done.set()
    await poller
    after = ingress.process.memory_info().rss
    return [
        said,
        f"{took:.2f} s",
        f"{before / MIB:.0f} → {peak / MIB:.0f} (after {after / MIB:.0f})",
        f"{worst * 1000:.0f} ms",
    ]


def cases(ingress: Ingress, tmp: Path) -> dict[str, Callable[[], Awaitable[str]]]:
    page = write_png(tmp / "page.png", ["Invoice No 4417"])

    async def pages_field() -> str:
        spec = {"name": "n", "label": "No", "pages": "1" + ",1-    " * 20 + "x"}
        asked = json.dumps({"fields": {"fields": [spec]}})
        status, body = await ingress.submit(page, ingress.mallory, handlers=asked)
        return f"{status} {body['error']['code']}"

    async def nested(field: str, text: str) -> str:
        status, body = await ingress.submit(page, ingress.mallory, **{field: text})
        return f"{status} {body['error']['code']}"

    async def pictures(path: Path) -> str:
        _, job = await ingress.submit(path, ingress.mallory)
        _, mine = await ingress.submit(page, ingress.bob)
        heavy = [
            asyncio.create_task(
                ingress.get(f"/v1/jobs/{job['id']}/pages/1/image?width=2000", ingress.mallory)
            )
            for _ in range(3)
        ]
        await asyncio.sleep(0.2)
        started = time.monotonic()
        status = await ingress.get(f"/v1/jobs/{mine['id']}/pages/1/image?width=300", ingress.bob)
        waited = time.monotonic() - started
        answers = await asyncio.gather(*heavy)
        return f"{answers}; the other caller's picture {status} after {waited:.2f} s"

    async def patterns() -> str:
        rule = {"check": "pattern", "field": "n", "pattern": "(a+)+$"}
        fields = {"fields": [{"name": "n", "label": "No"}]}
        asked = json.dumps({"fields": fields, "validate": {"rules": [rule], "fields": fields}})
        greedy = write_png(
            tmp / "aaa.png", ["No " + "a" * 40 + "!"] * 12
        )  # no match: RE2 says so at once
        jobs = [
            (await ingress.submit(greedy, ingress.mallory, handlers=asked))[1] for _ in range(4)
        ]
        started = time.monotonic()
        _, mine = await ingress.submit(page, ingress.bob)
        ended = await wait_ended(ingress.session, ingress.base, mine["id"], headers=ingress.bob)
        waited = time.monotonic() - started
        for job in jobs:
            await wait_ended(ingress.session, ingress.base, job["id"], headers=ingress.mallory)
        return f"the other caller's one-page job {ended['state']} {waited:.1f} s after submitting"

    return {
        "20-group `pages` (fields)": pages_field,
        "metadata nested 900 deep": lambda: nested("metadata", "[" * 900 + "]" * 900),
        "handlers nested 30,000 deep": lambda: nested(
            "handlers", '{"fields": ' + "[" * 30_000 + "]" * 30_000 + "}"
        ),
        "38 x 14,400 pt page, 3 pictures at 2000 px": lambda: pictures(hostile.tall_strip_pdf(tmp)),
        "8,900 px PNG, 3 pictures at 2000 px": lambda: pictures(hostile.wide_png(tmp)),
        "4 jobs with `(a+)+$` rules, then another caller's page": patterns,
    }


async def run(service: Service, keys: list[str], tmp: Path) -> list[list[str]]:
    async with aiohttp.ClientSession() as session:
        await wait_healthy(session, service.base)
        ingress = Ingress(service, session, keys)
        rows = []
        for name, case in cases(ingress, tmp).items():
            rows.append([name, *await watch(ingress, case)])
        return rows


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    with tempfile.TemporaryDirectory(prefix="ocrflow-thin-") as directory:
        tmp = Path(directory)
        server = RedisServer(tmp / "redis", port=free_port(), persist=False)
        mallory_key, mallory = new_api_key("mallory")
        bob_key, bob = new_api_key("bob")
        service = Service(
            tmp / "service",
            server.start(),
            OCRFLOW_API_KEYS=f"{mallory},{bob}",
            OCRFLOW_POOL_PROCESSES="2",
        )
        service.start("worker")
        try:
            rows = asyncio.run(run(service, [mallory_key, bob_key], tmp))
        finally:
            service.close()
            server.stop()
    print("| case | answer | seconds | ingress RSS MiB (before → peak) | longest /healthz |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
